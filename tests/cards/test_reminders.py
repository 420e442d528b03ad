"""Reminder cards (the digest, the settings card) and their payloads (snooze, saveReminders, remindOff)."""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

import pytest

from cards.blocks import MAX_CARD_BYTES, ActionDataError, ActionPayload, card_size, time_zone
from cards.lists import OpenGradingAction
from cards.reminders import (
    COMMON_TIME_ZONES,
    DigestEntry,
    ReminderSettingsView,
    RemindOffAction,
    SaveRemindersAction,
    SnoozeAction,
    digest_card,
    reminder_settings_card,
    submitted_values,
)
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import button, card_data, of_type, parse_action, press_and_parse, texts

CLASS = fx.CLASS_ID
CLASSES = [
    fx.education_class(),
    fx.education_class("1c6b4d2f-6d0e-4d8f-8a2b-3e4f5a6b7c8d", "Chemistry 10B", "CHEM-10B", "Autumn 2025"),
]


def test_digest_card() -> None:
    items = fx.ungraded_items(9, classes=1)
    late = [item for item in items if item.late_by]
    entries = [DigestEntry(items[0].education_class, len(items), items[0], late)]
    built = digest_card(entries, fx.TZ, fx.NOW)
    assert_valid_card(built)
    text = texts(built)
    assert "9 submissions waiting in 1 class." in text
    assert "9 waiting to be graded" in text
    assert f"Oldest: {items[0].student_name}" in text
    assert "late by" in text
    assert press_and_parse(built, "Grade") == OpenGradingAction(
        items[0].education_class.id, items[0].assignment.id, items[0].submission.id
    )
    assert press_and_parse(built, "Snooze 1 day") == SnoozeAction(1)
    assert press_and_parse(built, "Snooze 1 week") == SnoozeAction(7)


def test_long_digests_fit() -> None:
    items = fx.ungraded_items(300, name_length=100, classes=300)
    entries = [DigestEntry(item.education_class, 3, item, [item] * 10) for item in items]
    digest = digest_card(entries, fx.TZ, fx.NOW)
    assert_valid_card(digest)
    assert card_size(digest) <= MAX_CARD_BYTES
    assert "more classes not shown here" in texts(digest)


SAVED = {
    "enabled": "true",
    "days": "mon,thu",
    "time": "16:30",
    "timezone": "Europe/London",
    "quietStart": "21:00",
    "quietEnd": "07:00",
    "classIds": fx.CLASS_ID,
    "minWaiting": "3",
    "minAgeDays": "1",
}


def settings_view(**changes: Any) -> ReminderSettingsView:
    values: dict[str, Any] = {
        "values": SAVED,
        "classes": CLASSES,
        "own_zone": "Europe/London",
        "enabled": True,
    }
    values.update(changes)
    return ReminderSettingsView(**values)


def test_reminder_settings_card_round_trips_its_own_values() -> None:
    view = settings_view(snoozed_until=fx.NOW + timedelta(days=1))
    built = reminder_settings_card(view, tz=fx.TZ, now=fx.NOW)
    assert_valid_card(built)
    ids = [node["id"] for node in of_type(built, "Input.ChoiceSet")]
    assert ids == ["days", "timezone", "classIds"]
    assert [node["id"] for node in of_type(built, "Input.Time")] == ["time", "quietStart", "quietEnd"]
    assert [node["id"] for node in of_type(built, "Input.Number")] == ["minWaiting", "minAgeDays"]
    assert of_type(built, "Input.Toggle")[0]["value"] == "true"
    assert "Reminders are on." in texts(built)
    assert "Snoozed until Tue 2 Dec, 10:00." in texts(built)
    saved = press_and_parse(built, "Save")
    assert saved == SaveRemindersAction(
        days=("mon", "thu"),
        at=time(16, 30),
        timezone="Europe/London",
        quiet_start=time(21, 0),
        quiet_end=time(7, 0),
        class_ids=(fx.CLASS_ID,),
        min_waiting=3,
        min_age_days=1,
        enabled=True,
    )
    changed = press_and_parse(built, "Save", {"days": "sat", "quietStart": "", "quietEnd": "", "classIds": ""})
    assert isinstance(changed, SaveRemindersAction)
    assert changed.days == ("sat",) and changed.quiet_start is None and changed.class_ids == ()
    assert press_and_parse(built, "Turn off") == RemindOffAction()
    assert button(built, "Turn off")["associatedInputs"] == "none"


def test_reminders_off_say_so_and_offer_no_turn_off() -> None:
    built = reminder_settings_card(
        settings_view(values=SAVED | {"enabled": "false", "quietStart": "", "quietEnd": ""}, classes=[], enabled=False),
        tz=fx.TZ,
        now=fx.NOW,
    )
    assert_valid_card(built)
    assert "Reminders are off: switch them on below and Save." in texts(built)
    assert "Reminders are on" not in texts(built)
    assert [action["title"] for action in built["actions"]] == ["Save"]
    assert [node["id"] for node in of_type(built, "Input.ChoiceSet")] == ["days", "timezone"]
    saved = press_and_parse(built, "Save")
    assert isinstance(saved, SaveRemindersAction) and saved.enabled is False and saved.quiet_start is None


def test_the_time_zone_is_picked_from_a_list_that_holds_the_clients_own() -> None:
    built = reminder_settings_card(
        settings_view(values=SAVED | {"timezone": "Asia/Kathmandu"}, own_zone="America/Argentina/Salta"),
        tz=fx.TZ,
        now=fx.NOW,
    )
    assert_valid_card(built)
    (zone,) = [node for node in of_type(built, "Input.ChoiceSet") if node["id"] == "timezone"]
    assert zone["value"] == "Asia/Kathmandu" and zone.get("isMultiSelect") is not True
    offered = [choice["value"] for choice in zone["choices"]]
    assert {*COMMON_TIME_ZONES, "America/Argentina/Salta"} == set(offered)  # the client's own, not a common one
    titles = [choice["title"] for choice in zone["choices"]]
    assert "(UTC+05:45) Asia/Kathmandu" in titles and "(UTC-03:00) America/Argentina/Salta" in titles
    assert "(UTC+00:00) Europe/London" in titles and "(UTC+11:00) Australia/Sydney" in titles  # offsets at NOW
    offsets = [title.split(")")[0] for title in titles]
    assert titles[0].startswith("(UTC-10:00)") and titles[-1].startswith("(UTC+13:00)")
    assert len(offsets) == len(titles) and all(time_zone(name) is not None for name in COMMON_TIME_ZONES)
    assert press_and_parse(built, "Save", {"timezone": "America/Argentina/Salta"}).timezone == "America/Argentina/Salta"


def test_a_refused_save_keeps_the_form_with_each_message_under_its_input() -> None:
    typed = reminder_data(timezone="Mars/Olympus", minWaiting="0", time="16:45", days="mon,fri")
    errors = form_errors(typed)
    assert errors == {
        "timezone": "Pick a time zone from the list.",
        "minWaiting": "Minimum waiting must be a number from 1 to 1000.",
    }
    built = reminder_settings_card(
        settings_view(values=SAVED | submitted_values(typed), errors=errors), tz=fx.TZ, now=fx.NOW
    )
    assert_valid_card(built)
    body = built["body"]
    assert body[0]["items"][0]["text"] == "Not saved: fix what is marked below."  # the banner
    ids = [node.get("id") for node in body]
    for input_id, message in errors.items():
        after = body[ids.index(input_id) + 1]
        assert (after["type"], after["text"], after["color"]) == ("TextBlock", message, "Attention")
    assert len([node for node in body if node.get("color") == "Attention"]) == 2  # only the refused inputs
    # what was typed is still there: the other inputs keep it, the refused number too
    values = {node["id"]: node.get("value") for node in body if "id" in node}
    assert values["time"] == "16:45" and values["days"] == "mon,fri" and values["minWaiting"] == 0
    assert values["timezone"] is None  # not a zone the list offers: the teacher picks one
    assert form_errors(reminder_data(days="", enabled="true")) == {"days": "Pick at least one day for reminders."}
    assert form_errors(reminder_data(quietEnd="")) == {"quietStart": "Set both ends of the quiet hours, or neither."}
    assert form_errors(reminder_data()) == {}


def test_kept_values_that_no_input_can_show_are_dropped() -> None:
    typed = submitted_values(
        {"time": "25:99", "minWaiting": "many", "days": "mon,funday", "classIds": "x/y", "extra": "1"}
    )
    assert "extra" not in typed
    built = reminder_settings_card(settings_view(values=SAVED | typed), tz=fx.TZ, now=fx.NOW)
    assert_valid_card(built)
    values = {node["id"]: node.get("value") for node in built["body"] if "id" in node}
    assert values["time"] is None and values["minWaiting"] is None and values["days"] == "mon"
    assert values["classIds"] is None


def form_errors(data: dict[str, object]) -> dict[str, str]:
    """Every refused input of the settings form, as the refusal of a Save carries them (empty when it parses)."""
    try:
        SaveRemindersAction.parse(data)
    except ActionDataError as error:
        return dict(error.refusals)
    return {}


def reminder_data(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "days": "mon,wed,fri",
        "time": "16:30",
        "timezone": "Europe/London",
        "quietStart": "21:00",
        "quietEnd": "07:00",
        "classIds": f"{CLASS},c2",
        "minWaiting": "3",
        "minAgeDays": "1",
        "enabled": "true",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


ROUND_TRIPS: list[ActionPayload] = [
    SnoozeAction(1),
    SnoozeAction(7),
    RemindOffAction(),
    SaveRemindersAction(("mon", "fri"), time(16, 30), "America/New_York", time(22), time(6), (CLASS,), 5, 0, True),
]


@pytest.mark.parametrize("payload", ROUND_TRIPS, ids=lambda payload: type(payload).__name__)
def test_payloads_round_trip_through_json(payload: ActionPayload) -> None:
    assert parse_action(payload.VERB, card_data(payload)) == payload


def test_save_reminders_round_trips_from_inputs() -> None:
    settings = SaveRemindersAction(
        days=("mon", "fri"),
        at=time(16, 30),
        timezone="America/New_York",
        quiet_start=None,
        quiet_end=None,
        class_ids=(CLASS,),
        min_waiting=5,
        min_age_days=0,
        enabled=True,
    )
    assert settings.to_data() == {}
    assert parse_action("saveReminders", card_data(settings)) == settings


BAD_DATA: dict[str, tuple[str, object]] = {
    "snooze 3 days": ("snooze", {"days": 3}),
    "snooze text": ("snooze", {"days": "week"}),
    "saveReminders unknown day": ("saveReminders", reminder_data(days="mon,funday")),
    "saveReminders no day while enabled": ("saveReminders", reminder_data(days="")),
    "saveReminders bad time": ("saveReminders", reminder_data(time="25:00")),
    "saveReminders non-ASCII digits": ("saveReminders", reminder_data(time="\u0661\u0666:30")),
    "saveReminders missing time": ("saveReminders", reminder_data(time=...)),
    "saveReminders unknown zone": ("saveReminders", reminder_data(timezone="Mars/Olympus_Mons")),
    "saveReminders zone traversal": ("saveReminders", reminder_data(timezone="../../etc/passwd")),
    "saveReminders zone absolute": ("saveReminders", reminder_data(timezone="/etc/localtime")),
    "saveReminders half quiet hours": ("saveReminders", reminder_data(quietEnd="")),
    "saveReminders min waiting zero": ("saveReminders", reminder_data(minWaiting="0")),
    "saveReminders min waiting text": ("saveReminders", reminder_data(minWaiting="many")),
    "saveReminders min age fraction": ("saveReminders", reminder_data(minAgeDays="1.5")),
    "saveReminders enabled maybe": ("saveReminders", reminder_data(enabled="maybe")),
    "saveReminders bad class id": ("saveReminders", reminder_data(classIds=f"{CLASS},a/b")),
}


@pytest.mark.parametrize(("verb", "data"), list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_bad_data_is_refused(verb: str, data: Any) -> None:
    with pytest.raises(ActionDataError):
        parse_action(verb, data)


def test_save_reminders_accepts_card_values() -> None:
    parsed = parse_action("saveReminders", reminder_data(enabled="false", days="", minWaiting="3.0"))
    assert parsed == SaveRemindersAction(
        days=(),
        at=time(16, 30),
        timezone="Europe/London",
        quiet_start=time(21, 0),
        quiet_end=time(7, 0),
        class_ids=(CLASS, "c2"),
        min_waiting=3,
        min_age_days=1,
        enabled=False,
    )
