"""Issue 4 end to end: grading from the card through the real app, outbox and sandbox; writes checked in the
sandbox's own state (gradedBy, publishedPoints) — and every bad input answered in the card, writing nothing."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

import pytest

from sandbox.school import Actor
from storage import open_store
from tests.bot.activities import card_action
from tests.bot.conftest import World, actions_of, card_text, elements_of, invoke_card
from tests.bot.grading_helpers import (
    action,
    assignment_named,
    feedback_of,
    open_grading,
    points_of,
    press,
    rubric_of,
    shown_submission_id,
)
from tests.bot.truth import needs_grading
from tests.cards.schema import card_errors


async def test_a_teacher_grades_and_the_next_submission_opens(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    assert card_errors(card) == []
    first = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "8.5", "feedback": "Clear diagrams."})
    assert status == 200
    following = invoke_card(body)
    assert card_errors(following) == []
    assert "Saved" in card_text(following)
    assert shown_submission_id(following) != first
    graded = world.school.submission(bio.id, worksheet.id, first)
    points, feedback = points_of(graded), feedback_of(graded)
    assert points.points is not None and points.points.points == 8.5
    assert points.points.graded_by == Actor.user(rosa.id)
    assert feedback.feedback is not None and feedback.feedback.text.content == "Clear diagrams."
    # Nothing reaches the student until the teacher returns it.
    assert points.published_points is None and feedback.published_feedback is None
    assert world.school.shown_state(graded).status == "submitted"


async def test_return_needs_a_confirmation_and_then_publishes_the_grade(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    submission_id = shown_submission_id(card)
    await press(world, rosa, card, "grade", {"points": "9", "feedback": "Great."})
    card = await open_grading(world, rosa, bio, worksheet, submission_id)
    status, body = await press(world, rosa, card, "return")
    assert status == 200
    confirm = invoke_card(body)
    assert "visible to the student" in card_text(confirm)
    assert world.school.shown_state(world.school.submission(bio.id, worksheet.id, submission_id)).status == "submitted"
    yes = next(a for a in actions_of(confirm) if a["verb"] == "return" and a["data"]["confirmed"] is True)
    status, body = await world.post(card_action(rosa, "return", yes["data"], world.sandbox.connector_url))
    assert status == 200
    assert "Returned to" in card_text(invoke_card(body))
    returned = world.school.submission(bio.id, worksheet.id, submission_id)
    assert world.school.shown_state(returned).status == "returned"
    published = points_of(returned).published_points
    assert published is not None and published.points == 9
    assert feedback_of(returned).published_feedback is not None


async def test_a_students_token_on_the_same_action_writes_nothing(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    before = copy.deepcopy(points_of(world.school.submission(bio.id, worksheet.id, target)))
    student = world.school.directory.users[bio.student_ids[0]]
    status, body = await press(world, student, card, "grade", {"points": "10", "feedback": "I graded myself"})
    assert status == 200
    assert "Only teachers of this class" in card_text(invoke_card(body))
    after = points_of(world.school.submission(bio.id, worksheet.id, target))
    assert after.points == before.points and after.last_modified_at == before.last_modified_at
    for verb in ("return", "excuse", "reassign", "skip"):
        status, body = await press(world, student, card, verb)
        assert status == 200 and "Only teachers" in card_text(invoke_card(body))
    assert world.school.shown_state(world.school.submission(bio.id, worksheet.id, target)).status == "submitted"


async def test_a_replayed_invoke_changes_nothing_twice(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    data = {**action(card, "grade")["data"], "points": "7", "feedback": "Once."}
    activity = card_action(rosa, "grade", data, world.sandbox.connector_url)
    first, second, third = await asyncio.gather(*(world.post(copy.deepcopy(activity)) for _ in range(3)))
    assert {first[0], second[0], third[0]} == {200}
    modified = points_of(world.school.submission(bio.id, worksheet.id, target)).last_modified_at
    status, _ = await world.post(copy.deepcopy(activity))
    assert status == 200
    assert points_of(world.school.submission(bio.id, worksheet.id, target)).last_modified_at == modified
    store = await open_store(world.database_url)
    try:
        audit = await store.list_audit(submission_id=target)
    finally:
        await store.close()
    assert len(audit) == 1
    assert audit[0].after["points"] == 7 and audit[0].before["points"] is None


async def test_a_change_by_someone_else_meanwhile_is_shown_and_the_teacher_chooses(world: World) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    outcome = points_of(world.school.submission(chem.id, problems.id, target))
    world.school.set_points(chem.id, problems.id, target, outcome.id, 55.0, by=Actor.user(david.id))
    status, body = await press(world, rosa, card, "grade", {"points": "80", "feedback": ""})
    assert status == 200
    conflict = invoke_card(body)
    text = card_text(conflict)
    assert "changed" in text and "55" in text and "80" in text
    assert points_of(world.school.submission(chem.id, problems.id, target)).points.points == 55.0  # type: ignore[union-attr]
    status, body = await press(world, rosa, conflict, "resolveConflict")  # the first button: keep mine
    assert status == 200
    assert points_of(world.school.submission(chem.id, problems.id, target)).points.points == 80.0  # type: ignore[union-attr]


BAD_GRADES: list[tuple[str, dict[str, Any], str]] = [
    ("text points", {"points": "abc"}, "must be a number"),
    ("negative", {"points": "-1"}, "can't be negative"),
    ("NaN", {"points": "NaN"}, "must be a number"),
    ("Infinity", {"points": "Infinity"}, "must be a number"),
    ("huge exponent", {"points": "1e309"}, "less than 10,000,000"),
    ("too many decimals", {"points": "8.125"}, "at most 2 decimals"),
    ("above maxPoints", {"points": "11"}, "between 0 and 10"),
    ("very large", {"points": "99999999"}, "less than 10,000,000"),
    ("huge string", {"points": "9" * 5000}, "must be a number"),
    ("points as a list", {"points": [1, 2]}, "must be a number"),
    ("feedback too long", {"points": "5", "feedback": "x" * 4001}, "too long"),
    ("control characters", {"points": "5", "feedback": "ok\u0000\u0007"}, "can't be saved"),
    ("nothing entered", {"points": "", "feedback": ""}, "Enter points or feedback"),
]


@pytest.mark.parametrize(("case", "inputs", "message"), BAD_GRADES, ids=[c[0] for c in BAD_GRADES])
async def test_bad_grades_get_a_clear_message_and_write_nothing(
    world: World, case: str, inputs: dict[str, Any], message: str
) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    before = copy.deepcopy(world.school.submission(bio.id, worksheet.id, target).outcomes)
    status, body = await press(world, rosa, card, "grade", inputs)
    assert status == 200, case
    answer = invoke_card(body)
    assert message in card_text(answer), (case, card_text(answer))
    assert world.school.submission(bio.id, worksheet.id, target).outcomes == before


FORGED: list[tuple[str, dict[str, Any]]] = [
    ("missing ids", {"classId": None, "assignmentId": None, "submissionId": None}),
    ("ids with slashes", {"submissionId": "../../outcomes/x"}),
    ("ids with spaces", {"assignmentId": "a b"}),
    ("wrong type", {"classId": {"nested": True}}),
    ("unknown submission", {"submissionId": "0a0a0a0a-0000-0000-0000-000000000000"}),
    ("another teacher's class", {"classId": "e4d01624-aab9-50bc-89d6-1ac636b946cc"}),
    ("stale nonce", {"nonce": "bad nonce!"}),
]


@pytest.mark.parametrize(("case", "forged"), FORGED, ids=[c[0] for c in FORGED])
async def test_forged_or_broken_card_data_writes_nothing_and_is_never_500(
    world: World, case: str, forged: dict[str, Any]
) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    before = copy.deepcopy(world.school.submission(bio.id, worksheet.id, target).outcomes)
    data = {**action(card, "grade")["data"], "points": "5", **forged}
    status, body = await world.post(card_action(rosa, "grade", data, world.sandbox.connector_url))
    assert status == 200, case
    assert body["statusCode"] == 200 and body["value"], case
    assert world.school.submission(bio.id, worksheet.id, target).outcomes == before


async def test_an_unknown_verb_gets_a_clear_message(world: World) -> None:
    status, body = await world.post(
        card_action(world.user("rosa"), "deleteEverything", {}, world.sandbox.connector_url)
    )
    assert status == 200
    assert "older version of Gradebot" in card_text(invoke_card(body))


async def test_credit_assignments_take_feedback_only(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    reflection = assignment_named(world, bio, "Ecosystem reflection")
    card = await open_grading(world, rosa, bio, reflection)
    assert '"id": "points"' not in json.dumps(card)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"feedback": "Thoughtful reflection."})
    assert status == 200
    assert "Saved" in card_text(invoke_card(body))
    feedback = feedback_of(world.school.submission(bio.id, reflection.id, target)).feedback
    assert feedback is not None and feedback.text.content == "Thoughtful reflection."
    status, body = await press(world, rosa, card, "grade", {"points": "5", "feedback": "x"})
    assert status == 200
    assert "no points" in card_text(invoke_card(body))


async def test_rubric_assignments_take_a_level_per_criterion(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    lab = assignment_named(world, bio, "Microscope lab report")
    card = await open_grading(world, rosa, bio, lab)
    choice_sets = [e for e in elements_of(card) if e.get("type") == "Input.ChoiceSet" and e["id"].startswith("level_")]
    assert len(choice_sets) == 4
    inputs = {c["id"]: c["choices"][0]["value"] for c in choice_sets}
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "18", **inputs})
    assert status == 200
    assert "Saved" in card_text(invoke_card(body))
    selected = rubric_of(world.school.submission(bio.id, lab.id, target)).selected_levels
    assert {(s.quality_id, s.column_id) for s in selected} == {(k.removeprefix("level_"), v) for k, v in inputs.items()}


async def test_skip_shows_the_next_waiting_submission(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    first = shown_submission_id(card)
    status, body = await press(world, rosa, card, "skip")
    assert status == 200
    assert shown_submission_id(invoke_card(body)) != first
    assert needs_grading(world.school, world.school.submission(bio.id, worksheet.id, first))


async def test_excuse_warns_that_feedback_is_deleted_and_then_excuses(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "excuse")
    assert status == 200
    confirm = invoke_card(body)
    assert "deletes the feedback" in card_text(confirm)
    yes = next(a for a in actions_of(confirm) if a["verb"] == "excuse" and a["data"]["confirmed"] is True)
    status, body = await world.post(card_action(rosa, "excuse", yes["data"], world.sandbox.connector_url))
    assert status == 200
    assert "Excused" in card_text(invoke_card(body))
    assert world.school.shown_state(world.school.submission(bio.id, worksheet.id, target)).status == "excused"


async def test_return_for_revision_reassigns(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "reassign")
    assert status == 200
    yes = next(a for a in actions_of(invoke_card(body)) if a["verb"] == "reassign" and a["data"]["confirmed"] is True)
    status, body = await world.post(card_action(rosa, "reassign", yes["data"], world.sandbox.connector_url))
    assert status == 200
    assert world.school.shown_state(world.school.submission(bio.id, worksheet.id, target)).status == "reassigned"


async def test_return_all_shows_the_count_and_returns_every_graded_submission(world: World) -> None:
    rosa, chem = world.user("rosa"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    for points in ("70", "85"):
        status, body = await press(world, rosa, card, "grade", {"points": points, "feedback": "ok"})
        assert status == 200
        card = invoke_card(body)
    graded = [
        s
        for s in problems.submissions.values()
        if world.school.shown_state(s).status == "submitted" and not needs_grading(world.school, s)
    ]
    assert len(graded) >= 2
    status, body = await press(world, rosa, card, "returnAll")
    assert status == 200
    confirm = invoke_card(body)
    assert f"Return {len(graded)} graded" in card_text(confirm)
    yes = next(a for a in actions_of(confirm) if a["verb"] == "returnAll" and a["data"]["confirmed"] is True)
    status, body = await world.post(card_action(rosa, "returnAll", yes["data"], world.sandbox.connector_url))
    assert status == 200
    assert f"Returned {len(graded)}" in card_text(invoke_card(body))
    for submission in graded:
        assert world.school.shown_state(submission).status == "returned"
        assert points_of(submission).published_points is not None


async def test_undo_restores_the_last_grade_until_it_is_returned(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    await press(world, rosa, card, "grade", {"points": "6", "feedback": "Draft feedback"})
    assert points_of(world.school.submission(bio.id, worksheet.id, target)).points is not None
    from tests.bot.activities import message
    from tests.bot.conftest import cards_of, replies

    status, body = await world.post(message(rosa, "undo", world.sandbox.connector_url))
    assert status == 200
    assert "Undone" in card_text(cards_of(replies(body))[0])
    restored = world.school.submission(bio.id, worksheet.id, target)
    assert points_of(restored).points is None
    assert feedback_of(restored).feedback is None
    status, body = await world.post(message(rosa, "undo", world.sandbox.connector_url))
    assert status == 200
    assert "nothing" in json.dumps(replies(body)).lower() or "no saved grade" in json.dumps(replies(body)).lower()


async def test_bad_points_keep_the_feedback_the_teacher_typed(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    status, body = await press(world, rosa, card, "grade", {"points": "abc", "feedback": "Two paragraphs of notes"})
    assert status == 200
    answer = invoke_card(body)
    feedback = next(e for e in elements_of(answer) if e.get("id") == "feedback")
    assert feedback.get("value") == "Two paragraphs of notes"
    assert "must be a number" in card_text(answer)


async def test_keep_mine_replaces_only_the_grade_its_conflict_card_showed(world: World) -> None:
    """David changes the grade again after Rosa's conflict card was shown: her "Keep mine" must be a new
    conflict, not a silent overwrite of his newer grade (it used to be written with force)."""
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    outcome = points_of(world.school.submission(chem.id, problems.id, target))
    world.school.set_points(chem.id, problems.id, target, outcome.id, 55.0, by=Actor.user(david.id))
    status, body = await press(world, rosa, card, "grade", {"points": "80", "feedback": ""})
    conflict = invoke_card(body)
    await asyncio.sleep(0.01)  # Graph's timestamps must tell David's two changes apart
    world.school.set_points(chem.id, problems.id, target, outcome.id, 60.0, by=Actor.user(david.id))
    status, body = await press(world, rosa, conflict, "resolveConflict")  # keep mine, over the 55 it showed
    assert status == 200
    assert points_of(world.school.submission(chem.id, problems.id, target)).points.points == 60.0  # type: ignore[union-attr]
    again = invoke_card(body)
    assert "changed" in card_text(again) and "60" in card_text(again), "Rosa sees David's newer grade"
    status, body = await press(world, rosa, again, "resolveConflict")
    assert points_of(world.school.submission(chem.id, problems.id, target)).points.points == 80.0  # type: ignore[union-attr]
