"""Cards that list things: help, classes, class picker, assignments, ungraded work, digest, reminder settings,
and the small message cards."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from bot.school.progress import AssignmentProgress, summarize
from cards.actions import (
    OpenGradingAction,
    PickClassAction,
    RemindOffAction,
    SaveRemindersAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    SignInAction,
    SnoozeAction,
    parse_action,
)
from cards.assignments import assignments_card
from cards.classes import class_picker_card, classes_card
from cards.digest import DigestEntry, digest_card
from cards.messages import (
    DEFAULT_COMMANDS,
    error_card,
    help_card,
    refusal_card,
    sign_in_card,
    signed_out_card,
    undo_result_card,
)
from cards.reminders import ReminderSettingsView, reminder_settings_card
from cards.ungraded import ungraded_card
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import button, executes, of_type, press_and_parse, texts, verbs

CLASSES = [
    fx.education_class(),
    fx.education_class("1c6b4d2f-6d0e-4d8f-8a2b-3e4f5a6b7c8d", "Chemistry 10B", "CHEM-10B", "Autumn 2025"),
]


def test_help_card_lists_every_command_with_buttons() -> None:
    built = help_card(class_id=fx.CLASS_ID)
    assert_valid_card(built)
    facts = of_type(built, "FactSet")[0]["facts"]
    assert [fact["title"] for fact in facts] == [command for command, _ in DEFAULT_COMMANDS]
    assert {"help", "classes", "assignments", "ungraded", "grade [assignment]", "undo", "signout"} <= {
        fact["title"] for fact in facts
    }
    assert press_and_parse(built, "Ungraded work") == ShowUngradedAction(fx.CLASS_ID, 0)
    assert press_and_parse(built, "Assignments") == ShowAssignmentsAction(fx.CLASS_ID)
    assert verbs(help_card()) == ["showUngraded"]  # no class known: no Assignments shortcut


def test_classes_card() -> None:
    built = classes_card(CLASSES, waiting={fx.CLASS_ID: 4})
    assert_valid_card(built)
    text = texts(built)
    assert "Biology 9A" in text and "BIO-9A · Autumn 2025 · 4 to grade" in text and "Chemistry 10B" in text
    shows = [parse_action(action["verb"], action["data"]) for action in executes(built)]
    assert ShowAssignmentsAction(CLASSES[1].id) in shows
    assert ShowUngradedAction(CLASSES[0].id, 0) in shows
    assert ShowUngradedAction(None, 0) in shows
    assert "any classes" in texts(classes_card([]))


def test_class_picker_buttons_carry_the_choice() -> None:
    built = class_picker_card(CLASSES, "grade", query="Essay 1")
    assert_valid_card(built)
    assert "Which class do you want to grade?" in texts(built)
    assert press_and_parse(built, "Chemistry 10B (CHEM-10B · Autumn 2025)") == PickClassAction(
        CLASSES[1].id, "grade", "Essay 1"
    )
    assert verbs(built) == ["pickClass", "pickClass"]


def progress_for_class() -> list[AssignmentProgress]:
    essay = fx.assignment()
    submissions = [
        fx.submission("s-turned-in-1", submitted=datetime(2025, 11, 30, 9, 0, tzinfo=UTC)),  # late, ungraded
        fx.submission("s-turned-in-2", submitted=datetime(2025, 11, 27, 9, 0, tzinfo=UTC)),  # on time, ungraded
        fx.submission(
            "s-graded",
            submitted=datetime(2025, 11, 27, 9, 0, tzinfo=UTC),
            outcome_items=fx.outcomes(points=17, modified=datetime(2025, 11, 29, tzinfo=UTC)),
        ),
        fx.submission(
            "s-returned",
            status="returned",
            submitted=datetime(2025, 11, 26, 9, 0, tzinfo=UTC),
            outcome_items=fx.outcomes(points=19, published_points=19, modified=datetime(2025, 11, 29, tzinfo=UTC)),
        ),
        fx.submission("s-working", status="working", submitted=None),
        fx.submission("s-excused", status="excused", submitted=None),
    ]
    quiz = fx.assignment("b1c2d3e4-0000-4000-8000-000000000002", "Quiz 2", max_points=None)
    quiz_subs = [fx.submission("q-working", assignment_id=quiz.id, status="working", submitted=None)]
    draft = fx.assignment("b1c2d3e4-0000-4000-8000-000000000003", "Lab report (draft)", status="draft", due=None)
    scheduled = fx.assignment(
        "b1c2d3e4-0000-4000-8000-000000000004",
        "Future essay",
        assign_at=datetime(2025, 12, 8, 8, 0, tzinfo=UTC),
        due=datetime(2025, 12, 15, 23, 59, tzinfo=UTC),
    )
    return [
        summarize(quiz, quiz_subs),
        summarize(essay, submissions),
        summarize(draft, []),
        summarize(scheduled, []),
    ]


def test_assignments_card_counts_and_grade_buttons() -> None:
    built = assignments_card(fx.education_class(), progress_for_class(), fx.TZ, fx.NOW)
    assert_valid_card(built)
    text = texts(built)
    assert "Assignments: Biology 9A" in text
    assert "4 assignments · 2 submissions to grade" in text
    assert "Turned in 3 (2 to grade, 1 graded not returned) · Returned 1 · Not turned in 1 · Late 1 · Excused 1" in text
    assert "Assigned · Was due Fri 28 Nov, 23:59 (2 days ago)" in text
    assert "Draft" in text and "Scheduled for Mon 8 Dec, 08:00" in text
    # the assignment with work waiting comes first even though Quiz 2 was given first
    assert text.index("Essay 1: Cells") < text.index("Quiz 2")
    assert press_and_parse(built, "Grade (2)") == OpenGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID)
    assert press_and_parse(built, "Ungraded work") == ShowUngradedAction(fx.CLASS_ID, 0)
    assert verbs(built).count("openGrading") == 1  # nothing waits in the other assignments
    empty = assignments_card(fx.education_class(), [], fx.TZ, fx.NOW)
    assert_valid_card(empty)
    assert "no assignments yet" in texts(empty)


def test_ungraded_card_lists_each_submission_with_grade_and_open_links() -> None:
    items = fx.ungraded_items(6, classes=2)
    built = ungraded_card(items, 0, 1, "all your classes", fx.TZ, fx.NOW, class_id=None)
    assert_valid_card(built)
    text = texts(built)
    names = [item.student_name for item in items]
    positions = [text.index(name) for name in names]
    assert positions == sorted(positions)  # kept oldest first
    assert "Class 0" in text and "Class 1" in text  # several classes: each item names its class
    assert "Late by 2 days" in text
    grades = [parse_action(action["verb"], action["data"]) for action in executes(built)]
    assert grades == [
        OpenGradingAction(item.education_class.id, item.assignment.id, item.submission.id) for item in items
    ]
    urls = [node["url"] for node in of_type(built, "Action.OpenUrl")]
    assert urls == [item.submission.web_url for item in items]
    assert "6 submissions, oldest first" in text
    one_class = ungraded_card(items[:2], 0, 1, "Class 0", fx.TZ, fx.NOW, class_id=items[0].education_class.id)
    assert "Class 1" not in texts(one_class).replace("Waiting to be graded: Class 0", "")


def test_ungraded_card_navigation_and_empty_state() -> None:
    items = fx.ungraded_items(3)
    middle = ungraded_card(items, 1, 3, "Biology", fx.TZ, fx.NOW, class_id=fx.CLASS_ID, total=9, first_index=3)
    assert_valid_card(middle)
    assert "4–6 of 9 submissions, oldest first · page 2 of 3" in texts(middle)
    assert press_and_parse(middle, "Previous page") == ShowUngradedAction(fx.CLASS_ID, 0)
    assert press_and_parse(middle, "Next page") == ShowUngradedAction(fx.CLASS_ID, 2)
    empty = ungraded_card([], 0, 0, "Biology 9A", fx.TZ, fx.NOW)
    assert_valid_card(empty)
    assert "Nothing waiting" in texts(empty)
    assert executes(empty) == []


def test_student_names_cannot_inject_links() -> None:
    items = fx.ungraded_items(1)
    item = items[0]
    hostile = type(item)(
        item.education_class, item.assignment, item.submission, "[Click here](https://evil.example)", item.late_by
    )
    built = ungraded_card([hostile], 0, 1, "Biology", fx.TZ, fx.NOW)
    assert "](" not in json.dumps(built, ensure_ascii=False).replace("]\u200b(", "")


def test_digest_card() -> None:
    items = fx.ungraded_items(9, classes=1)
    late = [item for item in items if item.late_by]
    entries = [
        DigestEntry(items[0].education_class, len(items), items[0], late),
        DigestEntry(fx.education_class("c-empty", "Empty class"), 0, None),
    ]
    built = digest_card(entries, fx.TZ, fx.NOW)
    assert_valid_card(built)
    text = texts(built)
    assert "9 submissions waiting in 1 class." in text
    assert "9 waiting to be graded" in text
    assert f"Oldest: {items[0].student_name}" in text
    assert "Empty class" not in text
    assert "late by" in text
    assert press_and_parse(built, "Grade") == OpenGradingAction(
        items[0].education_class.id, items[0].assignment.id, items[0].submission.id
    )
    assert press_and_parse(built, "Snooze 1 day") == SnoozeAction(1)
    assert press_and_parse(built, "Snooze 1 week") == SnoozeAction(7)
    nothing = digest_card([], fx.TZ, fx.NOW)
    assert_valid_card(nothing)
    assert "Nothing is waiting" in texts(nothing)


def settings_view(**changes: Any) -> ReminderSettingsView:
    values: dict[str, Any] = {
        "days": ("mon", "thu"),
        "at": time(16, 30),
        "timezone": "Europe/London",
        "quiet_start": time(21, 0),
        "quiet_end": time(7, 0),
        "classes": CLASSES,
        "included_class_ids": (fx.CLASS_ID,),
        "min_waiting": 3,
        "min_age_days": 1,
        "enabled": True,
    }
    values.update(changes)
    return ReminderSettingsView(**values)


def test_reminder_settings_card_round_trips_its_own_values() -> None:
    view = settings_view(snoozed_until=fx.NOW + timedelta(days=1))
    built = reminder_settings_card(view, tz=fx.TZ, now=fx.NOW)
    assert_valid_card(built)
    ids = [node["id"] for node in of_type(built, "Input.ChoiceSet")]
    assert ids == ["days", "classIds"]
    assert [node["id"] for node in of_type(built, "Input.Time")] == ["time", "quietStart", "quietEnd"]
    assert [node["id"] for node in of_type(built, "Input.Number")] == ["minWaiting", "minAgeDays"]
    assert of_type(built, "Input.Toggle")[0]["value"] == "true"
    assert "Snoozed until Tue 2 Dec, 10:00." in texts(built)
    saved = press_and_parse(built, "Save")
    assert saved == SaveRemindersAction(
        days=("mon", "thu"),
        at=time(16, 30),
        timezone="Europe/London",
        quiet_start=time(21, 0),
        quiet_end=time(7, 0),
        class_ids=(fx.CLASS_ID,),
        min_waiting=3,
        min_age_days=1,
        enabled=True,
    )
    changed = press_and_parse(built, "Save", {"days": "sat", "quietStart": "", "quietEnd": "", "classIds": ""})
    assert isinstance(changed, SaveRemindersAction)
    assert changed.days == ("sat",) and changed.quiet_start is None and changed.class_ids == ()
    assert press_and_parse(built, "Turn off") == RemindOffAction()
    assert button(built, "Turn off")["associatedInputs"] == "none"


def test_reminder_settings_without_quiet_hours_or_classes() -> None:
    built = reminder_settings_card(
        settings_view(quiet_start=None, quiet_end=None, classes=[], included_class_ids=(), enabled=False),
        tz=fx.TZ,
        now=fx.NOW,
    )
    assert_valid_card(built)
    assert [node["id"] for node in of_type(built, "Input.ChoiceSet")] == ["days"]
    saved = press_and_parse(built, "Save")
    assert isinstance(saved, SaveRemindersAction) and saved.enabled is False and saved.quiet_start is None


@pytest.mark.parametrize(
    "built",
    [
        refusal_card("Only teachers of this class can see its grades."),
        error_card("Teams could not reach Microsoft Graph. Your grade is kept.", retry=ShowUngradedAction(None, 0)),
        signed_out_card(),
        sign_in_card(),
        undo_result_card(None),
        undo_result_card("the grade for Ada Lovelace, Essay 1", reopen=OpenGradingAction(fx.CLASS_ID, "a1", "s1")),
    ],
)
def test_message_cards_are_valid(built: dict[str, Any]) -> None:
    assert_valid_card(built)
    assert texts(built).strip()
    assert "Traceback" not in json.dumps(built)


def test_message_card_content() -> None:
    assert "Only teachers" in texts(refusal_card("Only teachers of this class can see its grades."))
    error = error_card("Graph failed\x00 badly", retry=ShowUngradedAction(None, 2))
    assert "Graph failed badly" in texts(error)
    assert press_and_parse(error, "Try again") == ShowUngradedAction(None, 2)
    assert press_and_parse(sign_in_card(), "Sign in") == SignInAction()
    assert "nothing to undo" in texts(undo_result_card(None))
    assert "Undone: the grade for Ada" in texts(undo_result_card("the grade for Ada"))
