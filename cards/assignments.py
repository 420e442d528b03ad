"""A class's assignments: status, due and close dates, and where each submission stands, with Grade buttons."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from microsoft_teams.cards import CardElement, Container

from bot.school.progress import AssignmentProgress
from cards.actions import OpenGradingAction, ShowUngradedAction
from cards.dates import as_utc, close_text, due_text, format_moment
from cards.render import Card, buttons, card, execute, heading, largest_fitting, line, open_url, plain
from graph.models import Assignment, AssignmentStatus, EducationClass


def status_text(assignment: Assignment, tz: ZoneInfo, now: datetime) -> str:
    """Draft / Scheduled for … / Assigned / Publishing… / Inactive, as the teacher would say it."""
    status = assignment.status
    scheduled = assignment.assign_at is not None and as_utc(assignment.assign_at) > as_utc(now)
    if status is AssignmentStatus.SCHEDULED or (status is AssignmentStatus.ASSIGNED and scheduled):
        when = f" for {format_moment(assignment.assign_at, tz, now)}" if assignment.assign_at else ""
        return f"Scheduled{when}"
    labels = {
        AssignmentStatus.DRAFT: "Draft",
        AssignmentStatus.PUBLISHED: "Publishing…",
        AssignmentStatus.ASSIGNED: "Assigned",
        AssignmentStatus.INACTIVE: "Inactive",
    }
    return labels.get(status, "Status unknown")


def counts_text(progress: AssignmentProgress) -> str:
    """ "Turned in 7 (5 to grade, 2 graded not returned) · Returned 10 · Not turned in 3 · Late 1 · Excused 1"."""
    parts = [
        f"Turned in {progress.turned_in} ({progress.needs_grading} to grade, "
        f"{progress.graded_not_returned} graded not returned)",
        f"Returned {progress.returned}",
        f"Not turned in {progress.not_turned_in}",
        f"Late {progress.late}",
    ]
    if progress.excused:
        parts.append(f"Excused {progress.excused}")
    return " · ".join(parts)


def _needs_teacher(progress: AssignmentProgress) -> bool:
    return progress.needs_grading > 0 or progress.graded_not_returned > 0


def _assignment_block(
    education_class: EducationClass, progress: AssignmentProgress, tz: ZoneInfo, now: datetime
) -> Container:
    assignment = progress.assignment
    title = plain(assignment.display_name) or "Untitled assignment"
    points = " · credit" if assignment.max_points is None else ""
    items: list[CardElement] = [
        line(f"{title}", bold=True),
        line(f"{status_text(assignment, tz, now)}{points} · {due_text(assignment.due, tz, now)}", subtle=True),
    ]
    closes = close_text(assignment.close, tz, now)
    if closes:
        items.append(line(closes, subtle=True))
    if assignment.status is not AssignmentStatus.DRAFT:
        items.append(line(counts_text(progress)))
    grade = None
    if progress.needs_grading:
        grade = execute(f"Grade ({progress.needs_grading})", OpenGradingAction(education_class.id, assignment.id))
    elif progress.graded_not_returned:
        grade = execute(
            f"Review and return ({progress.graded_not_returned})", OpenGradingAction(education_class.id, assignment.id)
        )
    actions = buttons([grade, open_url("Open in Teams", assignment.web_url)])
    if actions is not None:
        items.append(actions)
    return Container(items=items, separator=True)


def _compact_line(progress: AssignmentProgress, tz: ZoneInfo, now: datetime) -> CardElement:
    assignment = progress.assignment
    title = plain(assignment.display_name, 80) or "Untitled assignment"
    summary = f"{status_text(assignment, tz, now)} · {due_text(assignment.due, tz, now)}"
    if assignment.status is not AssignmentStatus.DRAFT:
        summary += f" · returned {progress.returned}, not turned in {progress.not_turned_in}"
    return line(f"**{title}** — {summary}", subtle=True)


def assignments_card(
    education_class: EducationClass, progress: Sequence[AssignmentProgress], tz: ZoneInfo, now: datetime
) -> Card:
    """Every assignment of a class with its counts; those with work waiting come first, in full, with a Grade button.

    Assignments with nothing to do are listed compactly; if the card would still pass the size budget, the tail is
    cut and the card says how many are not shown.
    """
    class_name = plain(education_class.display_name) or "this class"
    if not progress:
        return card([heading(f"Assignments: {class_name}"), line("This class has no assignments yet.")])
    active = [item for item in progress if _needs_teacher(item)]
    quiet = [item for item in progress if not _needs_teacher(item)]
    ordered = active + quiet
    waiting = sum(item.needs_grading for item in progress)

    def build(count: int) -> Card:
        shown = ordered[:count]
        body: list[CardElement | None] = [
            heading(f"Assignments: {class_name}"),
            line(f"{len(progress)} assignments · {waiting} submissions to grade", subtle=True),
        ]
        body.extend(_assignment_block(education_class, item, tz, now) for item in shown if _needs_teacher(item))
        others = [item for item in shown if not _needs_teacher(item)]
        if others:
            body.append(Container(items=[line("Nothing waiting", bold=True)], separator=True, spacing="Medium"))
            body.extend(_compact_line(item, tz, now) for item in others)
        hidden = len(ordered) - count
        if hidden:
            body.append(line(f"…and {hidden} more assignments not shown here.", subtle=True))
        return card(
            body,
            [execute("Ungraded work", ShowUngradedAction(education_class.id, 0)) if waiting else None],
            full_width=True,
        )

    return build(largest_fitting(build, len(ordered)))
