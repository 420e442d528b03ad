"""Helpers for grading tests: open a grading card, press its buttons like Teams does, read the sandbox's truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from app import PARTS
from sandbox.directory import SchoolClass, User
from sandbox.school import Assignment, FeedbackOutcome, PointsOutcome, RubricOutcome, Submission
from tests.bot.activities import card_action
from tests.bot.conftest import World, actions_of


def assignment_named(world: World, school_class: SchoolClass, name: str) -> Assignment:
    return next(a for a in world.school.assignments_of(school_class.id) if a.display_name == name)


def points_of(submission: Submission) -> PointsOutcome:
    return next(o for o in submission.outcomes if isinstance(o, PointsOutcome))


def feedback_of(submission: Submission) -> FeedbackOutcome:
    return next(o for o in submission.outcomes if isinstance(o, FeedbackOutcome))


def rubric_of(submission: Submission) -> RubricOutcome:
    return next(o for o in submission.outcomes if isinstance(o, RubricOutcome))


def action(card: dict[str, Any], verb: str) -> dict[str, Any]:
    found = [a for a in actions_of(card) if a["verb"] == verb]
    assert found, f"no {verb} button on the card"
    return found[0]


async def press(
    world: World, user: User, card: dict[str, Any], verb: str, inputs: dict[str, Any] | None = None, **extra: Any
) -> tuple[int, Any]:
    """Press the card's `verb` button as Teams would: its data merged with the input values (strings)."""
    data = {**action(card, verb)["data"], **(inputs or {})}
    return await world.post(card_action(user, verb, data, world.sandbox.connector_url, **extra))


async def open_grading(
    world: World, user: User, school_class: SchoolClass, assignment: Assignment, submission_id: str | None = None
) -> dict[str, Any]:
    data: dict[str, Any] = {"classId": school_class.id, "assignmentId": assignment.id}
    if submission_id:
        data["submissionId"] = submission_id
    status, body = await world.post(card_action(user, "openGrading", data, world.sandbox.connector_url))
    assert status == 200, body
    return opened_below(world, body)


def opened_below(world: World, body: Any) -> dict[str, Any]:
    """The card a button opened as a new message below its own card (which the invoke answer left unchanged)."""
    assert body["statusCode"] == 200 and body["type"] == "application/vnd.microsoft.activity.message", body
    sent = [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")]
    assert sent, "no new message was posted"
    attachments = (sent[-1].activity or {}).get("attachments") or []
    assert len(attachments) == 1, sent[-1]
    return dict(attachments[0]["content"])


def shown_submission_id(card: dict[str, Any]) -> str:
    return str(action(card, "grade")["data"]["submissionId"])


async def drain_outbox(world: World) -> None:
    """Run the outbox until nothing is pending, moving Gradebot's clock past every backoff."""
    parts = world.client.app[PARTS]
    for _ in range(20):
        if not await parts.store.due_outbox(datetime.now(UTC) + timedelta(days=1), 100):
            return
        world.clock.fixed = datetime.now(UTC) + timedelta(hours=1)
        await parts.outbox.tick(parts.clock())
    raise AssertionError("the outbox never drained")
