"""Cards that list things: classes, the class picker, assignments, ungraded work in pages under the size budget, the
neutral channel card; and the navigation payloads (pickClass, showAssignments, showUngraded, refreshView, openGrading).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.school.progress import summarize
from cards.blocks import MAX_CARD_BYTES, ActionDataError, ActionPayload, card_size
from cards.lists import (
    GROUPS_PER_PAGE,
    MAX_REFRESH_USERS,
    PER_PAGE,
    AssignmentProgress,
    OpenAssignmentsAction,
    OpenGradingAction,
    OpenUngradedAction,
    PickClassAction,
    RefreshViewAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    ShowWaitingAction,
    assignments_card,
    class_picker_card,
    classes_card,
    neutral_channel_card,
    paginate,
    ungraded_page_card,
    waiting_page_card,
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
    assert OpenAssignmentsAction(CLASSES[1].id) in shows  # each opens below: the classes card stays
    assert OpenUngradedAction(CLASSES[0].id, 0) in shows
    assert OpenUngradedAction(None, 0) in shows
    assert "any classes" in texts(classes_card([]))


def test_class_picker_buttons_carry_the_choice() -> None:
    built = class_picker_card(CLASSES, "ungraded")
    assert_valid_card(built)
    assert "Which class's ungraded work?" in texts(built)
    assert press_and_parse(built, "Chemistry 10B (CHEM-10B · Autumn 2025)") == PickClassAction(
        CLASSES[1].id, "ungraded"
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
    # what waits for the teacher, then where the rest stand: two short lines, not one dense one
    assert "\nTo grade 2 · Graded, not returned 1\nReturned 1 · Not turned in 1 · Late 1 · Excused 1\n" in text
    assert "Turned in 3 (" not in text
    # headings and labels say what they are: no bare "credit", no "Nothing waiting"
    assert "Quiz 2** — Assigned · No points" not in text and "credit" not in text
    assert "Nothing to grade or return" in text and "Nothing waiting" not in text
    assert "Assigned · Was due Fri 28 Nov, 23:59 (2 days ago)" in text
    assert "Draft" in text and "Scheduled for Mon 8 Dec, 08:00" in text
    # the assignment with work waiting comes first even though Quiz 2 was given first
    assert text.index("Essay 1: Cells") < text.index("Quiz 2")
    assert press_and_parse(built, "Grade (2)") == OpenGradingAction(fx.CLASS_ID, fx.ASSIGNMENT_ID)
    assert press_and_parse(built, "Ungraded work") == OpenUngradedAction(fx.CLASS_ID, 0)  # opens below
    assert verbs(built).count("openGrading") == 1  # nothing waits in the other assignments
    empty = assignments_card(fx.education_class(), [], fx.TZ, fx.NOW)
    assert_valid_card(empty)
    assert "no assignments yet" in texts(empty)


def test_ungraded_overview_counts_first_then_each_class_and_assignment_without_names() -> None:
    items = fx.ungraded_items(78, classes=3, assignments=2)
    built = ungraded_page_card(items, 0, "all your classes", fx.TZ, fx.NOW)
    assert_valid_card(built)
    heading, summary = (block["text"] for block in built["body"][:2])
    assert heading == "Waiting to be graded: all your classes"
    assert summary == "78 submissions in 6 assignments, 3 classes, oldest first"  # one page: no page count
    text = texts(built)
    assert not any(item.student_name in text for item in items)  # names come with one assignment, on demand
    for class_index in range(3):
        assert f"Class {class_index}\n26 submissions waiting" in text
    by_class: dict[str, dict[str, str]] = {}  # in the order each class's, then assignment's, oldest work came
    for item in items:
        by_class.setdefault(item.education_class.id, {})[item.assignment.id] = item.assignment.display_name
    assert [parse_action(action["verb"], action["data"]) for action in executes(built)] == [
        payload
        for class_id, assignments in by_class.items()
        for assignment_id in assignments
        for payload in (ShowWaitingAction(class_id, assignment_id, 0), OpenGradingAction(class_id, assignment_id))
    ]
    for assignments in by_class.values():
        for name in assignments.values():
            assert f"\n**{name}** — 13 waiting · oldest turned in" in text
    assert text.count("Students (13)") == 6
    # each class's assignments sit together, under the class, in the order their oldest work was turned in
    names = {item.education_class.id: item.education_class.display_name for item in items}
    marks = [
        mark
        for class_id, assignments in by_class.items()
        for mark in (f"\n{names[class_id]}\n", *(f"\n**{name}**" for name in assignments.values()))
    ]
    assert [text.index(mark) for mark in marks] == sorted(text.index(mark) for mark in marks)
    # compact: a heading and summary, two lines per class, a line and a row of buttons per assignment
    assert len(of_type(built, "TextBlock")) == 2 + 2 * 3 + 6
    assert len(of_type(built, "ActionSet")) == 6


def test_one_class_overview_has_no_class_lines_and_pages_by_assignment() -> None:
    items = fx.ungraded_items(60, classes=1, assignments=30)
    first = ungraded_page_card(items, 0, "Class 0", fx.TZ, fx.NOW, class_id=items[0].education_class.id)
    assert_valid_card(first)
    assert "60 submissions in 30 assignments, oldest first · page 1 of 3" in texts(first)
    assert "submissions waiting" not in texts(first)  # the class is the heading's
    assert verbs(first).count("showWaiting") == GROUPS_PER_PAGE
    assert press_and_parse(first, "Next page") == ShowUngradedAction(items[0].education_class.id, 1)
    last = ungraded_page_card(items, 99, "Class 0", fx.TZ, fx.NOW, class_id=items[0].education_class.id)
    assert "page 3 of 3" in texts(last)
    assert verbs(last) == ["showWaiting", "openGrading"] * (30 - 2 * GROUPS_PER_PAGE) + ["showUngraded"]


def test_empty_ungraded_overview_says_what_it_is() -> None:
    empty = ungraded_page_card([], 0, "Biology 9A", fx.TZ, fx.NOW)
    assert_valid_card(empty)
    assert "No work waiting to be graded" in texts(empty) and "Nothing waiting" not in texts(empty)
    assert executes(empty) == []


def test_waiting_card_lists_one_assignments_students_with_grade_buttons() -> None:
    items = [
        item for item in fx.ungraded_items(12, classes=2, assignments=2) if item.assignment.display_name == "Essay 1"
    ]
    built = waiting_page_card(items, 0, fx.TZ, fx.NOW)
    assert_valid_card(built)
    text = texts(built)
    assert "Waiting to be graded: Essay 1" in text and "Class 0 · 3 submissions, oldest first" in text
    positions = [text.index(item.student_name) for item in items]
    assert positions == sorted(positions)  # kept oldest first
    assert "(8 days ago) · late by 3 days" in text
    grades = [parse_action(action["verb"], action["data"]) for action in executes(built)]
    assert grades == [
        *(OpenGradingAction(item.education_class.id, item.assignment.id, item.submission.id) for item in items),
        ShowUngradedAction(items[0].education_class.id, 0),
    ]
    assert len(of_type(built, "ColumnSet")) == len(items)  # a student is one row: name and time beside Grade
    gone = waiting_page_card([], 0, fx.TZ, fx.NOW)
    assert_valid_card(gone)
    assert "No work waiting to be graded" in texts(gone)


def test_waiting_card_pages_and_clamps() -> None:
    items = fx.ungraded_items(45)
    middle = waiting_page_card(items, 1, fx.TZ, fx.NOW)
    assert_valid_card(middle)
    assert "21–40 of 45 submissions, oldest first · page 2 of 3" in texts(middle)
    waiting = ShowWaitingAction(items[0].education_class.id, items[0].assignment.id, 0)
    assert press_and_parse(middle, "Previous page") == waiting
    assert press_and_parse(middle, "Next page") == ShowWaitingAction(waiting.class_id, waiting.assignment_id, 2)
    last = waiting_page_card(items, 99, fx.TZ, fx.NOW)
    assert "41–45 of 45 submissions, oldest first · page 3 of 3" in texts(last)
    assert verbs(last) == ["openGrading"] * 5 + ["showWaiting", "showUngraded"]  # Previous page, Other assignments


def test_student_names_cannot_inject_links() -> None:
    items = fx.ungraded_items(1)
    item = items[0]
    hostile = type(item)(
        item.education_class, item.assignment, item.submission, "[Click here](https://evil.example)", item.late_by
    )
    built = waiting_page_card([hostile], 0, fx.TZ, fx.NOW)
    assert "](" not in json.dumps(built, ensure_ascii=False).replace("]\u200b(", "")


def test_four_hundred_long_named_submissions_page_under_the_budget() -> None:
    items = fx.ungraded_items(400, name_length=200, classes=7, assignments=40)
    overview = ungraded_page_card(items, 0, "all your classes", fx.TZ, fx.NOW)
    assert_valid_card(overview)
    assert card_size(overview) < MAX_CARD_BYTES
    one = [item for item in fx.ungraded_items(400, name_length=200)]
    pages = paginate(one, lambda rows, number: waiting_page_card(rows, 0, fx.TZ, fx.NOW), per_page=PER_PAGE)
    assert [item for page in pages for item in page] == one  # all of them, once, still oldest first
    for number in range(len(pages)):
        built = waiting_page_card(one, number, fx.TZ, fx.NOW)
        assert len(json.dumps(built, ensure_ascii=False, separators=(",", ":")).encode("utf-8")) < MAX_CARD_BYTES
        assert card_size(built) < MAX_CARD_BYTES  # UTF-16, as Teams counts


def test_pages_shrink_when_names_are_huge() -> None:
    items = fx.ungraded_items(40, name_length=20_000)  # names are cut to 120 characters on the card

    def render(rows: list[Any], number: int) -> dict[str, Any]:
        return waiting_page_card(rows, 0, fx.TZ, fx.NOW)  # a page's rows fit one card of the full budget

    pages = paginate(items, render, per_page=20, budget=6_000)
    assert all(len(page) < 20 for page in pages)
    assert sum(len(page) for page in pages) == 40
    for number, page in enumerate(pages):
        assert card_size(render(page, number)) <= 6_000


def test_many_assignments_stay_under_the_budget_and_say_what_is_hidden() -> None:
    progress = [
        AssignmentProgress(
            fx.assignment(f"a0000000-0000-4000-8000-{index:012d}", f"Assignment {index} " + "long title " * 20),
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


def test_neutral_card_opens_the_1_1_chat_for_clients_that_do_not_refresh() -> None:
    refresh = RefreshViewAction("ungraded", fx.CLASS_ID, 0)
    built = neutral_channel_card(refresh, "Biology 9A", TEACHERS, bot_app_id="bot-app-1")
    assert_valid_card(built)
    (chat,) = of_type(built, "Action.OpenUrl")
    assert chat["title"] == "Open our 1:1 chat"
    url = urlsplit(chat["url"])
    assert (url.scheme, url.netloc, url.path) == ("https", "teams.microsoft.com", "/l/chat/0/0")
    assert parse_qs(url.query) == {"users": ["28:bot-app-1"], "message": ["ungraded Biology 9A"]}
    assert "open our 1:1 chat and send `ungraded Biology 9A`" in texts(built)
    assert executes(built) == []  # the refresh still brings listed teachers their view
    assignments = neutral_channel_card(RefreshViewAction("assignments", fx.CLASS_ID, 0), None, [], bot_app_id="28:b")
    assert parse_qs(urlsplit(of_type(assignments, "Action.OpenUrl")[0]["url"]).query) == {
        "users": ["28:b"],
        "message": ["assignments"],
    }


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
    built = neutral_channel_card(RefreshViewAction("ungraded", CLASS, 0), None, [])
    assert_valid_card(built)
    assert built["refresh"]["userIds"] == []
    assert [action["verb"] for action in executes(built)] == ["refreshView"]


ROUND_TRIPS: list[ActionPayload] = [
    PickClassAction(CLASS, "assignments"),
    PickClassAction(CLASS, "ungraded"),
    ShowAssignmentsAction(CLASS),
    ShowUngradedAction(None, 0),
    ShowUngradedAction(CLASS, 3),
    RefreshViewAction("ungraded", CLASS, 2),
    RefreshViewAction("assignments", CLASS, 0),
    OpenGradingAction(CLASS, ASSIGNMENT),
    OpenGradingAction(CLASS, ASSIGNMENT, SUBMISSION),
    ShowWaitingAction(CLASS, ASSIGNMENT, 0),
    ShowWaitingAction(CLASS, ASSIGNMENT, 4),
    OpenUngradedAction(None, 0),
    OpenUngradedAction(CLASS, 1),
    OpenAssignmentsAction(CLASS),
]


@pytest.mark.parametrize("payload", ROUND_TRIPS, ids=lambda payload: type(payload).__name__)
def test_payloads_round_trip_through_json(payload: ActionPayload) -> None:
    assert parse_action(payload.VERB, card_data(payload)) == payload


BAD_DATA: dict[str, tuple[str, object]] = {
    "pickClass bad next": ("pickClass", {"classId": CLASS, "next": "delete"}),
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
    "showWaiting bad assignment": ("showWaiting", {"classId": CLASS, "assignmentId": "../x", "page": 0}),
    "showWaiting negative page": ("showWaiting", {"classId": CLASS, "assignmentId": ASSIGNMENT, "page": -1}),
    "openGrading bad submission": (
        "openGrading",
        {"classId": CLASS, "assignmentId": ASSIGNMENT, "submissionId": "x/y"},
    ),
}


@pytest.mark.parametrize(("verb", "data"), list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_bad_data_is_refused(verb: str, data: Any) -> None:
    with pytest.raises(ActionDataError):
        parse_action(verb, data)
