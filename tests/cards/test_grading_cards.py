"""The grading card and its follow-ups: inputs, actions and their data, confirm steps, conflicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cards.actions import (
    FEEDBACK_MAX_LENGTH,
    ExcuseAction,
    GradeAction,
    OpenGradingAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    SkipAction,
    parse_action,
)
from cards.confirm import confirm_card, conflict_card
from cards.grading import all_graded_card, grading_card, saving_card
from cards.render import MAX_CARD_BYTES, Banner, card_size
from graph.models import RubricSelection, Submission
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import button, executes, of_type, press, press_and_parse, texts, verbs

GRADED_AT = datetime(2025, 11, 30, 18, 0, tzinfo=UTC)


def graded_submission(**outcome_args: Any) -> Submission:
    return fx.submission(
        outcome_items=fx.outcomes(modified=GRADED_AT, modified_by=fx.TEACHER, **outcome_args),
        resources=[
            fx.file_resource("Essay.docx", "https://contoso.sharepoint.com/sites/bio/Essay.docx"),
            fx.link_resource("My sources", "https://en.wikipedia.org/wiki/Cell_(biology)"),
            fx.link_resource("Sneaky", "javascript:alert(1)"),
        ],
    )


def points_card(**kwargs: Any) -> dict[str, Any]:
    return grading_card(
        fx.education_class(),
        fx.assignment(),
        graded_submission(points=15.5, feedback="Good start.\nCite sources."),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
        position=3,
        waiting=12,
        graded_not_returned=4,
        **kwargs,
    )


def test_points_grading_card() -> None:
    built = points_card()
    assert_valid_card(built)
    text = texts(built)
    assert "Ada Lovelace" in text and "Essay 1: Cells" in text and "Biology 9A" in text
    assert "3 of 12 waiting" in text
    assert "Turned in Sun 30 Nov, 09:15 (1 day ago)" in text
    assert "Late by 2 days" in text  # due Fri 28 Nov 23:59, turned in Sun 30 Nov
    assert "Current grade: 15.5/20 + feedback (draft: the student hasn't seen it)." in text

    (points,) = [node for node in of_type(built, "Input.Number") if node["id"] == "points"]
    assert points["min"] == 0 and points["max"] == 20
    assert points["label"] == "Points (out of 20)"
    assert points["errorMessage"] == "Enter points from 0 to 20."
    assert points["value"] == 15.5
    (feedback,) = of_type(built, "Input.Text")
    assert feedback["id"] == "feedback" and feedback["isMultiline"] is True
    assert feedback["maxLength"] == FEEDBACK_MAX_LENGTH
    assert feedback["value"] == "Good start.\nCite sources."
    assert not of_type(built, "Input.ChoiceSet")

    links = {node["title"]: node["url"] for node in of_type(built, "Action.OpenUrl")}
    assert links["Essay.docx"] == "https://contoso.sharepoint.com/sites/bio/Essay.docx"
    assert links["My sources"].startswith("https://en.wikipedia.org/")
    assert "Sneaky" not in links  # javascript: links never reach a card
    assert links["Open in Teams"].startswith("https://teams.microsoft.com/")
    assert card_size(built) < MAX_CARD_BYTES


def test_grading_card_actions_and_their_data() -> None:
    built = points_card()
    assert verbs(built) == ["grade", "skip", "return", "returnAll", "reassign", "excuse"]
    assert button(built, "Save grade").get("associatedInputs") == "auto"
    assert button(built, "Skip")["associatedInputs"] == "none"

    saved = press_and_parse(built, "Save grade", {"points": "18", "feedback": "Great revision."})
    assert saved == GradeAction(
        fx.CLASS_ID,
        fx.ASSIGNMENT_ID,
        "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
        Decimal(18),
        "Great revision.",
        (),
        GRADED_AT,
        False,
        fx.NONCE,
    )
    unchanged = press_and_parse(built, "Save grade")  # the inputs' pre-filled values come back as they were
    assert isinstance(unchanged, GradeAction) and unchanged.points == Decimal("15.5")
    ids = (fx.CLASS_ID, fx.ASSIGNMENT_ID, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
    assert press_and_parse(built, "Skip") == SkipAction(*ids)
    assert press_and_parse(built, "Return") == ReturnAction(*ids, False, fx.NONCE)
    assert press_and_parse(built, "Return all graded (4)") == ReturnAllAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 4, fx.NONCE
    )
    assert press_and_parse(built, "Return for revision") == ReassignAction(*ids, False, fx.NONCE)
    assert press_and_parse(built, "Excuse") == ExcuseAction(*ids, False, fx.NONCE)
    # secondary actions sit in a ShowCard
    (more,) = of_type(built, "Action.ShowCard")
    assert [action["verb"] for action in executes(more)] == ["returnAll", "reassign", "excuse"]


def test_status_banner_and_entered_values_survive_an_error() -> None:
    entered = GradeAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, "s1", Decimal(25), "Typed text", (), None, False, fx.NONCE)
    built = points_card(status=Banner.error("Points must be between 0 and 20."), entered=entered)
    assert_valid_card(built)
    first = built["body"][0]
    assert first["type"] == "Container" and first["style"] == "attention"
    assert "Points must be between 0 and 20." in texts(first)
    (points,) = of_type(built, "Input.Number")
    assert points["value"] == 25
    (feedback,) = of_type(built, "Input.Text")
    assert feedback["value"] == "Typed text"


def test_credit_assignment_has_feedback_only() -> None:
    built = grading_card(
        fx.education_class(),
        fx.assignment(max_points=None),
        fx.submission(),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
    )
    assert_valid_card(built)
    assert not of_type(built, "Input.Number")
    assert [node["id"] for node in of_type(built, "Input.Text")] == ["feedback"]
    assert "Return all graded" not in texts(built)  # nothing graded and unreturned
    assert "Not graded yet." in texts(built)
    assert "No files or links were turned in." in texts(built)
    saved = press_and_parse(built, "Save grade", {"feedback": "Nice"})
    assert isinstance(saved, GradeAction) and saved.points is None and saved.known_modified is None


def test_rubric_assignment_has_one_choice_set_per_quality() -> None:
    submission = fx.submission(
        outcome_items=fx.outcomes(
            points=3, levels={fx.QUALITY_IDS[0]: fx.LEVEL_IDS[1]}, modified=GRADED_AT, modified_by=fx.TEACHER
        )
    )
    built = grading_card(
        fx.education_class(),
        fx.assignment(max_points=4),
        submission,
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
        rubric=fx.rubric(),
    )
    assert_valid_card(built)
    choice_sets = of_type(built, "Input.ChoiceSet")
    assert [node["id"] for node in choice_sets] == [f"level_{quality}" for quality in fx.QUALITY_IDS]
    assert [choice["value"] for choice in choice_sets[0]["choices"]] == list(fx.LEVEL_IDS)
    assert choice_sets[0]["choices"][0]["title"] == "Good (2 pts)"
    assert choice_sets[0]["value"] == fx.LEVEL_IDS[1]  # preselected from the rubric outcome
    assert "value" not in choice_sets[1]
    assert choice_sets[0]["label"] == "Argument (weight 50%)"
    saved = press_and_parse(built, "Save grade", {f"level_{fx.QUALITY_IDS[1]}": fx.LEVEL_IDS[0]})
    assert isinstance(saved, GradeAction)
    assert saved.levels == (
        RubricSelection(fx.QUALITY_IDS[0], fx.LEVEL_IDS[1]),
        RubricSelection(fx.QUALITY_IDS[1], fx.LEVEL_IDS[0]),
    )


def test_returned_and_changed_grades_are_told_apart() -> None:
    returned = grading_card(
        fx.education_class(),
        fx.assignment(),
        graded_submission(points=18, published_points=18, feedback="Fine", published_feedback="Fine"),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
    )
    assert "(returned: the student sees this)" in texts(returned)
    changed = grading_card(
        fx.education_class(),
        fx.assignment(),
        graded_submission(points=19, published_points=15, feedback="Fine", published_feedback="Fine"),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
    )
    assert "the student still sees 15/20 until you return it" in texts(changed)


def test_confirm_cards_say_exactly_what_happens() -> None:
    assignment = fx.assignment()
    submission = graded_submission(points=18, feedback="Well done")
    ids = (fx.CLASS_ID, fx.ASSIGNMENT_ID, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")

    returning = confirm_card(
        ReturnAction(*ids, False, fx.NONCE),
        assignment,
        student_name="Ada Lovelace",
        submission=submission,
    )
    assert "Return to Ada Lovelace: 18/20 and your feedback become visible to the student." in texts(returning)
    assert press_and_parse(returning, "Yes, return") == ReturnAction(*ids, True, fx.NONCE)
    assert press_and_parse(returning, "Cancel") == OpenGradingAction(*ids)

    all_of_them = confirm_card(ReturnAllAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 7, fx.NONCE), assignment)
    assert "Return 7 graded submissions of Essay 1: Cells" in texts(all_of_them)
    assert press_and_parse(all_of_them, "Yes, return all") == ReturnAllAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, True, 7, fx.NONCE
    )
    assert press_and_parse(all_of_them, "Cancel") == OpenGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID)

    excusing = confirm_card(
        ExcuseAction(*ids, False, fx.NONCE), assignment, student_name="Ada Lovelace", warning="It is late."
    )
    assert "Excusing deletes the feedback and rubric selections." in texts(excusing)
    assert "It is late." in texts(excusing)
    assert press_and_parse(excusing, "Yes, excuse") == ExcuseAction(*ids, True, fx.NONCE)

    revising = confirm_card(ReassignAction(*ids, False, fx.NONCE), assignment, student_name="Ada Lovelace")
    assert "for revision" in texts(revising)
    assert press_and_parse(revising, "Yes, return for revision") == ReassignAction(*ids, True, fx.NONCE)
    for built in (returning, all_of_them, excusing, revising):
        assert_valid_card(built)


def test_all_graded_offers_return_all_only_when_something_is_unreturned() -> None:
    pending = all_graded_card(fx.assignment(), fx.education_class(), 5, nonce=fx.NONCE)
    assert_valid_card(pending)
    assert "All graded" in texts(pending)
    assert press_and_parse(pending, "Return all graded (5)") == ReturnAllAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 5, fx.NONCE
    )
    done = all_graded_card(fx.assignment(), fx.education_class(), 0, nonce=fx.NONCE)
    assert_valid_card(done)
    assert "returnAll" not in verbs(done)


def test_conflict_card_shows_both_grades() -> None:
    fresh = fx.submission(
        outcome_items=fx.outcomes(
            points=16,
            feedback="Their feedback",
            modified=datetime(2025, 12, 1, 9, 55, tzinfo=UTC),
            modified_by=fx.OTHER_TEACHER,
        )
    )
    mine = GradeAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, fresh.id, Decimal(18), "My feedback", (), GRADED_AT, False, fx.NONCE
    )
    built = conflict_card(
        fx.education_class(), fx.assignment(), fresh, "Ada Lovelace", mine, tz=fx.TZ, now=fx.NOW, nonce="n2-abcdefgh"
    )
    assert_valid_card(built)
    text = texts(built)
    assert "Alan Turing changed the grade for Ada Lovelace" in text
    assert "Mon 1 Dec, 09:55 (5 minutes ago)" in text
    assert "18/20" in text and "My feedback" in text and "16/20" in text and "Their feedback" in text
    ids = (fx.CLASS_ID, fx.ASSIGNMENT_ID, fresh.id)
    assert press_and_parse(built, "Keep mine") == ResolveConflictAction(
        *ids, "mine", Decimal(18), "My feedback", "n2-abcdefgh"
    )
    assert press_and_parse(built, "Keep theirs") == ResolveConflictAction(*ids, "theirs", None, None, "n2-abcdefgh")


def test_saving_card() -> None:
    saving = GradeAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, "s1", Decimal(18), None, (), None, False, fx.NONCE)
    built = saving_card(
        fx.education_class(),
        fx.assignment(),
        "Ada Lovelace",
        saving=saving,
        check_again=OpenGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, "s1"),
    )
    assert_valid_card(built)
    assert "Saving 18/20 for Ada Lovelace…" in texts(built)
    verb, data = press(built, "Check again")
    assert parse_action(verb, data) == OpenGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, "s1")


def test_grading_card_with_graph_seven_digit_timestamps() -> None:
    """Graph writes 7 fractional digits; the card must still render and carry a parseable knownModified."""
    submission = fx.submission(outcome_items=fx.outcomes(points=12, modified=GRADED_AT))
    built = grading_card(fx.education_class(), fx.assignment(), submission, "Ada", tz=fx.TZ, now=fx.NOW, nonce=fx.NONCE)
    data = json.loads(json.dumps(button(built, "Save grade")["data"]))
    data["knownModified"] = "2025-11-30T18:00:00.1234567Z"
    data["points"] = "12"
    parsed = parse_action("grade", data)
    assert isinstance(parsed, GradeAction)
    assert parsed.known_modified == datetime(2025, 11, 30, 18, 0, 0, 123456, tzinfo=UTC)
