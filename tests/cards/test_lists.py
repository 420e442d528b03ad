"""Cards that list things: classes, the class picker, assignments, ungraded work in pages under the size budget, the
neutral channel card; and the navigation payloads (pickClass, showAssignments, showUngraded, refreshView, openGrading).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.school.progress import AssignmentProgress, summarize
from cards.blocks import MAX_CARD_BYTES, ActionDataError, ActionPayload, card_size
from cards.lists import (
    MAX_REFRESH_USERS,
    OpenGradingAction,
    PickClassAction,
    RefreshViewAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    assignments_card,
    class_picker_card,
    classes_card,
    neutral_channel_card,
    paginate_ungraded,
    ungraded_card,
    ungraded_page_card,
)
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import card_data, executes, nodes, of_type, parse_action, press_and_parse, texts, verbs

CLASS = fx.CLASS_ID
ASSIGNMENT = fx.ASSIGNMENT_ID
SUBMISSION = "5883eaeb-9760-f8e0-6832-a122c4f020be"
TEACHERS = ["29:1aBcDeFgHiJkLmNoPqRsTuVwXyZ", "29:2aBcDeFgHiJkLmNoPqRsTuVwXyZ"]


CLASSES = [
    fx.education_class(),
    fx.education_class("1c6b4d2f-6d0e-4d8f-8a2b-3e4f5a6b7c8d", "Chemistry 10B", "CHEM-10B", "Autumn 2025"),
]


def test_classes_card() -> None:
    built = classes_card(CLASSES)
    assert_valid_card(built)
    text = texts(built)
    assert "Biology 9A" in text and "BIO-9A · Autumn 2025" in text and "Chemistry 10B" in text
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


def test_four_hundred_long_named_submissions_page_under_the_budget() -> None:
    items = fx.ungraded_items(400, name_length=200, classes=7)
    pages = paginate_ungraded(items, "all your classes", fx.TZ, fx.NOW)
    assert sum(len(page) for page in pages) == 400
    assert [item for page in pages for item in page] == items  # all of them, once, still oldest first
    first_index = 0
    for number, page in enumerate(pages):
        built = ungraded_card(
            page, number, len(pages), "all your classes", fx.TZ, fx.NOW, total=400, first_index=first_index
        )
        first_index += len(page)
        wire = json.dumps(built, ensure_ascii=False, separators=(",", ":"))
        assert len(wire.encode("utf-8")) < MAX_CARD_BYTES
        assert card_size(built) < MAX_CARD_BYTES  # UTF-16, as Teams counts
        assert ("showUngraded" in verbs(built)) is (len(pages) > 1)
    assert_valid_card(ungraded_card(pages[0], 0, len(pages), "all", fx.TZ, fx.NOW))
    assert len(pages) > 1


def test_pages_shrink_when_names_are_huge() -> None:
    items = fx.ungraded_items(40, name_length=20_000)  # names are cut to 120 characters on the card
    pages = paginate_ungraded(items, "Biology", fx.TZ, fx.NOW, per_page=20, budget=20_000)
    assert all(len(page) < 20 for page in pages)
    assert sum(len(page) for page in pages) == 40
    for number, page in enumerate(pages):
        assert card_size(ungraded_card(page, number, len(pages), "Biology", fx.TZ, fx.NOW)) <= 20_000


def test_page_card_clamps_and_reports_position() -> None:
    items = fx.ungraded_items(45)
    last = ungraded_page_card(items, 99, "Biology", fx.TZ, fx.NOW, class_id=fx.CLASS_ID)
    assert_valid_card(last)
    assert "41–45 of 45 submissions, oldest first · page 3 of 3" in texts(last)
    assert verbs(last) == ["openGrading"] * 5 + ["showUngraded"]  # Previous page only


def test_many_assignments_stay_under_the_budget_and_say_what_is_hidden() -> None:
    progress = [
        AssignmentProgress(
            fx.assignment(f"a0000000-0000-4000-8000-{index:012d}", f"Assignment {index} " + "long title " * 20),
            turned_in=index % 4,
            needs_grading=index % 4,
            graded_not_returned=0,
            returned=10,
            not_turned_in=3,
            excused=0,
            late=1,
        )
        for index in range(600)
    ]
    built = assignments_card(fx.education_class(), progress, fx.TZ, fx.NOW)
    assert_valid_card(built)
    assert card_size(built) <= MAX_CARD_BYTES
    text = texts(built)
    assert "more assignments not shown here" in text
    waiting_first = [item for item in progress if item.needs_grading]
    assert f"Grade ({waiting_first[0].needs_grading})" in text  # work waiting is never the part cut first


def test_long_class_lists_fit() -> None:
    classes = [
        fx.education_class(f"c0000000-0000-4000-8000-{index:012d}", f"Class {index} " + "x" * 110)
        for index in range(500)
    ]
    for built in (classes_card(classes), class_picker_card(classes, "ungraded")):
        assert_valid_card(built)
        assert card_size(built) <= MAX_CARD_BYTES
        assert "more classes not shown here" in texts(built)


def test_neutral_card_carries_no_student_data_and_refreshes_for_teachers() -> None:
    items = fx.ungraded_items(5)
    refresh = RefreshViewAction("ungraded", fx.CLASS_ID, 0)
    built = neutral_channel_card(refresh, "Biology 9A", TEACHERS)
    assert_valid_card(built)
    wire = json.dumps(built)
    for item in items:  # the teacher's view would show these; the shared card must not
        assert item.student_name not in wire
        assert item.submission.id not in wire
        assert item.assignment.display_name not in wire
    kinds = {node.get("type") for node in nodes(built)}
    assert not {kind for kind in kinds if isinstance(kind, str) and kind.startswith("Input.")}
    assert "Action.OpenUrl" not in kinds and "FactSet" not in kinds
    assert built["refresh"]["userIds"] == TEACHERS
    action = built["refresh"]["action"]
    assert action["type"] == "Action.Execute" and action["verb"] == "refreshView"
    assert parse_action(action["verb"], json.loads(json.dumps(action["data"]))) == refresh
    assert "Biology 9A" in texts(built)
    assert "Teachers of this class see their own details here" in texts(built)
    assert executes(built) == []  # ≤ 60 teachers: automatic refresh, no button needed


def test_more_than_sixty_teachers_get_a_show_my_view_button() -> None:
    teachers = [f"29:teacher{index:03d}" for index in range(75)] + ["29:teacher000"]
    refresh = RefreshViewAction("assignments", fx.CLASS_ID, 0)
    built = neutral_channel_card(refresh, "Biology 9A", teachers)
    assert_valid_card(built)
    assert built["refresh"]["userIds"] == teachers[:MAX_REFRESH_USERS]
    (show,) = executes(built)
    assert show["title"] == "Show my view"
    assert parse_action(show["verb"], show["data"]) == refresh


def test_no_known_teachers_still_offers_a_manual_view() -> None:
    built = neutral_channel_card(RefreshViewAction("ungraded", None, 0), None, [])
    assert_valid_card(built)
    assert built["refresh"]["userIds"] == []
    assert [action["verb"] for action in executes(built)] == ["refreshView"]


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
]


@pytest.mark.parametrize("payload", ROUND_TRIPS, ids=lambda payload: type(payload).__name__)
def test_payloads_round_trip_through_json(payload: ActionPayload) -> None:
    assert parse_action(payload.VERB, card_data(payload)) == payload


BAD_DATA: dict[str, tuple[str, object]] = {
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
}


@pytest.mark.parametrize(("verb", "data"), list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_bad_data_is_refused(verb: str, data: Any) -> None:
    with pytest.raises(ActionDataError):
        parse_action(verb, data)
