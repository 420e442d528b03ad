"""Issue 8, "no grade a teacher typed is ever lost", in grading: undo never erases a co-teacher's later grade, an
undo press undoes exactly the write its card names and only once, a second Save with other values is written (and
the reply says what Graph holds) — and co-teachers grading, undoing and returning one submission at once overwrite
nothing silently. Everything runs through the real app, outbox, SQLite and sandbox."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from sandbox.faults import ScriptedFault
from sandbox.school import Actor
from storage import open_store
from tests.bot.activities import card_action, message
from tests.bot.conftest import World, actions_of, card_text, cards_of, invoke_card, replies
from tests.bot.grading_helpers import (
    action,
    assignment_named,
    drain_outbox,
    feedback_of,
    open_grading,
    points_of,
    press,
    shown_submission_id,
)
from tests.cards.schema import card_errors

BATCH = r"/\$batch$"


def _points(world: World, class_id: str, assignment_id: str, submission_id: str) -> float | None:
    grade = points_of(world.school.submission(class_id, assignment_id, submission_id)).points
    return None if grade is None else grade.points


def _feedback(world: World, class_id: str, assignment_id: str, submission_id: str) -> str | None:
    feedback = feedback_of(world.school.submission(class_id, assignment_id, submission_id)).feedback
    return None if feedback is None else feedback.text.content


async def _undo_by_message(world: World, user: Any) -> dict[str, Any]:
    status, body = await world.post(message(user, "undo", world.sandbox.connector_url))
    assert status == 200
    cards = cards_of(replies(body))
    assert len(cards) == 1, body
    assert card_errors(cards[0]) == []
    return cards[0]


# Finding 1: undo restores only while Graph still holds the grade this teacher wrote. -------------------------------


async def test_undo_shows_the_conflict_when_a_co_teacher_changed_the_grade_straight_in_graph(world: World) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    first_points = _points(world, chem.id, problems.id, target)
    status, _ = await press(world, rosa, card, "grade", {"points": "70", "feedback": "Rosa: check the units"})
    assert status == 200 and _points(world, chem.id, problems.id, target) == 70
    # David grades the same work in Teams Assignments, straight to Graph.
    outcome = points_of(world.school.submission(chem.id, problems.id, target))
    world.school.set_points(chem.id, problems.id, target, outcome.id, 95.0, by=Actor.user(david.id))

    conflict = await _undo_by_message(world, rosa)
    text = card_text(conflict)
    assert _points(world, chem.id, problems.id, target) == 95, "undo erased the co-teacher's grade"
    assert "Undone" not in text
    assert "95" in text and "70" in text and david.display_name in text, text
    assert {a["title"] for a in actions_of(conflict)} >= {"Undo anyway", "Keep the current grade"}

    # "Undo anyway" replaces the grade the card showed, not a newer one: David changes it again meanwhile …
    world.school.set_points(chem.id, problems.id, target, outcome.id, 96.0, by=Actor.user(david.id))
    status, body = await press(world, rosa, conflict, "undo")
    assert status == 200
    conflict = invoke_card(body)
    assert "96" in card_text(conflict) and "Undone" not in card_text(conflict)
    assert _points(world, chem.id, problems.id, target) == 96
    # … so she is asked again; now undo anyway restores what was there before her save.
    status, body = await press(world, rosa, conflict, "undo")
    assert status == 200
    done = invoke_card(body)
    assert card_errors(done) == []
    assert "Undone" in card_text(done)
    assert _points(world, chem.id, problems.id, target) == first_points


async def test_undo_shows_the_conflict_when_a_co_teacher_regraded_through_gradebot(world: World) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    await press(world, rosa, card, "grade", {"points": "70", "feedback": "Rosa: check the units"})
    davids_card = await open_grading(world, david, chem, problems, target)
    status, body = await press(world, david, davids_card, "grade", {"points": "95", "feedback": "David: excellent"})
    assert status == 200 and "Saved" in card_text(invoke_card(body))

    conflict = await _undo_by_message(world, rosa)
    assert "95" in card_text(conflict) and david.display_name in card_text(conflict)
    assert _points(world, chem.id, problems.id, target) == 95
    assert _feedback(world, chem.id, problems.id, target) == "David: excellent"
    # "Keep the current grade" changes nothing and shows the grading card.
    keep = next(a for a in actions_of(conflict) if a["title"] == "Keep the current grade")
    status, body = await world.post(card_action(rosa, keep["verb"], keep["data"], world.sandbox.connector_url))
    assert status == 200 and shown_submission_id(invoke_card(body)) == target
    assert _points(world, chem.id, problems.id, target) == 95


async def test_the_outbox_refuses_an_undo_when_graph_changed_after_it_was_recorded(world: World) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    await press(world, rosa, card, "grade", {"points": "70", "feedback": "Rosa"})
    # Graph fails while the undo is applied: it stays in the outbox ("Undoing…") …
    world.sandbox.faults.add_script([ScriptedFault(status=503, count=40, method="POST", path_regex=BATCH)])
    answer = await _undo_by_message(world, rosa)
    assert "Undoing" in card_text(answer)
    # … David grades meanwhile, then Graph recovers and the outbox retries the undo.
    outcome = points_of(world.school.submission(chem.id, problems.id, target))
    world.school.set_points(chem.id, problems.id, target, outcome.id, 95.0, by=Actor.user(david.id))
    world.sandbox.faults.clear_script()
    await drain_outbox(world)
    assert _points(world, chem.id, problems.id, target) == 95, "the retried undo overwrote David's grade"
    async with await open_store(world.database_url) as store:
        audit = await store.list_audit(submission_id=target)
        assert await store.pending_outbox_for(rosa.id) == []
    assert [r.action for r in audit] == ["grade"] and audit[0].undone_at is None


# Finding 2: an undo press undoes exactly the write its card names, once. -------------------------------------------


async def _grade_two(world: World) -> tuple[str, str, dict[str, Any]]:
    """Rosa grades submission A (5) then B (6); returns their ids and the card answered after B."""
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    first = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "5", "feedback": "A"})
    assert status == 200
    card = invoke_card(body)
    second = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "6", "feedback": "B"})
    assert status == 200
    return first, second, invoke_card(body)


async def test_a_replayed_undo_press_undoes_the_write_its_card_names_once(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    first, second, saved = await _grade_two(world)
    # The banner says which student got which value, and offers Undo for exactly that write.
    banner = card_text(saved)
    student = world.school.directory.users[world.school.submission(bio.id, worksheet.id, second).student_id]
    assert f"Saved 6/10 and feedback for {student.display_name}" in banner, banner
    undo = action(saved, "undo")
    activity = card_action(rosa, "undo", undo["data"], world.sandbox.connector_url)
    answers = await asyncio.gather(*(world.post(copy.deepcopy(activity)) for _ in range(3)))
    assert [status for status, _ in answers] == [200, 200, 200]
    assert _points(world, bio.id, worksheet.id, second) is None
    assert _points(world, bio.id, worksheet.id, first) == 5
    status, body = await world.post(copy.deepcopy(activity))
    assert status == 200
    again = invoke_card(body)
    assert card_errors(again) == []
    assert "already undone" in card_text(again).lower()
    assert _points(world, bio.id, worksheet.id, first) == 5, "a replayed undo undid another grade"
    assert _feedback(world, bio.id, worksheet.id, first) == "A"
    async with await open_store(world.database_url) as store:
        undos = [r for r in await store.list_audit(teacher_id=rosa.id) if r.action == "undo"]
    assert len(undos) == 1 and undos[0].submission_id == second


async def test_an_undo_invoke_that_names_no_write_undoes_nothing(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    first, second, _ = await _grade_two(world)
    activity = card_action(rosa, "undo", {"nonce": "replayed-nonce-0001"}, world.sandbox.connector_url)
    for _ in range(2):
        status, body = await world.post(copy.deepcopy(activity))
        assert status == 200 and "Undone" not in card_text(invoke_card(body))
    assert _points(world, bio.id, worksheet.id, first) == 5
    assert _points(world, bio.id, worksheet.id, second) == 6


async def test_an_undo_button_works_only_for_the_teacher_whose_write_it_names(world: World) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    card = await open_grading(world, rosa, chem, problems)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "70", "feedback": "Rosa"})
    undo = action(invoke_card(body), "undo")
    status, body = await world.post(card_action(david, "undo", undo["data"], world.sandbox.connector_url))
    assert status == 200 and "Undone" not in card_text(invoke_card(body))
    assert _points(world, chem.id, problems.id, target) == 70


# Finding 3: Save covers what was typed: same card + other values is a new write, and the reply says what Graph holds.


async def test_a_second_save_on_the_same_card_with_other_values_is_written_and_reported(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    target = shown_submission_id(card)
    status, body = await press(world, rosa, card, "grade", {"points": "4", "feedback": "First look"})
    assert status == 200 and "Saved 4/10" in card_text(invoke_card(body))
    status, body = await press(world, rosa, card, "grade", {"points": "7", "feedback": "Read it again: better"})
    assert status == 200
    text = card_text(invoke_card(body))
    assert "Saved 7/10" in text and "Saved 4" not in text, text
    assert _points(world, bio.id, worksheet.id, target) == 7
    assert _feedback(world, bio.id, worksheet.id, target) == "Read it again: better"
    # The same card with the same values again is a replay: nothing is written twice.
    status, body = await press(world, rosa, card, "grade", {"points": "7", "feedback": "Read it again: better"})
    assert status == 200 and "Saved 7/10" in card_text(invoke_card(body))
    async with await open_store(world.database_url) as store:
        audit = await store.list_audit(submission_id=target)
    assert [r.after["points"] for r in audit] == [7, 4]


# Concurrency: co-teachers on one submission at once. ----------------------------------------------------------------


async def test_co_teachers_grading_undoing_and_returning_one_submission_at_once_overwrite_nothing_silently(
    world: World,
) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    url = world.sandbox.connector_url
    card = await open_grading(world, rosa, chem, problems)
    for round_ in range(4):
        target = shown_submission_id(card)
        status, body = await press(world, rosa, card, "grade", {"points": "70", "feedback": f"Rosa {round_}"})
        assert status == 200
        card = invoke_card(body)  # the next submission, with "Saved … Undo" for this one
        rosas_undo = action(card, "undo")
        davids_card = await open_grading(world, david, chem, problems, target)
        status, body = await press(world, rosa, await open_grading(world, rosa, chem, problems, target), "return")
        confirm_return = next(a for a in actions_of(invoke_card(body)) if a["data"].get("confirmed") is True)

        if (
            round_ % 2
        ):  # every other round, slow the first reads of David and the return so that Rosa's undo tends to land first
            world.sandbox.faults.add_script(
                [
                    ScriptedFault(
                        kind="delay", delay_ms=400, count=2, method="GET", path_regex=f"/assignments/{problems.id}$"
                    )
                ]
            )
        davids_save, rosas_undo_answer, rosas_return = await asyncio.gather(
            press(world, david, davids_card, "grade", {"points": "95", "feedback": f"David {round_}"}),
            world.post(card_action(rosa, "undo", rosas_undo["data"], url)),
            world.post(card_action(rosa, "return", confirm_return["data"], url)),
        )
        world.sandbox.faults.clear_script()
        answers = {"save": davids_save, "undo": rosas_undo_answer, "return": rosas_return}
        texts: dict[str, str] = {}
        for name, (status, body) in answers.items():
            assert status == 200, (name, body)
            answered = invoke_card(body)
            assert card_errors(answered) == [], name
            texts[name] = card_text(answered)
        saved, undone = "Saved 95/100" in texts["save"], "Undone" in texts["undo"]
        # Exactly one of the two competing changes lands; the other teacher is shown why, never told it worked.
        assert saved != undone, texts
        final = _points(world, chem.id, problems.id, target)
        assert final == (95 if saved else None), (final, texts)
        loser = texts["undo"] if saved else texts["save"]
        assert any(word in loser for word in ("changed", "returned", "still being saved")), loser
        assert "Returned to" in texts["return"], texts["return"]
        # Every write replaced exactly the grade its author had seen (Rosa's 70), never an unseen one.
        async with await open_store(world.database_url) as store:
            audit = await store.list_audit(submission_id=target)
        for record in audit:
            if record.action == "undo" or record.teacher_id == david.id:
                assert record.before.get("points") == 70, record
        assert len([r for r in audit if r.action in ("grade", "undo")]) == 2
        # David's grade (if it landed) is the working grade; the student sees only what was returned.
        await drain_outbox(world)
        assert _points(world, chem.id, problems.id, target) == final


async def test_a_co_teachers_pending_grade_is_never_dropped_as_superseded_by_another_teachers_save(
    world: World,
) -> None:
    rosa, david, chem = world.user("rosa"), world.user("david"), world.school_class("CHEM201")
    problems = assignment_named(world, chem, "Stoichiometry problem set")
    url = world.sandbox.connector_url
    # David's grading card as a real message in his 1:1 chat, so that Gradebot can update it later.
    status, _ = await world.post(message(david, "grade Stoichiometry problem set", url, expect_replies=False))
    assert status in (200, 201)
    sent = [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")][-1]
    davids_card = cards_of([sent.activity])[0]
    target = shown_submission_id(davids_card)
    rosas_card = await open_grading(world, rosa, chem, problems, target)
    world.sandbox.faults.add_script([ScriptedFault(status=503, count=40, method="POST", path_regex=BATCH)])
    data = {**action(davids_card, "grade")["data"], "points": "95", "feedback": "David"}
    status, body = await world.post(card_action(david, "grade", data, url, reply_to_id=sent.activity_id))
    assert status == 200 and "Saving" in card_text(invoke_card(body))
    async with await open_store(world.database_url) as store:
        for _ in range(200):  # until David's first attempt has ended and his write waits for its retry
            if [e.status for e in await store.pending_outbox_for(david.id)] == ["pending"]:
                break
            await asyncio.sleep(0.05)
    world.sandbox.faults.clear_script()
    status, body = await press(world, rosa, rosas_card, "grade", {"points": "70", "feedback": "Rosa"})
    assert status == 200 and "Saved 70/100" in card_text(invoke_card(body))
    await drain_outbox(world)
    # David's write was not applied over Rosa's (she saved after his card was shown) and not silently dropped
    # either: his card is updated to say it was not saved because someone changed the grade.
    assert _points(world, chem.id, problems.id, target) == 70
    for _ in range(100):
        updates = [a for a in world.sandbox.connector.activities if a.operation == "update"]
        if updates:
            break
        await asyncio.sleep(0.05)
    assert updates and updates[-1].activity_id == sent.activity_id, "David was never told what happened"
    told = card_text(updates[-1].activity)
    assert "Not saved" in told and "Saved to Teams Assignments" not in told, told
