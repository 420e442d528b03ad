"""No grade a teacher typed is ever lost: Graph throttling, 5xx, dropped connections, slowness and a restart all
end with every grade applied exactly once, and the teacher's card tells them what happened."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from app import PARTS, create_app
from bot.grading.writes import GradeChange
from bot.settings import Settings
from sandbox.directory import TENANT_ID, SchoolClass, User
from sandbox.faults import ScriptedFault
from sandbox.school import Actor, Assignment
from storage import open_store
from storage.records import NewOutboxEntry
from tests.bot.activities import card_action, message
from tests.bot.conftest import Clock, World, WorldFactory, card_text, cards_of, invoke_card
from tests.bot.grading_helpers import action, assignment_named, open_grading, points_of, press, shown_submission_id

BATCH = r"/\$batch$"


async def _drain(world: World, client: Any = None) -> None:
    """Run the outbox until nothing is pending, moving Gradebot's clock past every backoff."""
    parts = (client or world.client).app[PARTS]
    for _ in range(20):
        store = parts.store
        pending = await store.due_outbox(datetime.now(UTC) + timedelta(days=1), 100)
        if not pending:
            return
        world.clock.fixed = datetime.now(UTC) + timedelta(hours=1)
        await parts.outbox.tick(parts.clock())
    raise AssertionError("the outbox never drained")


def _grade_entry(
    teacher: User, school_class: SchoolClass, assignment: Assignment, submission_id: str, points: Decimal, feedback: str
) -> NewOutboxEntry:
    """A grade write as Gradebot records it (its key unique to these values)."""
    change = GradeChange(points, feedback, (), known_modified=None, force=False)
    key = f"grade:{teacher.id}:{submission_id}:{points}:{feedback}"
    ids = (teacher.id, TENANT_ID, school_class.id, assignment.id, submission_id)
    return NewOutboxEntry(key, "grade", *ids, change.payload())


async def test_429_503_and_dropped_connections_still_apply_every_grade_exactly_once(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    world.sandbox.faults.add_script(
        [
            ScriptedFault(status=429, retry_after_s=0.05, count=2, method="POST", path_regex=BATCH),
            ScriptedFault(status=503, count=1, method="POST", path_regex=BATCH),
            ScriptedFault(kind="drop", count=2, method="GET", path_regex="/submissions/"),
            ScriptedFault(status=504, count=1, method="POST", path_regex=BATCH),
        ]
    )
    card = await open_grading(world, rosa, bio, worksheet)
    graded: dict[str, float] = {}
    for points in (3.0, 4.5, 6.0, 7.0):
        target = shown_submission_id(card)
        status, body = await press(world, rosa, card, "grade", {"points": str(points), "feedback": f"{points} ok"})
        assert status == 200
        graded[target] = points
        card = invoke_card(body)
        while shown_submission_id(card) in graded:  # still saving this one: move on to the next
            status, body = await press(world, rosa, card, "skip")
            card = invoke_card(body)
    await _drain(world)
    for submission_id, points in graded.items():
        grade = points_of(world.school.submission(bio.id, worksheet.id, submission_id)).points
        assert grade is not None and grade.points == points
    async with await open_store(world.database_url) as store:
        for submission_id in graded:
            assert len(await store.list_audit(submission_id=submission_id)) == 1
        assert await store.pending_outbox_for(rosa.id) == []


async def test_when_graph_keeps_failing_the_card_says_so_and_a_restart_finishes_the_write(
    make_world: WorldFactory, aiohttp_client: Any, gradebot_settings: Callable[..., Settings]
) -> None:
    world = await make_world()
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    world.sandbox.faults.add_script([ScriptedFault(status=503, count=40, method="POST", path_regex=BATCH)])
    status, body = await press(world, rosa, card, "grade", {"points": "9", "feedback": "Kept safe"})
    assert status == 200
    text = card_text(invoke_card(body))
    assert "safe with Gradebot" in text or "Saving" in text, text
    assert points_of(world.school.submission(bio.id, worksheet.id, target)).points is None
    # The bot goes down with the write still pending; Graph recovers; a new process on the same database finishes it.
    await world.client.close()
    world.sandbox.faults.clear_script()
    settings = gradebot_settings(world.sandbox)
    clock = Clock()
    clock.fixed = datetime.now(UTC) + timedelta(hours=1)
    restarted = await aiohttp_client(create_app(settings, clock=clock))
    store = restarted.app[PARTS].store
    for _ in range(100):  # the restarted worker picks the pending write up by itself
        if not await store.pending_outbox_for(rosa.id):
            break
        await restarted.app[PARTS].outbox.tick(restarted.app[PARTS].clock())
        await asyncio.sleep(0.05)
    grade = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    assert grade is not None and grade.points == 9
    async with await open_store(world.database_url) as store:
        assert len(await store.list_audit(submission_id=target)) == 1
    await restarted.close()


async def test_a_slow_graph_gets_a_saving_card_within_the_invoke_budget_then_the_card_updates(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    url = world.sandbox.connector_url
    # A real card message in the 1:1 chat (sent through the Bot Connector, so it has an activity id there).
    status, body = await world.post(message(rosa, "grade Cell structure", url, expect_replies=False))
    assert status in (200, 201)
    sent = [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")]
    card_activity = sent[-1]
    card = cards_of([card_activity.activity])[0]
    target = shown_submission_id(card)
    world.sandbox.faults.add_script(
        [ScriptedFault(kind="delay", delay_ms=3500, count=1, method="POST", path_regex=BATCH)]
    )
    data = {**action(card, "grade")["data"], "points": "5", "feedback": "Worth the wait"}
    status, body = await world.post(card_action(rosa, "grade", data, url, reply_to_id=card_activity.activity_id))
    assert status == 200
    assert "Saving" in card_text(invoke_card(body))
    for _ in range(100):
        updates = [a for a in world.sandbox.connector.activities if a.operation == "update"]
        if updates:
            break
        await asyncio.sleep(0.1)
    assert updates and updates[-1].activity_id == card_activity.activity_id
    student = world.school.directory.users[world.school.submission(bio.id, worksheet.id, target).student_id]
    assert f"Saved to Teams Assignments for {student.display_name}." in card_text(updates[-1].activity)
    grade = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    assert grade is not None and grade.points == 5


async def test_a_newer_grade_for_the_same_submission_wins_over_an_older_pending_one(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    world.sandbox.faults.add_script([ScriptedFault(status=503, count=8, method="POST", path_regex=BATCH)])
    status, body = await press(world, rosa, card, "grade", {"points": "3", "feedback": "first thought"})
    assert status == 200 and "Saving" in card_text(invoke_card(body))
    world.sandbox.faults.clear_script()
    status, body = await press(world, rosa, invoke_card(body), "grade", {"points": "8", "feedback": "second thought"})
    assert status == 200
    await _drain(world)
    grade = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    assert grade is not None and grade.points == 8
    async with await open_store(world.database_url) as store:
        audit = await store.list_audit(submission_id=target)
    # The older write may have landed first (in order) or been dropped as superseded — never after the newer one.
    assert audit[0].after["points"] == 8
    assert [r.after["points"] for r in audit] in ([8], [8, 3])
    assert len({r.outbox_key for r in audit}) == len(audit)


async def test_a_grade_saved_while_a_dead_instance_held_an_earlier_one_is_not_overwritten_when_that_lands(
    world: World,
) -> None:
    """An instance died writing Rosa's first grade; its PATCH may still land. Her second grade, saved through this
    instance, waits for the dead lease to run out rather than land first and be overwritten (it used to answer
    "Saved" and lose to the late PATCH)."""
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    store = world.client.app[PARTS].store
    first = _grade_entry(rosa, bio, worksheet, target, Decimal(3), "first thought")
    entry, _ = await store.enqueue_outbox(first, datetime.now(UTC))
    assert await store.claim_outbox(entry.id, "instance-that-died", datetime.now(UTC), timedelta(seconds=90))

    status, body = await press(world, rosa, card, "grade", {"points": "8", "feedback": "second thought"})

    assert status == 200 and "Saving" in card_text(invoke_card(body))
    outcome = points_of(world.school.submission(bio.id, worksheet.id, target))
    assert outcome.points is None, "written while the earlier write could still land"
    world.school.set_points(bio.id, worksheet.id, target, outcome.id, 3.0, by=Actor.user(rosa.id))  # it lands
    await _drain(world)
    grade = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    assert grade is not None and grade.points == 8
    finished = await store.get_outbox(entry.id)
    assert finished is not None and finished.result == {"superseded": True}


async def test_a_fresh_write_is_left_to_the_instance_that_recorded_it_for_the_invoke_budget(world: World) -> None:
    """Another instance's tick at the moment of a save used to take the write away from the press, which then
    answered "Saving…" for a write that lands in milliseconds (and read the submission alongside the write)."""
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    outbox = world.client.app[PARTS].outbox
    another_instance = dataclasses.replace(outbox, owner="another-instance")
    now = world.clock.fixed = datetime.now(UTC)

    entry = await outbox.record(_grade_entry(rosa, bio, worksheet, target, Decimal(5), "on time"))

    assert await another_instance.tick(now) == 0, "another instance's tick took the write from the press"
    assert await outbox.store.due_outbox(now + timedelta(seconds=2), 10) == []
    assert [e.id for e in await outbox.store.due_outbox(now + timedelta(seconds=3), 10)] == [entry.id]


async def test_a_teacher_told_saving_is_told_the_end_even_when_the_first_card_update_fails(world: World) -> None:
    """The write lands in the background, but Graph fails the reads that would update the teacher's card: the
    notice stays owed in the store, and the outbox's next tick updates the card (it used to stay "Saving…")."""
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    url = world.sandbox.connector_url
    status, _ = await world.post(message(rosa, "grade Cell structure", url, expect_replies=False))
    assert status in (200, 201)
    card_activity = [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")][-1]
    card = cards_of([card_activity.activity])[0]
    target = shown_submission_id(card)
    world.sandbox.faults.add_script(
        [ScriptedFault(kind="delay", delay_ms=3500, count=1, method="POST", path_regex=BATCH)]
    )
    data = {**action(card, "grade")["data"], "points": "6", "feedback": "Told in the end"}
    status, body = await world.post(card_action(rosa, "grade", data, url, reply_to_id=card_activity.activity_id))
    assert status == 200 and "Saving" in card_text(invoke_card(body))
    # The invoke was answered; now every read of the assignment fails until the write has landed and given up
    # updating the card.
    world.sandbox.faults.add_script(
        [ScriptedFault(status=503, count=1000, method="GET", path_regex=f"/assignments/{worksheet.id}$")]
    )
    parts = world.client.app[PARTS]
    await parts.outbox.stop()  # waits for the write in flight and its attempt to update the card
    assert not [a for a in world.sandbox.connector.activities if a.operation == "update"], "Graph failed the reads"
    grade = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    assert grade is not None and grade.points == 6
    world.sandbox.faults.clear_script()
    await parts.outbox.tick(parts.clock())
    updates = [a for a in world.sandbox.connector.activities if a.operation == "update"]
    assert updates and updates[-1].activity_id == card_activity.activity_id
    assert "Saved to Teams Assignments" in card_text(updates[-1].activity)
    assert await parts.store.owed_notices(10) == []
