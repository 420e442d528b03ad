"""Reminder cards: the digest sent to a teacher's 1:1 chat and the settings card; and the payloads they carry
(snooze, saveReminders, remindOff)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from zoneinfo import ZoneInfo

from microsoft_teams import cards as ac
from pydantic import BeforeValidator, Field, model_validator

from cards.blocks import (
    ActionDataError,
    ActionPayload,
    Banner,
    Card,
    Flag,
    Id,
    as_utc,
    buttons,
    card,
    execute,
    fitted_card,
    format_moment,
    heading,
    is_blank,
    late_text,
    line,
    plain,
    plural,
    section,
    time_zone,
    turned_in_text,
    whole_number,
)
from cards.lists import OpenGradingAction, OpenUngradedAction, UngradedItem
from graph.models import EducationClass

WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MIN_WAITING_RANGE: Final = (1, 1000)
MIN_AGE_RANGE: Final = (0, 365)
MAX_CLASS_IDS: Final = 200
LATE_SHOWN: Final = 5
"""Late submissions named per class in the digest; the rest are counted."""
_CLOCK = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?", re.ASCII)
_ZONE_HINT = "Pick a time zone from the list."


def _clock(value: object) -> time | None:
    """ "16:30" (Input.Time may add seconds); None when empty."""
    if is_blank(value):
        return None
    match = _CLOCK.fullmatch(value.strip()) if isinstance(value, str) and len(value) <= 16 else None
    if match is None:
        raise ValueError("not a time")
    return time(int(match.group(1)), int(match.group(2)))


def _comma_list(value: object, limit: int = MAX_CLASS_IDS * 130) -> tuple[str, ...]:
    """ "a,b" (a multi-select's value) as distinct parts; class ids are then checked as ids."""
    if is_blank(value):
        return ()
    if not isinstance(value, str) or len(value) > limit:
        raise ValueError("not a list")
    return tuple(dict.fromkeys(part.strip() for part in value.split(",") if part.strip()))


def _weekdays(value: object) -> tuple[str, ...]:
    """ "mon,wed" (a multi-select's value) in week order."""
    chosen = {part.lower() for part in _comma_list(value, 64)}
    if not chosen <= set(WEEKDAYS):
        raise ValueError("not weekdays")
    return tuple(day for day in WEEKDAYS if day in chosen)


def _toggle(value: object) -> object:
    """An Input.Toggle sends "true" / "false"."""
    return {"true": True, "false": False}.get(value.strip().lower(), value) if isinstance(value, str) else value


def _zone_name(value: object) -> str:
    if isinstance(value, str) and len(value) <= 100 and time_zone(value.strip()) is not None:
        return value.strip()
    raise ValueError("not a time zone")


class SnoozeAction(ActionPayload, verb="snooze"):
    """Pause reminders for a day or a week."""

    days: Annotated[Literal[1, 7], BeforeValidator(whole_number)]


class SaveRemindersAction(ActionPayload, verb="saveReminders"):
    """The reminder settings card's inputs (its Save button carries no data). Empty `class_ids` means every class."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "time": "Reminder time must be a time like 16:30.",
        "quietStart": "Quiet hours start must be a time like 16:30.",
        "quietEnd": "Quiet hours end must be a time like 16:30.",
        "timezone": _ZONE_HINT,
        "days": "Pick days from the list.",
        "classIds": "Pick classes from the list.",
        "minWaiting": f"Minimum waiting must be a number from {MIN_WAITING_RANGE[0]} to {MIN_WAITING_RANGE[1]}.",
        "minAgeDays": f"Minimum age must be {MIN_AGE_RANGE[0]} to {MIN_AGE_RANGE[1]} days.",
    }
    days: Annotated[tuple[str, ...], BeforeValidator(_weekdays), Field(default=())]
    at: Annotated[time, BeforeValidator(_clock), Field(alias="time")]
    timezone: Annotated[str, BeforeValidator(_zone_name)]
    quiet_start: Annotated[time | None, BeforeValidator(_clock), Field(default=None)]
    quiet_end: Annotated[time | None, BeforeValidator(_clock), Field(default=None)]
    class_ids: Annotated[tuple[Id, ...], BeforeValidator(_comma_list), Field(default=(), max_length=MAX_CLASS_IDS)]
    min_waiting: Annotated[int, BeforeValidator(whole_number), Field(ge=MIN_WAITING_RANGE[0], le=MIN_WAITING_RANGE[1])]
    min_age_days: Annotated[int, BeforeValidator(whole_number), Field(ge=MIN_AGE_RANGE[0], le=MIN_AGE_RANGE[1])]
    enabled: Annotated[Flag, BeforeValidator(_toggle)]

    def to_data(self) -> dict[str, object]:
        return {}

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.enabled and not self.days:
            raise ActionDataError("Pick at least one day for reminders.", "days")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ActionDataError("Set both ends of the quiet hours, or neither.", "quietStart")
        return self


class RemindOffAction(ActionPayload, verb="remindOff"):
    """Turn reminders off."""


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One class in the digest, with work waiting. `late` holds its late, ungraded submissions (oldest first)."""

    education_class: EducationClass
    waiting: int
    oldest: UngradedItem
    late: Sequence[UngradedItem] = ()


def _who(item: UngradedItem) -> str:
    return f"{plain(item.student_name, 60) or 'A student'} ({plain(item.assignment.display_name, 60)})"


def _entry_block(entry: DigestEntry, tz: ZoneInfo, now: datetime) -> ac.Container:
    oldest, class_id = entry.oldest, entry.education_class.id
    late = ", ".join(f"{_who(item)} {late_text(item.late_by) or 'late'}" for item in entry.late[:LATE_SHOWN])
    late += f" and {len(entry.late) - LATE_SHOWN} more" if len(entry.late) > LATE_SHOWN else ""
    grade = OpenGradingAction(class_id, oldest.assignment.id, oldest.submission.id)
    items = [
        line(plain(entry.education_class.display_name) or "Unnamed class", bold=True),
        line(f"{entry.waiting} waiting to be graded"),
        line(f"Oldest: {_who(oldest)} · {turned_in_text(oldest.turned_in_at, tz, now)}", subtle=True),
        line(f"Late: {late}", color="Attention") if entry.late else None,
        buttons([execute("Grade", grade), execute("All ungraded", OpenUngradedAction(class_id, 0))]),
    ]
    return section(items)


def digest_card(entries: Sequence[DigestEntry], tz: ZoneInfo, now: datetime) -> Card:
    """The digest (1:1 chat only: it names students): per class with work waiting (the sweep sends one only then),
    what waits, the oldest and the late ones."""
    snooze = [execute("Snooze 1 day", SnoozeAction(1)), execute("Snooze 1 week", SnoozeAction(7))]
    total = sum(entry.waiting for entry in entries)
    head = [
        heading("Grading reminder"),
        line(f"{plural(total, 'submission')} waiting in {plural(len(entries), 'class', 'classes')}.", subtle=True),
    ]
    rows = [[_entry_block(entry, tz, now)] for entry in entries]
    return fitted_card(head, rows, "classes", snooze, full_width=True)


_WEST_TO_EAST = """
    UTC Pacific/Honolulu America/Anchorage America/Los_Angeles America/Phoenix America/Denver America/Chicago
    America/Mexico_City America/Bogota America/New_York America/Toronto America/Caracas America/Halifax
    America/Santiago America/St_Johns America/Sao_Paulo America/Argentina/Buenos_Aires Atlantic/Azores
    Atlantic/Reykjavik Europe/London Europe/Dublin Europe/Lisbon Africa/Lagos Europe/Amsterdam Europe/Berlin
    Europe/Madrid Europe/Paris Europe/Rome Europe/Stockholm Europe/Warsaw Africa/Cairo Africa/Johannesburg
    Europe/Athens Europe/Helsinki Asia/Jerusalem Europe/Istanbul Europe/Moscow Africa/Nairobi Asia/Riyadh
    Asia/Tehran Asia/Dubai Asia/Karachi Asia/Kolkata Asia/Kathmandu Asia/Dhaka Asia/Bangkok Asia/Jakarta
    Asia/Singapore Asia/Hong_Kong Asia/Shanghai Asia/Manila Australia/Perth Asia/Seoul Asia/Tokyo Australia/Darwin
    Australia/Adelaide Australia/Brisbane Australia/Sydney Pacific/Auckland
    """
COMMON_TIME_ZONES: Final = tuple(_WEST_TO_EAST.split())
"""The time zones the settings card offers, one or more per UTC offset in use; the client's own and the saved one
are always added."""
INPUT_IDS: Final = ("enabled", *SaveRemindersAction.MESSAGES)
"""Every input of the settings form: the toggle, and each input a refusal message names."""


@dataclass(frozen=True, slots=True)
class ReminderSettingsView:
    """The settings form as the card shows it. `values` holds each input's value as the card sends it back (input id
    → text: the saved schedule, or what the teacher typed when it was refused); `enabled` whether reminders are on
    now; `own_zone` the client's time zone (always offered); `errors` input id → why it was refused."""

    values: Mapping[str, str]
    classes: Sequence[EducationClass]
    own_zone: str
    enabled: bool
    snoozed_until: datetime | None = None
    errors: Mapping[str, str] = field(default_factory=dict)


def submitted_values(data: Mapping[str, object]) -> dict[str, str]:
    """The settings form's inputs from an invoke's data, as text (anything else left out), to show them again."""
    kept = {key: data.get(key) for key in INPUT_IDS}
    return {
        key: str(value)
        for key, value in kept.items()
        if isinstance(value, str | int | float) and not isinstance(value, bool) and len(str(value)) <= 200
    }


def zone_choices(now: datetime, *extra: str) -> list[ac.Choice]:
    """The common time zones and `extra` ones that exist, ordered by their UTC offset at `now`: "(UTC+01:00)
    Europe/Berlin"."""
    zones = {name: zone for name in (*COMMON_TIME_ZONES, *extra) if (zone := time_zone(name)) is not None}
    offsets = {name: as_utc(now).astimezone(zone).utcoffset() or timedelta(0) for name, zone in zones.items()}

    def title(name: str) -> str:
        minutes = int(offsets[name].total_seconds()) // 60
        return f"(UTC{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}) {name}"

    return [ac.Choice(title=title(name), value=name) for name in sorted(zones, key=lambda name: (offsets[name], name))]


def reminder_settings_card(
    settings: ReminderSettingsView, *, tz: ZoneInfo, now: datetime, status: Banner | None = None
) -> Card:
    """Whether reminders are on, inputs for every setting (a refused one with its message under it), "Save"
    (saveReminders) and, when they are on, "Turn off" (remindOff); `tz` renders the snooze end."""
    values, errors, until = settings.values, settings.errors, settings.snoozed_until
    classes = [ac.Choice(title=plain(c.display_name, 80) or "Unnamed class", value=c.id) for c in settings.classes]
    days = [ac.Choice(title=day.capitalize(), value=day) for day in WEEKDAYS]
    zones = zone_choices(now, settings.own_zone, values.get("timezone", ""))

    def refused(input_id: str) -> ac.TextBlock | None:
        return line(plain(errors[input_id], 300), color="Attention") if input_id in errors else None

    def clock(input_id: str, label: str, **more: Any) -> list[ac.CardElement | None]:
        """An Input.Time showing the value as "16:30" (none when the text is not a time), and why it was refused."""
        match = _CLOCK.fullmatch(values.get(input_id, "").strip())
        value = f"{match[1]}:{match[2]}" if match else None
        return [ac.TimeInput(id=input_id, label=label, value=value, **more), refused(input_id)]

    def number(input_id: str, label: str, bounds: tuple[int, int], what: str) -> list[ac.CardElement | None]:
        """An Input.Number showing the value when it is a finite number, and why it was refused."""
        try:
            value = float(values.get(input_id) or "nan")
        except ValueError:
            value = math.nan
        low, high = bounds
        shown = value if math.isfinite(value) else None
        number = ac.NumberInput(id=input_id, label=label, min=low, max=high, value=shown, is_required=True)
        return [number.with_error_message(f"Enter {what} from {low} to {high}."), refused(input_id)]

    def pick(input_id: str, label: str, choices: list[ac.Choice], **more: Any) -> list[ac.CardElement | None]:
        """A multi- or single-select showing what the value picks among the choices, in their order."""
        wanted = {part.strip() for part in values.get(input_id, "").split(",")}
        picked = ",".join(choice.value for choice in choices if choice.value in wanted) or None
        return [ac.ChoiceSetInput(id=input_id, label=label, choices=choices, value=picked, **more), refused(input_id)]

    state = "Reminders are on." if settings.enabled else "Reminders are off: switch them on below and Save."
    enabled = "true" if values.get("enabled") == "true" else "false"
    body: list[ac.CardElement | None] = [
        heading("Grading reminders"),
        line(state, bold=True, color="Good" if settings.enabled else None),
        line(f"Snoozed until {format_moment(until, tz, now)}.", subtle=True)
        if until is not None and as_utc(until) > as_utc(now)
        else None,
        ac.ToggleInput(
            id="enabled", title="Send me grading reminders", value=enabled, value_on="true", value_off="false"
        ),
        *pick("days", "Days", days, is_multi_select=True, style="expanded"),
        *clock("time", "Time", is_required=True, error_message="Pick a time for the reminder."),
        *pick("timezone", "Time zone", zones, style="compact", is_required=True, error_message=_ZONE_HINT),
        *clock("quietStart", "Quiet hours from (optional)"),
        *clock("quietEnd", "Quiet hours until (optional)"),
        *(
            pick("classIds", "Classes (none selected = all classes)", classes, is_multi_select=True, style="expanded")
            if classes
            else [refused("classIds")]
        ),
        *number("minWaiting", "Remind me when at least this many submissions wait", MIN_WAITING_RANGE, "a number"),
        *number("minAgeDays", "…and the oldest has waited at least this many days", MIN_AGE_RANGE, "a number of days"),
    ]
    unplaced = [message for key, message in errors.items() if key not in INPUT_IDS]
    if errors and status is None:
        status = Banner.error(" ".join(["Not saved: fix what is marked below.", *unplaced]))
    # Save carries no data (SaveRemindersAction.to_data() is {}): every value comes from the inputs.
    save = ac.ExecuteAction(title="Save", verb=SaveRemindersAction.VERB, data={}, associated_inputs="auto")
    return card(body, [save, execute("Turn off", RemindOffAction()) if settings.enabled else None], status=status)
