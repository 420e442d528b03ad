"""Cards that list things: classes, the class picker, assignments, ungraded work in pages, the neutral channel card;
and the navigation payloads every feature's buttons carry (pickClass, showAssignments, showUngraded, refreshView,
openGrading)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Annotated, Final, Literal, TypeVar
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from microsoft_teams import cards as ac
from pydantic import Field

from cards.blocks import (
    MAX_CARD_BYTES,
    ActionPayload,
    Card,
    Id,
    OptionalId,
    Page,
    as_utc,
    buttons,
    card,
    deadline_text,
    due_text,
    execute,
    fitted_card,
    format_moment,
    heading,
    largest_fitting,
    late_text,
    line,
    open_url,
    plain,
    plural,
    relative,
    section,
    turned_in_text,
)
from graph.models import Assignment, AssignmentStatus, EducationClass, Submission

ListView = Literal["assignments", "ungraded"]
PER_PAGE: Final = 20
"""Most students on one page, even when more would fit: a list a teacher can take in."""
GROUPS_PER_PAGE: Final = 12
"""Most assignments on one page of the ungraded overview."""
MAX_REFRESH_USERS: Final = 60
"""Teams auto-refreshes a card for at most 60 listed users."""


class PickClassAction(ActionPayload, verb="pickClass"):
    """A class picked in the 1:1 chat; `next_view` is what to show for it."""

    class_id: Id
    next_view: Annotated[ListView, Field(alias="next")]


class ShowAssignmentsAction(ActionPayload, verb="showAssignments"):
    class_id: Id


class ShowUngradedAction(ActionPayload, verb="showUngraded"):
    """Ungraded work of one class, or of every taught class when `class_id` is None; `page` counts from 0."""

    class_id: OptionalId
    page: Page


class OpenUngradedAction(ShowUngradedAction, verb="openUngraded"):
    """ "Ungraded" on a card that stays (help, classes, assignments, a digest): the list opens below it."""


class OpenAssignmentsAction(ShowAssignmentsAction, verb="openAssignments"):
    """ "Assignments" on the classes card: the class's assignments open below it, the classes stay."""


class RefreshViewAction(ActionPayload, verb="refreshView"):
    """The refresh of a neutral channel card (every one names its class): brings the invoking teacher's own view."""

    view: ListView
    class_id: Id
    page: Page


class ShowWaitingAction(ActionPayload, verb="showWaiting"):
    """The students of one assignment waiting for a grade; `page` counts from 0."""

    class_id: Id
    assignment_id: Id
    page: Page = 0


class OpenGradingAction(ActionPayload, verb="openGrading"):
    """Open the grading card; without a submission, the first one waiting in the assignment."""

    class_id: Id
    assignment_id: Id
    submission_id: OptionalId = None


@dataclass(frozen=True, slots=True)
class UngradedItem:
    """One turned-in submission waiting for a grade, as the ungraded and digest cards show it."""

    education_class: EducationClass
    assignment: Assignment
    submission: Submission
    student_name: str
    late_by: timedelta | None

    @property
    def turned_in_at(self) -> datetime | None:
        return self.submission.submitted_at


@dataclass(frozen=True, slots=True)
class AssignmentProgress:
    """Where an assignment's submissions stand, as the assignments card counts them."""

    assignment: Assignment
    needs_grading: int
    graded_not_returned: int
    returned: int
    not_turned_in: int
    excused: int
    late: int


RowT = TypeVar("RowT")
_PICKER_PROMPT: dict[ListView, str] = {
    "assignments": "Which class's assignments?",
    "ungraded": "Which class's ungraded work?",
}
_STATUS_LABELS = {
    AssignmentStatus.DRAFT: "Draft",
    AssignmentStatus.PUBLISHED: "Publishing…",
    AssignmentStatus.ASSIGNED: "Assigned",
    AssignmentStatus.INACTIVE: "Inactive",
}
_TITLES = {"assignments": "Assignments", "ungraded": "Work waiting to be graded"}


def _class_details(education_class: EducationClass) -> str:
    return " · ".join(plain(part, 60) for part in (education_class.class_code, education_class.term_name) if part)


def classes_card(classes: Sequence[EducationClass]) -> Card:
    """Each class (name, code, term) with Assignments / Ungraded buttons."""
    if not classes:
        return card([heading("Your classes"), line("You don't teach any classes in Teams yet.")])
    rows: list[list[ac.CardElement | None]] = []
    for education_class in classes:
        details = _class_details(education_class)
        assignments = execute("Assignments", OpenAssignmentsAction(education_class.id))
        name = line(plain(education_class.display_name) or "Unnamed class", bold=True)
        actions = buttons([assignments, execute("Ungraded", OpenUngradedAction(education_class.id, 0))])
        rows.append([section([name, line(details, subtle=True) if details else None, actions])])
    all_ungraded = execute("Ungraded in all classes", OpenUngradedAction(None, 0))
    return fitted_card([heading("Your classes")], rows, "classes", [all_ungraded])


def class_picker_card(classes: Sequence[EducationClass], next_view: ListView) -> Card:
    """ "Which class?": one button per class (verb pickClass)."""
    if not classes:
        return card([line("You don't teach any classes in Teams yet.")])
    rows: list[list[ac.CardElement | None]] = []
    for education_class in classes:
        title = plain(education_class.display_name, 60) or "Unnamed class"
        label = f"{title} ({details})" if (details := _class_details(education_class)) else title
        rows.append([buttons([execute(label, PickClassAction(education_class.id, next_view))])])
    return fitted_card([heading(_PICKER_PROMPT[next_view])], rows, "classes")


def status_text(assignment: Assignment, tz: ZoneInfo, now: datetime) -> str:
    """Draft / Scheduled for … / Assigned / Publishing… / Inactive, as the teacher would say it."""
    status = assignment.status
    scheduled = assignment.assign_at is not None and as_utc(assignment.assign_at) > as_utc(now)
    if status is AssignmentStatus.SCHEDULED or (status is AssignmentStatus.ASSIGNED and scheduled):
        return f"Scheduled for {format_moment(assignment.assign_at, tz, now)}" if assignment.assign_at else "Scheduled"
    return _STATUS_LABELS.get(status, "Status unknown")


def _assignment_block(class_id: str, progress: AssignmentProgress, tz: ZoneInfo, now: datetime) -> ac.Container:
    """An assignment with work waiting for the teacher: status, dates, what waits ("To grade 5 · Graded, not returned
    2") and where the rest stand ("Returned 10 · Not turned in 3 · Late 1 · Excused 1"); Grade, or Review and return."""
    assignment = progress.assignment
    no_points = " · No points" if assignment.max_points is None else ""
    closes = deadline_text("Closes", "Closed", assignment.close, tz, now)  # None: late turn-ins accepted for ever
    waiting = progress.needs_grading or progress.graded_not_returned
    title = f"Grade ({waiting})" if progress.needs_grading else f"Review and return ({waiting})"
    grade = execute(title, OpenGradingAction(class_id, assignment.id))
    items = [
        line(plain(assignment.display_name) or "Untitled assignment", bold=True),
        line(f"{status_text(assignment, tz, now)}{no_points} · {due_text(assignment.due, tz, now)}", subtle=True),
        line(closes, subtle=True) if closes else None,
    ]
    if assignment.status is not AssignmentStatus.DRAFT:
        rest = [f"Returned {progress.returned}", f"Not turned in {progress.not_turned_in}", f"Late {progress.late}"]
        items.append(line(f"To grade {progress.needs_grading} · Graded, not returned {progress.graded_not_returned}"))
        items.append(line(" · ".join([*rest, f"Excused {progress.excused}"] if progress.excused else rest)))
    return section([*items, buttons([grade, open_url("Open in Teams", assignment.web_url)])])


def assignments_card(
    education_class: EducationClass, progress: Sequence[AssignmentProgress], tz: ZoneInfo, now: datetime
) -> Card:
    """Every assignment of a class with its counts: those with work waiting first, in full, with a Grade button; then
    the others, one line each, the tail cut (and counted) if the card would pass the size budget."""
    class_name = plain(education_class.display_name) or "this class"
    if not progress:
        return card([heading(f"Assignments: {class_name}"), line("This class has no assignments yet.")])
    waiting = [item for item in progress if item.needs_grading or item.graded_not_returned]
    others = [item for item in progress if not (item.needs_grading or item.graded_not_returned)]
    rows: list[list[ac.CardElement | None]] = [[_assignment_block(education_class.id, it, tz, now)] for it in waiting]
    for item in others:
        title = plain(item.assignment.display_name, 80) or "Untitled assignment"
        summary = f"{status_text(item.assignment, tz, now)} · {due_text(item.assignment.due, tz, now)}"
        if item.assignment.status is not AssignmentStatus.DRAFT:
            summary += f" · returned {item.returned}, not turned in {item.not_turned_in}"
        rows.append([line(f"**{title}** — {summary}", subtle=True)])
    if others:  # the first compact line carries the header, so that a cut never leaves the header alone
        rows[len(waiting)].insert(0, section([line("Nothing to grade or return", bold=True)], spacing="Medium"))
    to_grade = sum(item.needs_grading for item in progress)
    head = [
        heading(f"Assignments: {class_name}"),
        line(f"{len(progress)} assignments · {to_grade} submissions to grade", subtle=True),
    ]
    ungraded = execute("Ungraded work", OpenUngradedAction(education_class.id, 0)) if to_grade else None
    return fitted_card(head, rows, "assignments", [ungraded], full_width=True)


def group_by_assignment(items: Sequence[UngradedItem]) -> list[list[UngradedItem]]:
    """Ungraded work per assignment, each class's assignments together; as `items` come oldest first, so do the
    classes and, within each class, the assignments (by the longest-waiting submission)."""
    by_class: dict[str, dict[str, list[UngradedItem]]] = {}
    for item in items:
        by_class.setdefault(item.education_class.id, {}).setdefault(item.assignment.id, []).append(item)
    return [group for assignments in by_class.values() for group in assignments.values()]


def paginate(
    rows: Sequence[RowT], render: Callable[[list[RowT], int], Card], *, per_page: int, budget: int = MAX_CARD_BYTES
) -> list[list[RowT]]:
    """Split `rows` into pages of at most `per_page` whose card, `render(rows, page number)`, measures within
    `budget`."""
    pages: list[list[RowT]] = []
    rest = list(rows)
    while rest:
        count = largest_fitting(lambda shown: render(rest[:shown], len(pages)), min(per_page, len(rest)), budget)
        pages.append(rest[:count])
        del rest[:count]
    return pages


def _page_line(page: int, page_count: int) -> str:
    return f" · page {page + 1} of {page_count}" if page_count > 1 else ""


def _navigation(page: int, page_count: int, to_page: Callable[[int], ActionPayload]) -> list[ac.ExecuteAction | None]:
    return [
        execute("Previous page", to_page(page - 1)) if page > 0 else None,
        execute("Next page", to_page(page + 1)) if page + 1 < page_count else None,
    ]


def _assignment_row(group: Sequence[UngradedItem], now: datetime) -> list[ac.CardElement | None]:
    """One assignment of the overview: how many wait, since when, how many late; Students and Start grading."""
    first = group[0]
    late = sum(1 for item in group if item.late_by is not None)
    oldest = f" · oldest turned in {relative(first.turned_in_at, now)}" if first.turned_in_at is not None else ""
    title = plain(first.assignment.display_name, 80) or "Untitled assignment"
    class_id, assignment_id = first.education_class.id, first.assignment.id
    students = execute(f"Students ({len(group)})", ShowWaitingAction(class_id, assignment_id, 0))
    return [
        line(f"**{title}** — {len(group)} waiting{oldest}" + (f" · {late} late" if late else "")),
        buttons([students, execute("Start grading", OpenGradingAction(class_id, assignment_id))]),
    ]


def ungraded_page_card(
    items: Sequence[UngradedItem],
    page: int,
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
) -> Card:
    """Page `page` (clamped to the last, e.g. after grading shrank it) of the ungraded overview: the totals over every
    page first ("78 submissions in 6 assignments, 3 classes"), then per class (when the scope is every taught class:
    `class_id` None) each assignment with work waiting, with its count and buttons to list its students or start
    grading; no student names. Its times are relative, so `tz` goes unused: it is taken as every list's is."""
    groups = group_by_assignment(items)
    if not groups:
        return card(
            [heading("No work waiting to be graded"), line(f"All turned-in work in {plain(scope_label)} is graded.")]
        )
    class_totals = Counter(item.education_class.id for item in items)
    classes = f", {plural(len(class_totals), 'class', 'classes')}" if class_id is None else ""
    totals = f"{plural(len(items), 'submission')} in {plural(len(groups), 'assignment')}{classes}"

    def render(shown: Sequence[Sequence[UngradedItem]], page: int, page_count: int) -> Card:
        body: list[ac.CardElement | None] = [
            heading(f"Waiting to be graded: {plain(scope_label)}"),
            line(f"{totals}, oldest first{_page_line(page, page_count)}", subtle=True),
        ]
        for _, same_class in groupby(shown, key=lambda group: group[0].education_class.id):
            class_groups = list(same_class)
            education_class = class_groups[0][0].education_class
            header = [
                line(plain(education_class.display_name, 80) or "Unnamed class", bold=True),
                line(f"{plural(class_totals[education_class.id], 'submission')} waiting", subtle=True),
            ]
            rows = [row for group in class_groups for row in _assignment_row(group, now)]
            body.append(section([*(header if class_id is None else []), *rows]))
        navigation = _navigation(page, page_count, lambda number: ShowUngradedAction(class_id, number))
        return card(body, navigation, full_width=True)

    pages = paginate(groups, lambda rows, number: render(rows, number, len(groups)), per_page=GROUPS_PER_PAGE)
    page = min(max(page, 0), len(pages) - 1)
    return render(pages[page], page, len(pages))


def waiting_page_card(items: Sequence[UngradedItem], page: int, tz: ZoneInfo, now: datetime) -> Card:
    """Page `page` (clamped) of the students waiting for a grade in one assignment (`items`: all of them, oldest
    first), each with a Grade button."""
    if not items:
        return card(
            [heading("No work waiting to be graded"), line("Everything turned in for this assignment is graded.")]
        )
    head, total = items[0], len(items)
    class_id, assignment_id = head.education_class.id, head.assignment.id

    def render(rows: Sequence[UngradedItem], page: int, page_count: int, first: int) -> Card:
        """One page; `first` (the page's first item in the whole list, from 0) feeds the "21–40 of 45" line."""
        shown = f"{first + 1}–{first + len(rows)} of {total}" if page_count > 1 else f"{total}"
        body: list[ac.CardElement | None] = [
            heading(f"Waiting to be graded: {plain(head.assignment.display_name) or 'Untitled assignment'}"),
            line(
                f"{plain(head.education_class.display_name, 80)} · {shown} submissions, oldest first"
                f"{_page_line(page, page_count)}",
                subtle=True,
            ),
        ]
        for item in rows:
            late = late_text(item.late_by)
            details = turned_in_text(item.turned_in_at, tz, now) + (f" · {late}" if late else "")
            grade = execute("Grade", OpenGradingAction(class_id, assignment_id, item.submission.id))
            name = line(plain(item.student_name) or "A student", bold=True)
            student = ac.Column(width="stretch", items=[name, line(details, subtle=True)])
            button = ac.Column(width="auto", vertical_content_alignment="Center", items=[ac.ActionSet(actions=[grade])])
            body.append(ac.ColumnSet(columns=[student, button], separator=True))
        navigation = _navigation(page, page_count, lambda number: ShowWaitingAction(class_id, assignment_id, number))
        return card(body, [*navigation, execute("Other assignments", ShowUngradedAction(class_id, 0))], full_width=True)

    # Measured with as many digits as any page has, or more.
    pages = paginate(items, lambda rows, number: render(rows, number, total, total), per_page=PER_PAGE)
    page = min(max(page, 0), len(pages) - 1)
    return render(pages[page], page, len(pages), sum(len(earlier) for earlier in pages[:page]))


def _personal_chat_url(bot_app_id: str, message: str) -> str:
    """The Teams deep link to the 1:1 chat with the bot (`users=28:<app id>`), `message` prefilled in a new chat's
    compose box (https://learn.microsoft.com/microsoftteams/platform/concepts/build-and-test/deep-link-teams)."""
    query = {"users": f"28:{bot_app_id.removeprefix('28:')}", "message": message}
    return "https://teams.microsoft.com/l/chat/0/0?" + urlencode(query)


def neutral_channel_card(
    refresh: RefreshViewAction, class_name: str | None, teacher_ids: Sequence[str], *, bot_app_id: str = ""
) -> Card:
    """A card safe for everyone in a channel or group chat: no student data; its user-specific refresh (`refreshView`)
    brings each listed teacher (Teams ids, `29:…`) their own view. With more than 60 teachers (or none known), a
    "Show my view" button lets the others ask for theirs; the bot decides on every refresh what to answer. A client
    that does not refresh still has "Open our 1:1 chat" (with the bot `bot_app_id`), where the same command, e.g.
    `ungraded Chemistry 201`, brings the same view."""
    user_ids = list(dict.fromkeys(teacher_id for teacher_id in teacher_ids if teacher_id))[:MAX_REFRESH_USERS]
    title = _TITLES[refresh.view] + (f": {plain(class_name)}" if class_name else "")
    action = ac.ExecuteAction(title="Show my view", verb=refresh.VERB, data=refresh.to_data())
    manual = len(dict.fromkeys(teacher_ids)) > MAX_REFRESH_USERS or not user_ids
    command = f"{refresh.view} {plain(class_name, 100)}" if class_name else refresh.view
    chat = open_url("Open our 1:1 chat", _personal_chat_url(bot_app_id, command)) if bot_app_id else None
    return card(
        [
            heading(title),
            line("Teachers of this class see their own details here. Everyone else sees only this note."),
            line(f"If your details don't appear, open our 1:1 chat and send `{command}`.", subtle=True)
            if chat
            else None,
            line("Gradebot never posts student names, grades or feedback in a shared chat.", subtle=True),
        ],
        [execute("Show my view", refresh) if manual else None, chat],
        refresh=ac.RefreshDefinition(action=action, user_ids=user_ids),
        fallback_text=title,
    )
