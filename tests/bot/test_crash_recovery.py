"""A grade write that reached Graph but whose outcome Gradebot never heard — it died between Graph's answer and the
store's "done", or the connection closed before the answer came — is finished without being written a second time.
The soak (tests/soak) does both for real; here the store is put in exactly the state a kill leaves, and the
sandbox loses one answer."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from app import PARTS
from sandbox.faults import ScriptedFault
from storage import open_store
from tests.bot.activities import card_action
from tests.bot.conftest import World, actions_of, invoke_card
from tests.bot.grading_helpers import (
    assignment_named,
    drain_outbox,
    open_grading,
    points_of,
    press,
    shown_submission_id,
)


def _as_if_killed_after_graph_answered(database_url: str) -> None:
    """The entry back in flight under a dead instance's expired lease, with no audit record: what a SIGKILL after
    the PATCH landed and before `complete_outbox` leaves behind."""
    expired = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="microseconds")
    with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
        connection.execute(
            "UPDATE outbox SET status = 'inflight', lease_owner = 'killed:0', lease_until = ?, result = NULL",
            (expired,),
        )
        connection.execute("DELETE FROM audit_log")


async def test_a_write_that_landed_before_a_crash_is_finished_without_writing_it_again(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "6.5", "feedback": "Landed once"})
    assert status == 200 and "Saved" in str(invoke_card(body))
    _as_if_killed_after_graph_answered(world.database_url)

    assert await world.client.app[PARTS].outbox.tick(world.clock()) == 1

    writes = sorted((w.kind, str(w.value)) for w in world.sandbox.writes.since(submission_id=target))
    assert writes == [("feedback", "Landed once"), ("points", "6.5")]  # each once (a $batch answers in any order)
    async with await open_store(world.database_url) as store:
        assert await store.pending_outbox_for(rosa.id) == []
        audit = await store.list_audit(submission_id=target)
    assert len(audit) == 1 and audit[0].after["points"] == 6.5


async def test_a_grade_whose_answer_was_lost_is_written_once(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    # Graph applies the PATCHes of the $batch, then the connection closes before its answer.
    world.sandbox.faults.add_script([ScriptedFault(kind="lost", method="PATCH", path_regex="/outcomes/")])
    status, _ = await press(world, rosa, card, "grade", {"points": "4.25", "feedback": "Heard twice?"})
    assert status == 200
    parts = world.client.app[PARTS]
    for _ in range(10):  # the outbox retries until the write is confirmed
        if not await parts.store.pending_outbox_for(rosa.id):
            break
        world.clock.fixed = datetime.now(UTC) + timedelta(hours=1)
        await parts.outbox.tick(parts.clock())

    writes = sorted((w.kind, str(w.value)) for w in world.sandbox.writes.since(submission_id=target))
    assert writes == [("feedback", "Heard twice?"), ("points", "4.25")]  # each once
    async with await open_store(world.database_url) as store:
        assert await store.pending_outbox_for(rosa.id) == []
        assert [r.after["points"] for r in await store.list_audit(submission_id=target)] == [4.25]


async def test_a_return_whose_answer_was_lost_does_not_publish_a_draft_saved_after_it(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    await press(world, rosa, card, "grade", {"points": "6", "feedback": "Returned as six"})
    card = await open_grading(world, rosa, bio, worksheet, target)
    status, body = await press(world, rosa, card, "return")
    assert status == 200
    yes = next(a for a in actions_of(invoke_card(body)) if a["verb"] == "return" and a["data"]["confirmed"] is True)
    # Graph returns the work, but the answer is lost: Gradebot must check before returning again.
    world.sandbox.faults.add_script([ScriptedFault(kind="lost", method="POST", path_regex="/return$")])
    status, _ = await world.post(card_action(rosa, "return", yes["data"], world.sandbox.connector_url))
    assert status == 200
    card = await open_grading(world, rosa, bio, worksheet, target)
    await press(world, rosa, card, "grade", {"points": "9", "feedback": "A later draft"})  # not for the student yet
    await drain_outbox(world)

    returns = [w for w in world.sandbox.writes.since(submission_id=target) if w.kind == "return"]
    assert len(returns) == 1, "the return was applied again"
    outcome = points_of(world.school.submission(bio.id, worksheet.id, target))
    assert outcome.published_points is not None and outcome.published_points.points == 6
    assert outcome.points is not None and outcome.points.points == 9
