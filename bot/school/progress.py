"""Where each submission stands for the teacher (to grade, graded, returned…), derived from Graph data alone: Graph
has no "ungraded" or "late" flag, both follow from a submission's status, its outcomes and the dates."""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from cards.lists import AssignmentProgress, UngradedItem
from graph.models import Assignment, Outcomes, Submission, SubmissionStatus


class GradingState(enum.StrEnum):
    NOT_TURNED_IN = "notTurnedIn"
    NEEDS_GRADING = "needsGrading"
    GRADED_NOT_RETURNED = "gradedNotReturned"
    RETURNED = "returned"
    EXCUSED = "excused"


def latest_grade_at(outcomes: Outcomes | None) -> datetime | None:
    """When the teacher last set points, feedback or rubric levels (None if never)."""
    if outcomes is None:
        return None
    undated = datetime.min.replace(tzinfo=UTC)
    stamps: list[datetime] = []
    if outcomes.points and outcomes.points.points:
        stamps.append(outcomes.points.points.graded_at or outcomes.points.last_modified_at or undated)
    if outcomes.feedback and outcomes.feedback.feedback:
        stamps.append(outcomes.feedback.feedback.at or outcomes.feedback.last_modified_at or undated)
    if outcomes.rubric and outcomes.rubric.selected_levels:
        stamps.append(outcomes.rubric.last_modified_at or undated)
    return max(stamps) if stamps else None


def has_unreturned_grade(outcomes: Outcomes | None) -> bool:
    """True when a working grade differs from what the student was last shown."""
    if outcomes is None:
        return False
    points, feedback, rubric = outcomes.points, outcomes.feedback, outcomes.rubric
    shown_points = points.published_points.points if points and points.published_points else None
    shown_text = feedback.published_feedback.text if feedback and feedback.published_feedback else None
    return bool(
        (points and points.points and points.points.points != shown_points)
        or (feedback and feedback.feedback and feedback.feedback.text != shown_text)
        or (rubric and rubric.selected_levels and rubric.selected_levels != rubric.published_selected_levels)
    )


def grading_state(submission: Submission) -> GradingState:
    """The teacher's view of one submission; needs `$expand=outcomes` and `Prefer: include-unknown-enum-members`."""
    status = submission.status
    if status is SubmissionStatus.EXCUSED:
        return GradingState.EXCUSED
    if status in (SubmissionStatus.WORKING, SubmissionStatus.REASSIGNED):
        return GradingState.NOT_TURNED_IN
    if status is SubmissionStatus.SUBMITTED:
        graded_at = latest_grade_at(submission.outcomes)
        submitted_at = submission.submitted_at
        graded_since_turn_in = graded_at is not None and (submitted_at is None or graded_at >= submitted_at)
        return GradingState.GRADED_NOT_RETURNED if graded_since_turn_in else GradingState.NEEDS_GRADING
    if has_unreturned_grade(submission.outcomes):
        return GradingState.GRADED_NOT_RETURNED
    return GradingState.RETURNED


def lateness(submission: Submission, assignment: Assignment) -> timedelta | None:
    """How long after the due date the work was turned in (None when on time, not turned in or no due date)."""
    if assignment.due is None or submission.submitted_at is None:
        return None
    if submission.status in (SubmissionStatus.WORKING, SubmissionStatus.EXCUSED):
        return None
    late_by = submission.submitted_at - assignment.due
    return late_by if late_by > timedelta(0) else None


def summarize(assignment: Assignment, submissions: Iterable[Submission]) -> AssignmentProgress:
    """Tally an assignment's submissions."""
    states = [(grading_state(submission), lateness(submission, assignment)) for submission in submissions]
    counts = Counter(state for state, _ in states)
    late = sum(state is not GradingState.NOT_TURNED_IN and late_by is not None for state, late_by in states)
    return AssignmentProgress(
        assignment=assignment,
        needs_grading=counts[GradingState.NEEDS_GRADING],
        graded_not_returned=counts[GradingState.GRADED_NOT_RETURNED],
        returned=counts[GradingState.RETURNED],
        not_turned_in=counts[GradingState.NOT_TURNED_IN],
        excused=counts[GradingState.EXCUSED],
        late=late,
    )


def oldest_first(items: Iterable[UngradedItem]) -> list[UngradedItem]:
    """Ungraded work in the order a teacher should take it: longest waiting first, ties by assignment and id."""
    never = datetime.max.replace(tzinfo=UTC)
    return sorted(items, key=lambda item: (item.turned_in_at or never, item.assignment.id, item.submission.id))
