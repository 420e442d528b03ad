"""The reminder settings card: days, time, timezone, quiet hours, classes, thresholds, on/off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from microsoft_teams.cards import CardElement, Choice, ChoiceSetInput, NumberInput, TextInput, TimeInput, ToggleInput

from cards.actions import WEEKDAYS, RemindOffAction, SaveRemindersAction
from cards.dates import as_utc, format_moment
from cards.render import Banner, Card, card, execute, heading, line, plain
from graph.models import EducationClass

_DAY_NAMES = dict(zip(WEEKDAYS, ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"), strict=True))
_TIMEZONE_REGEX = r"^[A-Za-z][A-Za-z0-9_+\-]{0,31}(/[A-Za-z0-9_+\-]{1,32}){0,2}$"


@dataclass(frozen=True, slots=True)
class ReminderSettingsView:
    """A teacher's reminder schedule as the card shows it. Empty `included_class_ids` means every class."""

    days: tuple[str, ...]
    at: time
    timezone: str
    quiet_start: time | None
    quiet_end: time | None
    classes: Sequence[EducationClass]
    included_class_ids: tuple[str, ...]
    min_waiting: int
    min_age_days: int
    enabled: bool
    snoozed_until: datetime | None = None


def _clock(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def _current(settings: ReminderSettingsView) -> SaveRemindersAction:
    """The settings as a payload: its (empty) static data goes on the Save button, inputs carry the values."""
    return SaveRemindersAction(
        days=settings.days,
        at=settings.at,
        timezone=settings.timezone,
        quiet_start=settings.quiet_start,
        quiet_end=settings.quiet_end,
        class_ids=settings.included_class_ids,
        min_waiting=settings.min_waiting,
        min_age_days=settings.min_age_days,
        enabled=settings.enabled,
    )


def reminder_settings_card(
    settings: ReminderSettingsView, *, tz: ZoneInfo, now: datetime, status: Banner | None = None
) -> Card:
    """Inputs for every setting, "Save" (saveReminders) and "Turn off" (remindOff); `tz` renders the snooze end."""
    low_waiting, high_waiting = SaveRemindersAction.MIN_WAITING_RANGE
    low_age, high_age = SaveRemindersAction.MIN_AGE_RANGE
    inputs: list[CardElement] = [
        ToggleInput(
            id="enabled",
            title="Send me grading reminders",
            value="true" if settings.enabled else "false",
            value_on="true",
            value_off="false",
        ),
        ChoiceSetInput(
            id="days",
            label="Days",
            is_multi_select=True,
            style="expanded",
            choices=[Choice(title=_DAY_NAMES[day], value=day) for day in WEEKDAYS],
            value=",".join(day for day in WEEKDAYS if day in settings.days),
        ),
        TimeInput(
            id="time",
            label="Time",
            value=settings.at.strftime("%H:%M"),
            is_required=True,
            error_message="Pick a time for the reminder.",
        ),
        TextInput(
            id="timezone",
            label="Time zone",
            value=settings.timezone,
            placeholder="Europe/London",
            regex=_TIMEZONE_REGEX,
            max_length=100,
            is_required=True,
            error_message="Enter a time zone like Europe/London or America/New_York.",
        ),
        TimeInput(id="quietStart", label="Quiet hours from (optional)", value=_clock(settings.quiet_start)),
        TimeInput(id="quietEnd", label="Quiet hours until (optional)", value=_clock(settings.quiet_end)),
    ]
    if settings.classes:
        inputs.append(
            ChoiceSetInput(
                id="classIds",
                label="Classes (none selected = all classes)",
                is_multi_select=True,
                style="expanded",
                choices=[
                    Choice(title=plain(education_class.display_name, 80) or "Unnamed class", value=education_class.id)
                    for education_class in settings.classes
                ],
                value=",".join(settings.included_class_ids) or None,
            )
        )
    inputs.extend(
        [
            NumberInput(
                id="minWaiting",
                label="Remind me when at least this many submissions wait",
                min=low_waiting,
                max=high_waiting,
                value=settings.min_waiting,
                is_required=True,
                error_message=f"Enter a number from {low_waiting} to {high_waiting}.",
            ),
            NumberInput(
                id="minAgeDays",
                label="…and the oldest has waited at least this many days",
                min=low_age,
                max=high_age,
                value=settings.min_age_days,
                is_required=True,
                error_message=f"Enter a number of days from {low_age} to {high_age}.",
            ),
        ]
    )
    body: list[CardElement | None] = [heading("Grading reminders")]
    if settings.snoozed_until is not None and as_utc(settings.snoozed_until) > as_utc(now):
        body.append(line(f"Snoozed until {format_moment(settings.snoozed_until, tz, now)}.", subtle=True))
    body.extend(inputs)
    return card(
        body,
        [execute("Save", _current(settings), with_inputs=True), execute("Turn off", RemindOffAction())],
        status=status,
    )
