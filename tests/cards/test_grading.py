"""The grading card and its follow-ups (all graded, confirm steps, grade and undo conflicts): inputs, buttons and the
data they carry; and the grading payloads, with every bad input refused in words a teacher understands."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from bot.school.progress import lateness
from cards.blocks import MAX_CARD_BYTES, ActionDataError, ActionPayload, Banner, card_size
from cards.grading import (
    FEEDBACK_MAX_LENGTH,
    ExcuseAction,
    GradeAction,
    GradeValues,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    ShowGradingAction,
    SkipAction,
    UndoAction,
    all_graded_card,
    confirm_card,
    conflict_card,
    grading_card,
    parse_points,
    undo_conflict_card,
)
from graph.models import RubricSelection, Submission
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import button, card_data, executes, of_type, parse_action, press_and_parse, texts, verbs

CLASS = "0b5a3c1e-5c9d-4c7e-9f1a-2d3e4f5a6b7c"
ASSIGNMENT = "7e1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
SUBMISSION = "5883eaeb-9760-f8e0-6832-a122c4f020be"
QUALITY = "9f1e2d3c-0000-4000-8000-0000000000a1"
LEVEL = "1e2d3c4b-0000-4000-8000-0000000000b1"
NONCE = "n0nce-Abc123_xyz"
MODIFIED = datetime(2025, 11, 30, 12, 0, 1, 500000, tzinfo=UTC)
GRADED_AT = datetime(2025, 11, 30, 18, 0, tzinfo=UTC)
CHANGED_AT = datetime(2025, 12, 1, 9, 55, tzinfo=UTC)


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
    submission, assignment = graded_submission(points=15.5, feedback="Good start.\nCite sources."), fx.assignment()
    return grading_card(
        fx.education_class(),
        assignment,
        submission,
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
        progress=(3, 12),
        late_by=lateness(submission, assignment),
        graded_not_returned=4,
        **kwargs,
    )


def test_points_grading_card() -> None:
    built = points_card()
    assert_valid_card(built)
    text = texts(built)
    assert "Ada Lovelace" in text and "Essay 1: Cells" in text and "Biology 9A" in text
    assert "3 graded · 12 to go" in text
    assert "Turned in Sun 30 Nov, 09:15 (1 day ago)" in text
    assert "Late by 2 days" in text  # due Fri 28 Nov 23:59, turned in Sun 30 Nov
    assert "Current grade: 15.5/20 + feedback (draft: the student hasn't seen it)." in text

    (points,) = [node for node in of_type(built, "Input.Number") if node["id"] == "points"]
    # Issue 12 (1): no min/max a client could clamp 150 to 20 with; the bound is in the label, the server checks.
    assert "min" not in points and "max" not in points
    assert points["label"] == "Points (0–20)"
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
    assert press_and_parse(returning, "Cancel") == ShowGradingAction(*ids)  # back in place, not a new message

    all_of_them = confirm_card(ReturnAllAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 7, fx.NONCE), assignment)
    assert "Return 7 graded submissions of Essay 1: Cells" in texts(all_of_them)
    assert press_and_parse(all_of_them, "Yes, return all") == ReturnAllAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, True, 7, fx.NONCE
    )
    assert press_and_parse(all_of_them, "Cancel") == ShowGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID)

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
    # "Keep mine" replaces exactly the grade shown (theirs, changed at 09:55): a later change is a new conflict.
    shown = datetime(2025, 12, 1, 9, 55, tzinfo=UTC)
    assert press_and_parse(built, "Keep mine") == ResolveConflictAction(
        *ids, "mine", Decimal(18), "My feedback", "n2-abcdefgh", (), shown
    )
    assert press_and_parse(built, "Keep theirs") == ResolveConflictAction(*ids, "theirs", None, None, "n2-abcdefgh")


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


def test_undo_payloads_name_the_write_and_round_trip() -> None:
    plain_press = UndoAction(fx.NONCE, 42)
    assert plain_press.to_data() == {"nonce": fx.NONCE, "writeId": 42}
    assert parse_action("undo", plain_press.to_data()) == plain_press
    anyway = UndoAction(fx.NONCE, 42, anyway=True, known_modified=CHANGED_AT)
    assert parse_action("undo", anyway.to_data()) == anyway
    unknown_stamp = UndoAction(fx.NONCE, 7, anyway=True)
    assert parse_action("undo", unknown_stamp.to_data()) == unknown_stamp
    assert parse_action("undo", {"nonce": fx.NONCE, "writeId": "42"}) == plain_press


@pytest.mark.parametrize(
    "data",
    [
        {"nonce": fx.NONCE, "writeId": 0},
        {"nonce": fx.NONCE, "writeId": -3},
        {"nonce": fx.NONCE, "writeId": "42; drop"},
        {"nonce": fx.NONCE, "writeId": 1.5},
        {"nonce": fx.NONCE, "writeId": True},
        {"nonce": fx.NONCE, "anyway": True},
        {"nonce": fx.NONCE, "writeId": 4, "anyway": "yes"},
        {"nonce": fx.NONCE, "writeId": 4, "anyway": True, "knownModified": "yesterday"},
    ],
)
def test_forged_undo_data_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ActionDataError):
        parse_action("undo", data)


def test_the_undo_button_sits_under_the_banner_that_reports_the_save() -> None:
    undo = UndoAction(fx.NONCE, 42)
    built = grading_card(
        fx.education_class(),
        fx.assignment(),
        fx.submission(),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
        status=Banner.good("Saved 18/20 for Grace Lee as a draft."),
        undo=undo,
    )
    assert_valid_card(built)
    assert press_and_parse(built, "Undo this save") == undo
    last = all_graded_card(fx.assignment(), fx.education_class(), 1, nonce=fx.NONCE, undo=undo)
    assert_valid_card(last)
    assert press_and_parse(last, "Undo this save") == undo
    without = all_graded_card(fx.assignment(), fx.education_class(), 1, nonce=fx.NONCE)
    assert "Undo this save" not in texts(without)


def test_the_undo_conflict_card_shows_all_three_grades_and_who_changed_it() -> None:
    fresh = fx.submission(
        outcome_items=fx.outcomes(
            points=19, feedback="Their feedback", modified=CHANGED_AT, modified_by=fx.OTHER_TEACHER
        )
    )
    anyway = UndoAction("n2-abcdefgh", 42, anyway=True, known_modified=CHANGED_AT)
    built = undo_conflict_card(
        fx.education_class(),
        fx.assignment(),
        fresh,
        "Ada Lovelace",
        yours=GradeValues(14.0, "My feedback"),
        restores=GradeValues(None, None),
        changed_by="Alan Turing",
        tz=fx.TZ,
        now=fx.NOW,
        undo_anyway=anyway,
    )
    assert_valid_card(built)
    text = texts(built)
    assert "Alan Turing changed the grade for Ada Lovelace" in text and "(5 minutes ago)" in text
    assert "14/20" in text and "My feedback" in text and "19/20" in text and "Their feedback" in text
    assert "Undo would put back" in text and "No points" in text
    assert press_and_parse(built, "Undo anyway") == anyway
    assert press_and_parse(built, "Keep the current grade") == ShowGradingAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, fresh.id
    )


def grade_data(**changes: object) -> dict[str, object]:
    """What Teams sends for "Save grade": static data merged with input values (all strings)."""
    data: dict[str, object] = {
        "classId": CLASS,
        "assignmentId": ASSIGNMENT,
        "submissionId": SUBMISSION,
        "knownModified": "2025-11-30T12:00:01.5000000Z",
        "force": False,
        "nonce": NONCE,
        "points": "18",
        "feedback": "Well argued.",
    }
    data.update(changes)
    return {key: value for key, value in data.items() if value is not ...}


ROUND_TRIPS: list[ActionPayload] = [
    ShowGradingAction(CLASS, ASSIGNMENT, SUBMISSION),
    SkipAction(CLASS, ASSIGNMENT, SUBMISSION),
    ReturnAction(CLASS, ASSIGNMENT, SUBMISSION, False, NONCE),
    ReassignAction(CLASS, ASSIGNMENT, SUBMISSION, True, NONCE),
    ExcuseAction(CLASS, ASSIGNMENT, SUBMISSION, False, NONCE),
    ReturnAllAction(CLASS, ASSIGNMENT, True, 7, NONCE),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "mine", Decimal("18.5"), "Good\nwork", NONCE),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "mine", None, None, NONCE, (RubricSelection(QUALITY, LEVEL),)),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "theirs", None, None, NONCE),
    UndoAction(NONCE),
    GradeAction(CLASS, ASSIGNMENT, SUBMISSION, Decimal("7.5"), "Fine.", (), None, False, NONCE),
]


@pytest.mark.parametrize("payload", ROUND_TRIPS, ids=lambda payload: type(payload).__name__)
def test_payloads_round_trip_through_json(payload: ActionPayload) -> None:
    assert parse_action(payload.VERB, card_data(payload)) == payload


def test_grade_round_trips_with_inputs_merged() -> None:
    grade = GradeAction(
        CLASS,
        ASSIGNMENT,
        SUBMISSION,
        Decimal("18.25"),
        "Line one\n\tindented",
        (RubricSelection(QUALITY, LEVEL),),
        MODIFIED,
        True,
        NONCE,
    )
    data = card_data(grade)
    assert data["knownModified"] == "2025-11-30T12:00:01.500000Z"
    assert parse_action("grade", data) == grade


GOOD_GRADES: list[tuple[dict[str, object], Decimal | None, str | None]] = [
    (grade_data(points="18"), Decimal(18), "Well argued."),
    (grade_data(points=" 18.5 "), Decimal("18.5"), "Well argued."),
    (grade_data(points="0"), Decimal(0), "Well argued."),
    (grade_data(points="9999999.99"), Decimal("9999999.99"), "Well argued."),
    (grade_data(points="18.0"), Decimal(18), "Well argued."),
    (grade_data(points=17), Decimal(17), "Well argued."),
    (grade_data(points=17.5), Decimal("17.5"), "Well argued."),
    (grade_data(points="", feedback="Only feedback"), None, "Only feedback"),
    (grade_data(points="12", feedback=""), Decimal(12), None),
    (grade_data(points="12", feedback="   "), Decimal(12), None),
    (grade_data(points="12", feedback=...), Decimal(12), None),
    (grade_data(feedback="a\r\nb\rc\td"), Decimal(18), "a\nb\nc\td"),
    (grade_data(feedback="é 🙂 ü\u200d"), Decimal(18), "é 🙂 ü\u200d"),
    (grade_data(feedback="x" * FEEDBACK_MAX_LENGTH), Decimal(18), "x" * FEEDBACK_MAX_LENGTH),
    (grade_data(feedback="  " + "x" * FEEDBACK_MAX_LENGTH + "\n "), Decimal(18), "x" * FEEDBACK_MAX_LENGTH),
]


@pytest.mark.parametrize(("data", "points", "feedback"), GOOD_GRADES)
def test_grade_accepts_good_inputs(data: dict[str, object], points: Decimal | None, feedback: str | None) -> None:
    grade = parse_action("grade", data)
    assert isinstance(grade, GradeAction)
    assert (grade.points, grade.feedback) == (points, feedback)
    assert grade.known_modified == MODIFIED
    assert (grade.class_id, grade.assignment_id, grade.submission_id) == (CLASS, ASSIGNMENT, SUBMISSION)


def test_grade_with_only_rubric_levels_and_extra_keys() -> None:
    data = grade_data(points="", feedback="", **{f"level_{QUALITY}": LEVEL, "level_other-quality": ""})
    data["someOtherInput"] = {"nested": ["junk"]}  # other inputs on the card are ignored
    grade = parse_action("grade", data)
    assert isinstance(grade, GradeAction)
    assert grade.levels == (RubricSelection(QUALITY, LEVEL),)
    assert grade.points is None and grade.feedback is None


def test_grade_known_modified_may_be_null() -> None:
    grade = parse_action("grade", grade_data(knownModified=None))
    assert isinstance(grade, GradeAction) and grade.known_modified is None


def test_empty_grade_is_refused_with_a_teacher_message() -> None:
    with pytest.raises(ActionDataError) as caught:
        parse_action("grade", grade_data(points="", feedback="  "))
    assert str(caught.value) == "Enter points or feedback before saving."


BAD_GRADES: dict[str, tuple[dict[str, object], str | None]] = {
    "points abc": (grade_data(points="abc"), "Points must be a number"),
    "points -1": (grade_data(points="-1"), "Points can't be negative."),
    "points -0.5 number": (grade_data(points=-0.5), "Points can't be negative."),
    "points NaN": (grade_data(points="NaN"), "Points must be a number"),
    "points nan float": (grade_data(points=float("nan")), "Points must be a number"),
    "points Infinity": (grade_data(points="Infinity"), "Points must be a number"),
    "points -Infinity": (grade_data(points="-Infinity"), None),
    "points inf float": (grade_data(points=float("inf")), "Points must be a number"),
    "points 1e309": (grade_data(points="1e309"), "Points must be less than 10,000,000."),
    "points 1e7": (grade_data(points="10000000"), "Points must be less than 10,000,000."),
    "points huge int": (grade_data(points=10**400), "Points must be less than 10,000,000."),
    "points 12.345": (grade_data(points="12.345"), "Points can have at most 2 decimals."),
    "points tiny exponent": (grade_data(points="1e-999999999"), "Points can have at most 2 decimals."),
    "points exponent overflow": (grade_data(points="1e9999999999999999999"), None),
    "points comma": (grade_data(points="18,5"), "Points must be a number"),
    "points hex": (grade_data(points="0x12"), "Points must be a number"),
    "points arabic digits": (grade_data(points="١٨"), "Points must be a number"),
    "points huge string": (grade_data(points="1" * 100_000), "Points must be a number"),
    "points bool": (grade_data(points=True), "Points must be a number"),
    "points list": (grade_data(points=["18"]), "Points must be a number"),
    "points dict": (grade_data(points={"value": 18}), "Points must be a number"),
    "feedback too long": (grade_data(feedback="x" * (FEEDBACK_MAX_LENGTH + 1)), "Feedback is too long"),
    "feedback huge": (grade_data(feedback="x" * 1_000_000), "Feedback is too long"),
    "feedback NUL": (grade_data(feedback="ok\x00"), "can't be saved"),
    "feedback escape": (grade_data(feedback="\x1b[31mred"), "can't be saved"),
    "feedback DEL": (grade_data(feedback="a\x7fb"), "can't be saved"),
    "feedback lone surrogate": (grade_data(feedback="a\ud800b"), "can't be saved"),
    "feedback list": (grade_data(feedback=["a"]), None),
    "feedback number": (grade_data(feedback=5), None),
    "missing classId": (grade_data(classId=...), None),
    "missing submissionId": (grade_data(submissionId=...), None),
    "missing nonce": (grade_data(nonce=...), None),
    "missing force": (grade_data(force=...), None),
    "missing knownModified": (grade_data(knownModified=...), None),
    "empty classId": (grade_data(classId=""), None),
    "classId with slash": (grade_data(classId="abc/def"), None),
    "classId path traversal": (grade_data(classId="../../me"), None),
    "classId with space": (grade_data(classId="abc def"), None),
    "classId with query": (grade_data(classId="abc?x=1"), None),
    "classId too long": (grade_data(classId="a" * 129), None),
    "classId newline": (grade_data(classId="abc\n"), None),
    "classId list": (grade_data(classId=[CLASS]), None),
    "classId dict": (grade_data(classId={"id": CLASS}), None),
    "classId number": (grade_data(classId=12345), None),
    "assignmentId null": (grade_data(assignmentId=None), None),
    "nonce too short": (grade_data(nonce="abc"), None),
    "nonce with space": (grade_data(nonce="abc def ghi"), None),
    "force as string": (grade_data(force="yes"), None),
    "knownModified junk": (grade_data(knownModified="yesterday"), None),
    "knownModified naive": (grade_data(knownModified="2025-11-30T12:00:00"), None),
    "knownModified impossible": (grade_data(knownModified="2025-13-45T99:00:00Z"), None),
    "knownModified number": (grade_data(knownModified=1732960000), None),
    "level bad column": (grade_data(**{f"level_{QUALITY}": "bad/level"}), None),
    "level bad quality id": (grade_data(**{"level_bad quality": LEVEL}), None),
    "level as list": (grade_data(**{f"level_{QUALITY}": [LEVEL]}), None),
    "too many keys": (grade_data(**{f"k{index}": "v" for index in range(300)}), None),
}


@pytest.mark.parametrize(("data", "message"), list(BAD_GRADES.values()), ids=list(BAD_GRADES))
def test_grade_refuses_bad_inputs(data: dict[str, object], message: str | None) -> None:
    with pytest.raises(ActionDataError) as caught:
        parse_action("grade", data)
    text = str(caught.value)
    if message is not None:
        assert message in text
    # teacher-facing: no raw field names, ids or Python internals
    assert CLASS not in text and "classId" not in text and "Traceback" not in text
    assert caught.value.field is not None


BAD_DATA: dict[str, tuple[str, object]] = {
    "return confirmed as text": (
        "return",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": SUBMISSION, "confirmed": "true", "nonce": NONCE},
    ),
    "returnAll negative count": (
        "returnAll",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "confirmed": True, "expectedCount": -1, "nonce": NONCE},
    ),
    "returnAll count NaN": (
        "returnAll",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "confirmed": True, "expectedCount": "NaN", "nonce": NONCE},
    ),
    "excuse missing nonce": (
        "excuse",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": SUBMISSION, "confirmed": False},
    ),
    "resolveConflict bad choice": (
        "resolveConflict",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": SUBMISSION, "choice": "both", "nonce": NONCE},
    ),
    "resolveConflict mine empty": (
        "resolveConflict",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": SUBMISSION, "choice": "mine", "nonce": NONCE},
    ),
    "resolveConflict bad points": (
        "resolveConflict",
        {
            "classId": CLASS,
            "assignmentId": ASSIGNMENT,
            "submissionId": SUBMISSION,
            "choice": "mine",
            "points": "Infinity",
            "nonce": NONCE,
        },
    ),
    "resolveConflict levels junk": (
        "resolveConflict",
        {
            "classId": CLASS,
            "assignmentId": ASSIGNMENT,
            "submissionId": SUBMISSION,
            "choice": "mine",
            "levels": [QUALITY, LEVEL],
            "nonce": NONCE,
        },
    ),
    "undo missing nonce": ("undo", {}),
}


@pytest.mark.parametrize(("verb", "data"), list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_other_grading_verbs_refuse_bad_inputs(verb: str, data: Any) -> None:
    with pytest.raises(ActionDataError):
        parse_action(verb, data)


def test_parse_points_empty_is_none() -> None:
    assert parse_points(None) is None
    assert parse_points("  ") is None


def test_save_is_the_primary_action_and_risky_ones_are_destructive() -> None:
    """Issue 12 (6): Save grade is styled positive; Return all graded, Return for revision and Excuse destructive."""
    built = points_card()
    assert button(built, "Save grade")["style"] == "positive"
    for title in ("Return all graded (4)", "Return for revision", "Excuse"):
        assert button(built, title)["style"] == "destructive", title
    assert "style" not in button(built, "Skip") and "style" not in button(built, "Return")
    pending = all_graded_card(fx.assignment(), fx.education_class(), 5, nonce=fx.NONCE)
    assert button(pending, "Return all graded (5)")["style"] == "destructive"
    ids = (fx.CLASS_ID, fx.ASSIGNMENT_ID, "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d")
    excusing = confirm_card(ExcuseAction(*ids, False, fx.NONCE), fx.assignment(), student_name="Ada Lovelace")
    assert button(excusing, "Yes, excuse")["style"] == "destructive"


def test_return_all_confirmation_lists_each_student_and_the_grade_released() -> None:
    """Issue 12 (1): the confirmation names who gets which grade, not only a count."""
    released = [("Grace Hopper", GradeValues(18.0, "Well done")), ("Ada Lovelace", GradeValues(7.5, None))]
    built = confirm_card(
        ReturnAllAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 2, fx.NONCE), fx.assignment(), released=released
    )
    assert_valid_card(built)
    (listed,) = of_type(built, "FactSet")
    assert [(f["title"], f["value"]) for f in listed["facts"]] == [
        ("Ada Lovelace", "7.5/20"),
        ("Grace Hopper", "18/20 + feedback"),
    ]


def test_return_all_confirmation_for_300_students_stays_within_a_message() -> None:
    released = [(f"Student number {n:03d} with a rather long name", GradeValues(n % 20, "x")) for n in range(300)]
    built = confirm_card(
        ReturnAllAction(fx.CLASS_ID, fx.ASSIGNMENT_ID, False, 300, fx.NONCE), fx.assignment(), released=released
    )
    assert_valid_card(built)
    assert card_size(built) <= MAX_CARD_BYTES
    (listed,) = of_type(built, "FactSet")
    assert len(listed["facts"]) == 300  # all of them fit: the list is one compact FactSet


def test_undo_keeps_what_was_typed_in_the_fields() -> None:
    """Issue 12 (8): the fields can show other values than the grade now saved (what the teacher typed)."""
    built = points_card(entered=GradeValues(8.0, "Typed before undo"))
    (points,) = of_type(built, "Input.Number")
    (feedback,) = of_type(built, "Input.Text")
    assert points["value"] == 8.0 and feedback["value"] == "Typed before undo"
    assert "Current grade: 15.5/20 + feedback" in texts(built)  # the summary still says what Graph holds
