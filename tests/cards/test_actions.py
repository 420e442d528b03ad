"""Typed Action.Execute payloads: exact verbs, data round trips, and every bad input refused."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import Any

import pytest

from cards.actions import (
    ACTIONS,
    FEEDBACK_MAX_LENGTH,
    ActionDataError,
    ActionPayload,
    ExcuseAction,
    GradeAction,
    OpenGradingAction,
    PickClassAction,
    ReassignAction,
    RefreshViewAction,
    RemindOffAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    SaveRemindersAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    SignInAction,
    SkipAction,
    SnoozeAction,
    UndoAction,
    UnknownActionError,
    check_points,
    new_nonce,
    parse_action,
    parse_points,
)
from graph.models import RubricSelection

CLASS = "0b5a3c1e-5c9d-4c7e-9f1a-2d3e4f5a6b7c"
ASSIGNMENT = "7e1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
SUBMISSION = "5883eaeb-9760-f8e0-6832-a122c4f020be"
QUALITY = "9f1e2d3c-0000-4000-8000-0000000000a1"
LEVEL = "1e2d3c4b-0000-4000-8000-0000000000b1"
NONCE = "n0nce-Abc123_xyz"
MODIFIED = datetime(2025, 11, 30, 12, 0, 1, 500000, tzinfo=UTC)


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


def test_registry_has_exactly_the_contract_verbs() -> None:
    assert set(ACTIONS) == {
        "pickClass",
        "showAssignments",
        "showUngraded",
        "refreshView",
        "openGrading",
        "grade",
        "skip",
        "return",
        "returnAll",
        "reassign",
        "excuse",
        "resolveConflict",
        "undo",
        "snooze",
        "saveReminders",
        "remindOff",
        "signIn",
    }
    assert all(verb == payload.VERB for verb, payload in ACTIONS.items())


ROUND_TRIPS: list[ActionPayload] = [
    PickClassAction(CLASS, "assignments"),
    PickClassAction(CLASS, "grade", "Essay 1"),
    ShowAssignmentsAction(CLASS),
    ShowUngradedAction(None, 0),
    ShowUngradedAction(CLASS, 3),
    RefreshViewAction("ungraded", CLASS, 2),
    RefreshViewAction("ungraded", None, 0),
    RefreshViewAction("assignments", CLASS, 0),
    OpenGradingAction(CLASS, ASSIGNMENT),
    OpenGradingAction(CLASS, ASSIGNMENT, SUBMISSION),
    SkipAction(CLASS, ASSIGNMENT, SUBMISSION),
    ReturnAction(CLASS, ASSIGNMENT, SUBMISSION, False, NONCE),
    ReassignAction(CLASS, ASSIGNMENT, SUBMISSION, True, NONCE),
    ExcuseAction(CLASS, ASSIGNMENT, SUBMISSION, False, NONCE),
    ReturnAllAction(CLASS, ASSIGNMENT, True, 7, NONCE),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "mine", Decimal("18.5"), "Good\nwork", NONCE),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "mine", None, None, NONCE, (RubricSelection(QUALITY, LEVEL),)),
    ResolveConflictAction(CLASS, ASSIGNMENT, SUBMISSION, "theirs", None, None, NONCE),
    UndoAction(NONCE),
    SnoozeAction(1),
    SnoozeAction(7),
    RemindOffAction(),
    SignInAction(),
]


@pytest.mark.parametrize("payload", ROUND_TRIPS, ids=lambda payload: type(payload).__name__)
def test_static_payloads_round_trip_through_json(payload: ActionPayload) -> None:
    wire = json.loads(json.dumps(payload.to_data()))
    assert parse_action(payload.VERB, wire) == payload


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
    data = json.loads(json.dumps({**grade.to_data(), **grade.to_inputs()}))
    assert data["knownModified"] == "2025-11-30T12:00:01.500000Z"
    assert parse_action("grade", data) == grade


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
    assert parse_action("saveReminders", settings.to_inputs()) == settings


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


BAD_OTHERS: dict[str, tuple[str, object]] = {
    "data is a list": ("skip", [CLASS, ASSIGNMENT, SUBMISSION]),
    "data is a string": ("showAssignments", CLASS),
    "data is null": ("remindOff", None),
    "pickClass bad next": ("pickClass", {"classId": CLASS, "next": "delete"}),
    "pickClass control char query": ("pickClass", {"classId": CLASS, "next": "grade", "query": "a\x00"}),
    "pickClass huge query": ("pickClass", {"classId": CLASS, "next": "grade", "query": "q" * 10_000}),
    "showUngraded negative page": ("showUngraded", {"classId": CLASS, "page": "-1"}),
    "showUngraded page text": ("showUngraded", {"classId": CLASS, "page": "two"}),
    "showUngraded page fraction": ("showUngraded", {"page": 1.5}),
    "showUngraded page bool": ("showUngraded", {"page": True}),
    "showUngraded page huge": ("showUngraded", {"page": 10**9}),
    "showUngraded page arabic digit": ("showUngraded", {"page": "\u0663"}),
    "showUngraded missing page": ("showUngraded", {"classId": CLASS}),
    "showUngraded bad class": ("showUngraded", {"classId": "a b", "page": 0}),
    "refreshView bad view": ("refreshView", {"view": "grades", "classId": CLASS, "page": 0}),
    "refreshView assignments without class": ("refreshView", {"view": "assignments", "page": 0}),
    "openGrading bad submission": (
        "openGrading",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": "x/y"},
    ),
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


@pytest.mark.parametrize(("verb", "data"), list(BAD_OTHERS.values()), ids=list(BAD_OTHERS))
def test_other_verbs_refuse_bad_inputs(verb: str, data: Any) -> None:
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


@pytest.mark.parametrize("verb", ["deleteEverything", "", "GRADE", None, 42, ["grade"]])
def test_unknown_verbs(verb: object) -> None:
    with pytest.raises(UnknownActionError) as caught:
        parse_action(verb, {})
    assert isinstance(caught.value, ActionDataError)
    assert "help" in str(caught.value)


def test_check_points_against_the_maximum() -> None:
    check_points(Decimal(20), 20.0)
    check_points(Decimal(0), 20.0)
    check_points(Decimal("12.5"), 12.5)
    with pytest.raises(ActionDataError) as caught:
        check_points(Decimal("20.01"), 20.0)
    assert str(caught.value) == "Points must be between 0 and 20."
    with pytest.raises(ActionDataError) as caught:
        check_points(Decimal(11), 10.5)
    assert str(caught.value) == "Points must be between 0 and 10.5."
    with pytest.raises(ActionDataError):
        check_points(Decimal(1), None)


def test_parse_points_empty_is_none() -> None:
    assert parse_points(None) is None
    assert parse_points("  ") is None


def test_nonces_are_fresh_and_valid() -> None:
    first, second = new_nonce(), new_nonce()
    assert first != second
    assert parse_action("undo", {"nonce": first}) == UndoAction(first)
