"""Issue 5: digests of work waiting to be graded, with a controlled clock — delivered once per due slot through the
sandbox's Bot Connector (also across DST and after a missed tick), never when nothing waits, snooze/off, connector
429 retried, 403 pausing, an expired sign-in producing a note, application permissions, and two bot processes
sharing one database sending each digest once."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app import PARTS, create_app
from bot.reminders.schedule import default_schedule, due_slot
from bot.settings import Settings
from sandbox.connector import ConnectorFault, personal_conversation_id
from sandbox.directory import TENANT_ID, User
from sandbox.school import Actor, FeedbackOutcome, ItemBody
from storage.records import ReminderSchedule
from tests.bot.activities import card_action, message
from tests.bot.conftest import (
    World,
    WorldFactory,
    actions_of,
    card_text,
    cards_of,
    elements_of,
    invoke_card,
    replies,
)
from tests.bot.truth import ungraded_submissions
from tests.cards.schema import card_errors

PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Monday 30 Nov 2026, 15:30 in Berlin (CET, UTC+1).
MONDAY_1530 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)


async def _say_hello(world: World, user: User) -> None:
    """The teacher has talked to Gradebot 1:1 once (so it has their conversation and Teams id)."""
    status, _ = await world.post(message(user, "help", world.sandbox.connector_url))
    assert status == 200


async def _schedule(world: World, user: User, **changes: Any) -> ReminderSchedule:
    schedule = replace(default_schedule(user.id, TENANT_ID, "Europe/Berlin", MONDAY_1530), **changes)
    await world.client.app[PARTS].store.save_schedule(schedule)
    return schedule


def _digests(world: World, user: User) -> list[dict[str, Any]]:
    conversation = personal_conversation_id(user.id)
    return [
        a.activity
        for a in world.sandbox.connector.activities
        if a.conversation_id == conversation
        and a.operation in ("send", "reply")
        and a.activity
        and "waiting" in card_text(a.activity)
    ]


async def _sweep(world: World, at: datetime) -> Any:
    return await world.client.app[PARTS].reminders.run_once(at)


async def test_each_due_teacher_gets_one_digest_per_slot(world: World) -> None:
    rosa, david = world.user("rosa"), world.user("david")
    for teacher in (rosa, david):
        await _say_hello(world, teacher)
        await _schedule(world, teacher)
    early = await _sweep(world, MONDAY_1530 - timedelta(minutes=1))
    assert early.sent == [] and _digests(world, rosa) == []
    report = await _sweep(world, MONDAY_1530)
    assert sorted(report.sent) == sorted([rosa.id, david.id])
    for later in (1, 5, 60):
        again = await _sweep(world, MONDAY_1530 + timedelta(minutes=later))
        assert again.sent == []
    assert len(_digests(world, rosa)) == 1 and len(_digests(world, david)) == 1
    digest = cards_of(_digests(world, rosa))[0]
    waiting = len(ungraded_submissions(world.school, rosa.id))
    text = card_text(digest)
    assert "Biology 101" in text and "Chemistry 201" in text and "World History" not in text
    counts = [int(n) for n in re.findall(r"(\d+) waiting to be graded", text)]
    assert sum(counts) == waiting
    assert [a for a in actions_of(digest) if a["verb"] == "openGrading"]
    assert [a for a in actions_of(digest) if a["verb"] == "snooze"]


async def test_a_missed_tick_is_caught_up_once_and_a_stale_one_is_not(world: World) -> None:
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    await _schedule(world, rosa)
    late = await _sweep(world, MONDAY_1530 + timedelta(hours=2))  # the bot was down at 15:30
    assert late.sent == [rosa.id]
    assert (await _sweep(world, MONDAY_1530 + timedelta(hours=3))).sent == []
    # Tuesday's 15:30 was missed by more than the catch-up window: it is not sent on Wednesday morning.
    wednesday_morning = MONDAY_1530 + timedelta(days=1, hours=14)
    assert (await _sweep(world, wednesday_morning)).sent == []
    assert len(_digests(world, rosa)) == 1


async def test_dst_changes_keep_the_local_time_and_send_exactly_once(world: World) -> None:
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    schedule = await _schedule(world, rosa, days=frozenset(range(7)), local_time="07:00")
    # Europe/Berlin: summer time ends Sun 25 Oct 2026 (03:00 → 02:00) and starts Sun 29 Mar 2026 (02:00 → 03:00).
    cases = [
        (datetime(2026, 10, 24, 5, 0, tzinfo=UTC), "2026-10-24T07:00"),  # CEST: 07:00 = 05:00Z
        (datetime(2026, 10, 25, 6, 0, tzinfo=UTC), "2026-10-25T07:00"),  # CET from today: 07:00 = 06:00Z
        (datetime(2026, 3, 28, 6, 0, tzinfo=UTC), "2026-03-28T07:00"),
        (datetime(2026, 3, 29, 5, 0, tzinfo=UTC), "2026-03-29T07:00"),
    ]
    for instant, key in cases:
        slot = due_slot(schedule, instant)
        assert slot is not None and slot.key == key and slot.at == instant
        assert due_slot(schedule, instant - timedelta(minutes=1)).key != key  # type: ignore[union-attr]
    sent = 0
    tick = datetime(2026, 10, 24, 4, 0, tzinfo=UTC)
    while tick < datetime(2026, 10, 26, 4, 0, tzinfo=UTC):  # every 30 min across the change
        sent += len((await _sweep(world, tick)).sent)
        tick += timedelta(minutes=30)
    assert sent == 2
    assert len(_digests(world, rosa)) == 2


async def test_nothing_is_sent_when_nothing_is_waiting(world: World) -> None:
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    await _schedule(world, rosa)
    for submission in ungraded_submissions(world.school, rosa.id):
        outcome = next(o for o in submission.outcomes if isinstance(o, FeedbackOutcome))
        world.school.set_feedback(
            submission.class_id,
            submission.assignment_id,
            submission.id,
            outcome.id,
            ItemBody("Seen", "text"),
            by=Actor.user(rosa.id),
        )
    report = await _sweep(world, MONDAY_1530)
    assert report.sent == [] and rosa.id in report.nothing_waiting
    assert _digests(world, rosa) == []


async def test_remind_on_off_and_snooze_from_the_digest(world: World) -> None:
    rosa = world.user("rosa")
    url = world.sandbox.connector_url
    status, body = await world.post(message(rosa, "remind on", url))
    assert "Reminders on" in card_text(cards_of(replies(body))[0])
    schedule = await world.client.app[PARTS].store.get_schedule(rosa.id)
    assert schedule is not None and schedule.enabled and schedule.timezone == "Europe/Berlin"
    assert (await _sweep(world, MONDAY_1530)).sent == [rosa.id]
    digest = cards_of(_digests(world, rosa))[0]
    snooze_week = next(a for a in actions_of(digest) if a["verb"] == "snooze" and a["data"]["days"] == 7)
    world.clock.fixed = MONDAY_1530 + timedelta(minutes=5)
    status, body = await world.post(card_action(rosa, "snooze", snooze_week["data"], url))
    assert status == 200 and "Snoozed" in json.dumps(body)
    for day in range(1, 8):  # a week with no reminders: Tuesday to next Monday
        assert (await _sweep(world, MONDAY_1530 + timedelta(days=day))).sent == []
    assert (await _sweep(world, MONDAY_1530 + timedelta(days=8))).sent == [rosa.id]
    status, body = await world.post(message(rosa, "remind off", url))
    assert "off" in json.dumps(replies(body))
    assert (await _sweep(world, MONDAY_1530 + timedelta(days=9))).sent == []


async def test_the_settings_card_saves_a_schedule_and_refuses_bad_input(world: World) -> None:
    rosa = world.user("rosa")
    url = world.sandbox.connector_url
    status, body = await world.post(message(rosa, "remind", url))
    card = cards_of(replies(body))[0]
    save = next(a for a in actions_of(card) if a["verb"] == "saveReminders")
    inputs = {
        "days": "mon,wed",
        "time": "16:45",
        "timezone": "America/New_York",
        "quietStart": "",
        "quietEnd": "",
        "classIds": "",
        "minWaiting": "3",
        "minAgeDays": "0",
        "enabled": "true",
    }
    status, body = await world.post(card_action(rosa, "saveReminders", {**save["data"], **inputs}, url))
    assert "Saved" in card_text(invoke_card(body))
    schedule = await world.client.app[PARTS].store.get_schedule(rosa.id)
    assert schedule is not None
    assert (schedule.days, schedule.local_time, schedule.timezone, schedule.min_waiting) == (
        frozenset({0, 2}),
        "16:45",
        "America/New_York",
        3,
    )
    for bad, refused in (
        ({"timezone": "Mars/Olympus"}, {"timezone": "Pick a time zone from the list."}),
        ({"time": "25:99"}, {"time": "Reminder time must be a time like 16:30."}),
        ({"classIds": "e4d01624-aab9-50bc-89d6-1ac636b946cc"}, {"classIds": "Pick only classes you teach."}),
        (
            {"minWaiting": "-4", "timezone": "Mars/Olympus"},
            {
                "minWaiting": "Minimum waiting must be a number from 1 to 1000.",
                "timezone": "Pick a time zone from the list.",
            },
        ),
        (
            {"quietStart": "16:00", "quietEnd": "17:00"},
            {"time": "The reminder time falls inside your quiet hours. Pick another time."},
        ),
    ):
        typed = {**inputs, "days": "tue,thu", "minAgeDays": "2", **bad}
        status, body = await world.post(card_action(rosa, "saveReminders", {**save["data"], **typed}, url))
        assert status == 200
        form = invoke_card(body)
        assert card_errors(form) == []
        assert "Something went wrong" not in card_text(form), bad  # the form stays
        fields = form["body"]
        ids = [field.get("id") for field in fields]
        for input_id, why in refused.items():  # each message right under its input
            assert fields[ids.index(input_id) + 1]["text"] == why, bad
        assert len([field for field in fields if field.get("color") == "Attention"]) == len(refused)
        kept = {field["id"]: field.get("value") for field in fields if "id" in field}
        assert kept["days"] == "tue,thu" and kept["minAgeDays"] == 2, bad  # what the teacher typed is kept
        unchanged = await world.client.app[PARTS].store.get_schedule(rosa.id)
        assert unchanged == schedule, bad


async def test_the_settings_card_says_whether_reminders_are_on_in_the_clients_time_zone(world: World) -> None:
    rosa = world.user("rosa")
    url = world.sandbox.connector_url
    status, body = await world.post(message(rosa, "remind", url, timezone="America/Argentina/Salta"))
    assert status == 200
    form = cards_of(replies(body))[0]
    assert card_errors(form) == []
    assert "Reminders are off" in card_text(form) and "Reminders are on" not in card_text(form)
    assert [a["verb"] for a in actions_of(form)] == ["saveReminders"]  # nothing to turn off
    (zone,) = [e for e in elements_of(form) if e.get("id") == "timezone"]
    assert zone["type"] == "Input.ChoiceSet" and zone["value"] == "America/Argentina/Salta"  # the client's own
    assert "America/Argentina/Salta" in [choice["value"] for choice in zone["choices"]]
    status, body = await world.post(message(rosa, "remind on", url, timezone="America/Argentina/Salta"))
    assert status == 200
    form = cards_of(replies(body))[0]
    assert "Reminders are on." in card_text(form)
    assert [a["verb"] for a in actions_of(form)] == ["saveReminders", "remindOff"]
    schedule = await world.client.app[PARTS].store.get_schedule(rosa.id)
    assert schedule is not None and schedule.timezone == "America/Argentina/Salta"


async def test_a_429_from_the_connector_is_retried_and_a_403_pauses_reminders(world: World) -> None:
    rosa, david = world.user("rosa"), world.user("david")
    for teacher in (rosa, david):
        await _say_hello(world, teacher)
        await _schedule(world, teacher)

    def posts_to(user: User) -> re.Pattern[str]:
        return re.compile(re.escape(personal_conversation_id(user.id)) + "/activities")

    world.sandbox.connector.add_fault(
        ConnectorFault(429, remaining=2, method="POST", retry_after=0, path_regex=posts_to(rosa))
    )
    world.sandbox.connector.add_fault(ConnectorFault(403, remaining=5, method="POST", path_regex=posts_to(david)))
    report = await _sweep(world, MONDAY_1530)
    assert report.sent == [rosa.id]
    assert len(_digests(world, rosa)) == 1
    assert not [f for f in world.sandbox.connector.faults if f.status == 429], "both 429s were answered and retried"
    assert "blocked" in report.failed[david.id]
    paused = await world.client.app[PARTS].store.get_schedule(david.id)
    assert paused is not None and paused.paused_reason
    assert (await _sweep(world, MONDAY_1530 + timedelta(days=1))).skipped[david.id].startswith("paused")


async def test_an_expired_sign_in_produces_a_sign_in_note(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    await _schedule(world, rosa)
    report = await _sweep(world, MONDAY_1530)
    assert report.sign_in_notes == [rosa.id]
    notes = [
        a
        for a in world.sandbox.connector.activities
        if a.conversation_id == personal_conversation_id(rosa.id) and "sign in" in card_text(a.activity).lower()
    ]
    assert len(notes) == 1
    assert (await _sweep(world, MONDAY_1530 + timedelta(minutes=30))).sign_in_notes == []


async def test_application_permissions_build_the_digest_without_the_teachers_token(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False, reminder_data_access="application")
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    await _schedule(world, rosa)
    report = await _sweep(world, MONDAY_1530)
    assert report.sent == [rosa.id]
    assert world.sandbox.identity.stats.issued.get("client_credentials", 0) >= 1


async def test_two_bot_processes_sharing_one_database_send_each_digest_once(
    world: World, aiohttp_client: Any, gradebot_settings: Callable[..., Settings]
) -> None:
    second = await aiohttp_client(create_app(gradebot_settings(world.sandbox)))
    rosa, david = world.user("rosa"), world.user("david")
    for teacher in (rosa, david):
        await _say_hello(world, teacher)
        await _schedule(world, teacher)
    first_parts, second_parts = world.client.app[PARTS], second.app[PARTS]
    for minute in range(0, 30, 5):
        at = MONDAY_1530 + timedelta(minutes=minute)
        await asyncio.gather(first_parts.reminders.run_once(at), second_parts.reminders.run_once(at))
    assert len(_digests(world, rosa)) == 1 and len(_digests(world, david)) == 1
    await second.close()


async def test_remind_once_runs_one_sweep_from_the_command_line(world: World, tmp_path: Path) -> None:
    rosa = world.user("rosa")
    await _say_hello(world, rosa)
    await _schedule(world, rosa)
    env = {
        **os.environ,  # noqa: TID251 - the test harness's own switches and child environments
        "SANDBOX_URL": world.sandbox.base_url,
        "DATABASE_URL": world.database_url,
        "MicrosoftAppId": "",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": "",  # telemetry off: nothing leaves the machine in tests
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        "remind-once",
        "--at",
        "2026-11-30T15:30:00+01:00",
        cwd=PROJECT_ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()
    report = json.loads(out)
    assert report["sent"] == [rosa.id]
    assert len(_digests(world, rosa)) == 1
