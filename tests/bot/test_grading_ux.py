"""Issue 12's grading points over HTTP (real app, outbox, SQLite, sandbox): a score over the maximum is refused on the
same card, the Saved banner names the student, Grade opens below the list instead of replacing it, Return all names
who gets what, and undo names the student and the value and keeps what was typed."""

from __future__ import annotations

import copy

from sandbox.school import Actor
from tests.bot.activities import card_action, message
from tests.bot.conftest import World, card_text, cards_of, elements_of, invoke_card, replies
from tests.bot.grading_helpers import (
    action,
    assignment_named,
    open_grading,
    opened_below,
    points_of,
    press,
    shown_submission_id,
)
from tests.bot.truth import assignment_counts
from tests.cards.schema import card_errors


def _inputs(card: dict[str, object]) -> dict[str, object]:
    return {e["id"]: e.get("value") for e in elements_of(card) if str(e.get("type", "")).startswith("Input.")}


def _student(world: World, class_id: str, assignment_id: str, submission_id: str) -> str:
    student_id = world.school.submission(class_id, assignment_id, submission_id).student_id
    return world.school.directory.users[student_id].display_name


async def test_a_score_over_the_maximum_is_refused_on_the_same_card_with_what_was_typed(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")  # out of 10
    card = await open_grading(world, rosa, bio, worksheet)
    (points_input,) = [e for e in elements_of(card) if e.get("id") == "points"]
    assert points_input["label"] == "Points (0–10)" and "max" not in points_input  # nothing for a client to clamp
    target = shown_submission_id(card)
    before = copy.deepcopy(world.school.submission(bio.id, worksheet.id, target).outcomes)
    for typed in ("150", 150):  # Input.Number may send the typed text or a number
        status, body = await press(world, rosa, card, "grade", {"points": typed, "feedback": "Nearly there"})
        assert status == 200
        answer = invoke_card(body)
        assert card_errors(answer) == []
        assert "150 is more than this assignment's 10 points: nothing was saved." in card_text(answer)
        assert shown_submission_id(answer) == target  # the same card, not the next student
        assert _inputs(answer)["points"] == 150 and _inputs(answer)["feedback"] == "Nearly there"
        assert world.school.submission(bio.id, worksheet.id, target).outcomes == before  # nothing written


async def test_the_saved_banner_names_the_student_and_who_comes_next(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    saved_id = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "8", "feedback": "Good"})
    assert status == 200
    following = invoke_card(body)
    saved, following_name = (
        _student(world, bio.id, worksheet.id, saved_id),
        _student(world, bio.id, worksheet.id, shown_submission_id(following)),
    )
    assert f"Saved 8/10 and feedback for {saved} as a draft" in card_text(following)
    assert f"Next: {following_name}." in card_text(following)


async def test_grade_opens_below_the_list_and_the_help_card_stays(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    url = world.sandbox.connector_url
    status, body = await world.post(
        card_action(rosa, "openGrading", {"classId": bio.id, "assignmentId": worksheet.id}, url)
    )
    assert status == 200 and body["value"] == "Opened below."  # the list card is left as it was
    grading = opened_below(world, body)
    assert card_errors(grading) == [] and action(grading, "grade")
    status, body = await world.post(message(rosa, "help", url))
    (help_card,) = cards_of(replies(body))
    status, body = await press(world, rosa, help_card, "openUngraded")
    assert status == 200 and body["type"] == "application/vnd.microsoft.activity.message"
    listed = opened_below(world, body)
    assert card_errors(listed) == [] and "openGrading" in {a.get("verb") for a in elements_of(listed)}


async def test_return_all_confirmation_names_each_student_and_grade(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    graded = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "7", "feedback": "Fine"})
    following = invoke_card(body)
    status, body = await press(world, rosa, following, "returnAll")
    assert status == 200
    confirm = invoke_card(body)
    assert card_errors(confirm) == []
    facts = {f["title"]: f["value"] for e in elements_of(confirm) if e["type"] == "FactSet" for f in e["facts"]}
    assert facts[_student(world, bio.id, worksheet.id, graded)] == "7/10 + feedback"


async def test_undo_names_the_student_and_the_value_and_keeps_what_was_typed(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    earlier = points_of(world.school.submission(bio.id, worksheet.id, target)).points
    status, body = await press(world, rosa, card, "grade", {"points": "9", "feedback": "Typed with care"})
    status, body = await press(world, rosa, invoke_card(body), "undo")
    assert status == 200
    undone = invoke_card(body)
    assert card_errors(undone) == []
    name = _student(world, bio.id, worksheet.id, target)
    restored = " has no grade again" if earlier is None else f"'s grade is back to {earlier.points:g}/10"
    assert f"Undone: {name}{restored}." in card_text(undone), card_text(undone)
    assert _inputs(undone)["points"] == 9 and _inputs(undone)["feedback"] == "Typed with care"
    assert points_of(world.school.submission(bio.id, worksheet.id, target)).points == earlier


def _posted_id(world: World) -> str:
    return [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")][-1].activity_id


def _rewrites(world: World, activity_id: str) -> list[dict[str, object]]:
    return [
        dict(a.activity["attachments"][0]["content"])
        for a in world.sandbox.connector.activities
        if a.operation == "update" and a.activity_id == activity_id and a.activity
    ]


async def test_an_older_card_for_the_same_student_says_it_is_out_of_date(world: World) -> None:
    """Issue 12 (7), over HTTP: the connector stand-in records the update of the older card (Teams' per-user refresh
    is not used, so the Playground shows the same thing)."""
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    first = await open_grading(world, rosa, bio, worksheet)
    older = _posted_id(world)
    target = shown_submission_id(first)
    assert _rewrites(world, older) == []
    await open_grading(world, rosa, bio, worksheet, target)
    (rewritten,) = _rewrites(world, older)
    assert card_errors(rewritten) == []
    name = _student(world, bio.id, worksheet.id, target)
    assert "out of date" in card_text(rewritten) and f"A newer card for {name} is below" in card_text(rewritten)
    assert not [e for e in elements_of(rewritten) if e.get("type") == "Action.Execute"]  # nothing left to press


async def test_after_undo_the_card_that_reported_the_save_says_so(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    posted, target = _posted_id(world), shown_submission_id(card)
    status, _ = await press(world, rosa, card, "grade", {"points": "6", "feedback": "Ok"}, reply_to_id=posted)
    assert status == 200
    status, body = await world.post(message(rosa, "undo", world.sandbox.connector_url))
    assert status == 200 and "Undone" in card_text(cards_of(replies(body)))
    (rewritten,) = _rewrites(world, posted)
    assert card_errors(rewritten) == []
    name = _student(world, bio.id, worksheet.id, target)
    assert f"You undid the save this card reported for {name}" in card_text(rewritten)
    assert "Saved" not in card_text(rewritten) and "undo" not in {a.get("verb") for a in elements_of(rewritten)}
    assert [a.get("verb") for a in elements_of(rewritten) if a.get("type") == "Action.Execute"] == ["showGrading"]


async def test_saving_for_a_student_excused_meanwhile_writes_nothing_and_says_why(world: World) -> None:
    """The excused check moved into the write (one submission read per Save): it still refuses, in words."""
    rosa, david, bio = world.user("rosa"), world.user("david"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    world.school.excuse(bio.id, worksheet.id, target, by=Actor.user(david.id))
    before = copy.deepcopy(world.school.submission(bio.id, worksheet.id, target).outcomes)
    status, body = await press(world, rosa, card, "grade", {"points": "5", "feedback": "Late"})
    assert status == 200
    answer = invoke_card(body)
    assert "excused from the assignment, so there is nothing to grade" in card_text(answer)
    assert world.school.submission(bio.id, worksheet.id, target).outcomes == before


async def test_the_grading_card_shows_progress_as_graded_and_to_go(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    counts = assignment_counts(world.school, bio.id, worksheet.id)
    graded = counts.graded_not_returned + counts.returned
    assert f"{graded} graded · {counts.needs_grading} to go" in card_text(card)
    status, body = await press(world, rosa, card, "grade", {"points": "8", "feedback": "Good"})
    assert status == 200
    assert f"{graded + 1} graded · {counts.needs_grading - 1} to go" in card_text(invoke_card(body))


async def test_the_classes_card_opens_assignments_and_ungraded_below_itself(world: World) -> None:
    rosa = world.user("rosa")
    status, body = await world.post(message(rosa, "classes", world.sandbox.connector_url))
    (classes,) = cards_of(replies(body))
    for verb, heading in (("openAssignments", "Assignments: "), ("openUngraded", "Waiting to be graded")):
        status, body = await press(world, rosa, classes, verb)
        assert status == 200 and body["value"] == "Opened below."  # the classes card is left as it was
        opened = opened_below(world, body)
        assert card_errors(opened) == [] and opened["body"][0]["text"].startswith(heading)
