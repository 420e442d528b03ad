"""Cards that list things: classes, the class picker, assignments, ungraded work in pages, the neutral channel card;
and the navigation payloads every feature's buttons carry (pickClass, showAssignments, showUngraded, refreshView,
openGrading).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Final, Literal, Protocol, Self, TypeVar
from zoneinfo import ZoneInfo

from microsoft_teams import cards as ac
from pydantic import Field, PlainValidator, model_validator

from cards.blocks import (
    MAX_CARD_BYTES,
    STALE_CARD,
    ActionDataError,
    ActionPayload,
    Card,
    Id,
    OptionalId,
    Page,
    as_utc,
    buttons,
    card,
    clean_text,
    close_text,
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
    section,
    turned_in_text,
)
from graph.models import Assignment, AssignmentStatus, EducationClass, Submission

NextView = Literal["assignments", "ungraded", "grade"]
RefreshableView = Literal["assignments", "ungraded"]
PER_PAGE: Final = 20
"""Most submissions on one page, even when more would fit: a list a teacher can take in."""
MAX_REFRESH_USERS: Final = 60
"""Teams auto-refreshes a card for at most 60 listed users."""


class PickClassAction(ActionPayload, verb="pickClass"):
    """A class picked in the 1:1 chat; `next_view` is what to show for it, `query` an assignment search (grade …)."""

    class_id: Id
    next_view: Annotated[NextView, Field(alias="next")]
    query: Annotated[str | None, PlainValidator(lambda value: clean_text(value, "Search", 200, multiline=False))] = None


class ShowAssignmentsAction(ActionPayload, verb="showAssignments"):
    class_id: Id


class ShowUngradedAction(ActionPayload, verb="showUngraded"):
    """Ungraded work of one class, or of every taught class when `class_id` is None; `page` counts from 0."""

    class_id: OptionalId
    page: Page


class RefreshViewAction(ActionPayload, verb="refreshView"):
    """The refresh of a neutral channel card: brings the invoking teacher's own view."""

    view: RefreshableView
    class_id: OptionalId
    page: Page

    @model_validator(mode="after")
    def _class_for_assignments(self) -> Self:
        if self.view == "assignments" and self.class_id is None:
            raise ActionDataError(STALE_CARD, "classId")
        return self


class OpenGradingAction(ActionPayload, verb="openGrading"):
    """Open the grading card; without a submission, the first one waiting in the assignment."""

    class_id: Id
    assignment_id: Id
    submission_id: OptionalId = None


class UngradedView(Protocol):
    """One turned-in submission waiting for a grade, as the ungraded and digest cards show it."""

    @property
    def education_class(self) -> EducationClass: ...
    @property
    def assignment(self) -> Assignment: ...
    @property
    def submission(self) -> Submission: ...
    @property
    def student_name(self) -> str: ...
    @property
    def late_by(self) -> timedelta | None: ...
    @property
    def turned_in_at(self) -> datetime | None: ...


class ProgressView(Protocol):
    """Where an assignment's submissions stand, as the assignments card counts them."""

    @property
    def assignment(self) -> Assignment: ...
    @property
    def turned_in(self) -> int: ...
    @property
    def needs_grading(self) -> int: ...
    @property
    def graded_not_returned(self) -> int: ...
    @property
    def returned(self) -> int: ...
    @property
    def not_turned_in(self) -> int: ...
    @property
    def excused(self) -> int: ...
    @property
    def late(self) -> int: ...


UngradedT = TypeVar("UngradedT", bound=UngradedView)
_PICKER_PROMPT: dict[NextView, str] = {
    "assignments": "Which class's assignments?",
    "ungraded": "Which class's ungraded work?",
    "grade": "Which class do you want to grade?",
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
        actions = [
            execute("Assignments", ShowAssignmentsAction(education_class.id)),
            execute("Ungraded", ShowUngradedAction(education_class.id, 0)),
        ]
        name = line(plain(education_class.display_name) or "Unnamed class", bold=True)
        rows.append([section([name, line(details, subtle=True) if details else None, buttons(actions)])])
    all_ungraded = execute("Ungraded in all classes", ShowUngradedAction(None, 0))
    return fitted_card([heading("Your classes")], rows, "classes", [all_ungraded])


def class_picker_card(classes: Sequence[EducationClass], next_view: NextView, *, query: str | None = None) -> Card:
    """ "Which class?": one button per class (verb pickClass); `query` carries a `grade <assignment>` search."""
    if not classes:
        return card([line("You don't teach any classes in Teams yet.")])
    rows: list[list[ac.CardElement | None]] = []
    for education_class in classes:
        title = plain(education_class.display_name, 60) or "Unnamed class"
        label = f"{title} ({details})" if (details := _class_details(education_class)) else title
        rows.append([buttons([execute(label, PickClassAction(education_class.id, next_view, query))])])
    return fitted_card([heading(_PICKER_PROMPT[next_view])], rows, "classes")


def status_text(assignment: Assignment, tz: ZoneInfo, now: datetime) -> str:
    """Draft / Scheduled for … / Assigned / Publishing… / Inactive, as the teacher would say it."""
    status = assignment.status
    scheduled = assignment.assign_at is not None and as_utc(assignment.assign_at) > as_utc(now)
    if status is AssignmentStatus.SCHEDULED or (status is AssignmentStatus.ASSIGNED and scheduled):
        return f"Scheduled for {format_moment(assignment.assign_at, tz, now)}" if assignment.assign_at else "Scheduled"
    return _STATUS_LABELS.get(status, "Status unknown")


def counts_text(progress: ProgressView) -> str:
    """ "Turned in 7 (5 to grade, 2 graded not returned) · Returned 10 · Not turned in 3 · Late 1 · Excused 1"."""
    parts = [
        f"Turned in {progress.turned_in} ({progress.needs_grading} to grade, "
        f"{progress.graded_not_returned} graded not returned)",
        f"Returned {progress.returned}",
        f"Not turned in {progress.not_turned_in}",
        f"Late {progress.late}",
    ]
    return " · ".join([*parts, f"Excused {progress.excused}"] if progress.excused else parts)


def _assignment_block(class_id: str, progress: ProgressView, tz: ZoneInfo, now: datetime) -> ac.Container:
    """An assignment with work waiting for the teacher: status, dates, counts, and Grade (or Review and return)."""
    assignment = progress.assignment
    credit = " · credit" if assignment.max_points is None else ""
    closes = close_text(assignment.close, tz, now)
    if progress.needs_grading:
        title = f"Grade ({progress.needs_grading})"
    else:
        title = f"Review and return ({progress.graded_not_returned})"
    grade = execute(title, OpenGradingAction(class_id, assignment.id))
    items = [
        line(plain(assignment.display_name) or "Untitled assignment", bold=True),
        line(f"{status_text(assignment, tz, now)}{credit} · {due_text(assignment.due, tz, now)}", subtle=True),
        line(closes, subtle=True) if closes else None,
        line(counts_text(progress)) if assignment.status is not AssignmentStatus.DRAFT else None,
        buttons([grade, open_url("Open in Teams", assignment.web_url)]),
    ]
    return section(items)


def assignments_card(
    education_class: EducationClass, progress: Sequence[ProgressView], tz: ZoneInfo, now: datetime
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
        rows[len(waiting)].insert(0, section([line("Nothing waiting", bold=True)], spacing="Medium"))
    to_grade = sum(item.needs_grading for item in progress)
    head = [
        heading(f"Assignments: {class_name}"),
        line(f"{len(progress)} assignments · {to_grade} submissions to grade", subtle=True),
    ]
    ungraded = execute("Ungraded work", ShowUngradedAction(education_class.id, 0)) if to_grade else None
    return fitted_card(head, rows, "assignments", [ungraded], full_width=True)


def ungraded_card(
    items: Sequence[UngradedView],
    page: int,
    page_count: int,
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
    total: int | None = None,
    first_index: int = 0,
) -> Card:
    """One page of ungraded work, oldest first; with `class_id` None (every taught class) each item names its class.
    `total` and `first_index` (the page's first item in the whole list, from 0) feed the "21–40 of 400" line."""
    if not items:
        return card([heading("Nothing waiting"), line(f"All turned-in work in {plain(scope_label)} is graded. Nice!")])
    total = len(items) if total is None else total
    range_text = f"{first_index + 1}–{first_index + len(items)} of {total}" if page_count > 1 else f"{total}"
    position = f" · page {page + 1} of {page_count}" if page_count > 1 else ""
    body: list[ac.CardElement | None] = [
        heading(f"Waiting to be graded: {plain(scope_label)}"),
        line(f"{range_text} submissions, oldest first{position}", subtle=True),
    ]
    for item in items:
        where = plain(item.assignment.display_name) or "Untitled assignment"
        if class_id is None:
            where += f" · {plain(item.education_class.display_name, 80)}"
        late = late_text(item.late_by)
        grade = OpenGradingAction(item.education_class.id, item.assignment.id, item.submission.id)
        block = [
            line(plain(item.student_name) or "A student", bold=True),
            line(where, subtle=True),
            line(turned_in_text(item.turned_in_at, tz, now), subtle=True),
            line(late.capitalize(), color="Attention") if late else None,
            buttons([execute("Grade", grade), open_url("Open in Teams", item.submission.web_url)]),
        ]
        body.append(section(block))
    navigation = [
        execute("Previous page", ShowUngradedAction(class_id, page - 1)) if page > 0 else None,
        execute("Next page", ShowUngradedAction(class_id, page + 1)) if page + 1 < page_count else None,
    ]
    return card(body, navigation, full_width=True)


def paginate_ungraded(
    items: Sequence[UngradedT],
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
    per_page: int = PER_PAGE,
    budget: int = MAX_CARD_BYTES,
) -> list[list[UngradedT]]:
    """Split ungraded work into pages of at most `per_page` whose rendered card measures within `budget`."""
    render = partial(ungraded_card, scope_label=scope_label, tz=tz, now=now, class_id=class_id, total=len(items))
    pages: list[list[UngradedT]] = []
    start = 0
    page_count_bound = max(1, len(items))  # as many digits as the real page count, or more: a safe over-estimate
    while start < len(items):
        candidates = list(items[start : start + per_page])

        def build(count: int, candidates: list[UngradedT] = candidates, start: int = start) -> Card:
            return render(candidates[:count], len(pages), page_count_bound, first_index=start)

        count = largest_fitting(build, len(candidates), budget)
        pages.append(candidates[:count])
        start += count
    return pages


def ungraded_page_card(
    items: Sequence[UngradedView],
    page: int,
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
) -> Card:
    """Paginate all ungraded work and render page `page` (clamped to the last page, e.g. after grading shrank it)."""
    pages = paginate_ungraded(items, scope_label, tz, now, class_id=class_id) or [[]]
    page = min(max(page, 0), len(pages) - 1)
    first = sum(len(earlier) for earlier in pages[:page])
    return ungraded_card(
        pages[page], page, len(pages), scope_label, tz, now, class_id=class_id, total=len(items), first_index=first
    )


def neutral_channel_card(refresh: RefreshViewAction, class_name: str | None, teacher_ids: Sequence[str]) -> Card:
    """A card safe for everyone in a channel or group chat: no student data; its user-specific refresh (`refreshView`)
    brings each listed teacher (Teams ids, `29:…`) their own view. With more than 60 teachers (or none known), a
    "Show my view" button lets the others ask for theirs; the bot decides on every refresh what to answer."""
    user_ids = list(dict.fromkeys(teacher_id for teacher_id in teacher_ids if teacher_id))[:MAX_REFRESH_USERS]
    title = _TITLES[refresh.view] + (f": {plain(class_name)}" if class_name else "")
    action = ac.ExecuteAction(title="Show my view", verb=refresh.VERB, data=refresh.to_data())
    manual = len(dict.fromkeys(teacher_ids)) > MAX_REFRESH_USERS or not user_ids
    return card(
        [
            heading(title),
            line("Teachers of this class see their own details here. Everyone else sees only this note."),
            line("Gradebot never posts student names, grades or feedback in a shared chat.", subtle=True),
        ],
        [execute("Show my view", refresh)] if manual else [],
        refresh=ac.RefreshDefinition(action=action, user_ids=user_ids),
        fallback_text=title,
    )
