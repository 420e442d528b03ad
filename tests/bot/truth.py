"""What the sandbox itself says is true, computed from its state (not through Gradebot's bot/school/progress code)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandbox.school import FeedbackOutcome, PointsOutcome, RubricOutcome, School, Submission


def _graded_at(submission: Submission) -> datetime | None:
    stamps: list[datetime] = []
    for outcome in submission.outcomes:
        if isinstance(outcome, PointsOutcome) and outcome.points is not None and outcome.points.graded_at:
            stamps.append(outcome.points.graded_at)
        if isinstance(outcome, FeedbackOutcome) and outcome.feedback is not None:
            stamps.append(outcome.feedback.feedback_at)
        if isinstance(outcome, RubricOutcome) and outcome.selected_levels and outcome.last_modified_at:
            stamps.append(outcome.last_modified_at)
    return max(stamps) if stamps else None


def needs_grading(school: School, submission: Submission) -> bool:
    state = school.shown_state(submission)
    if state.status != "submitted":
        return False
    graded = _graded_at(submission)
    return graded is None or (state.submitted_at is not None and graded < state.submitted_at)


@dataclass(frozen=True)
class Counts:
    needs_grading: int
    graded_not_returned: int
    returned: int
    not_turned_in: int
    excused: int


def assignment_counts(school: School, class_id: str, assignment_id: str) -> Counts:
    assignment = school.assignment(class_id, assignment_id)
    waiting = graded = returned = not_in = excused = 0
    for submission in assignment.submissions.values():
        status = school.shown_state(submission).status
        if status == "excused":
            excused += 1
        elif status in ("working", "reassigned"):
            not_in += 1
        elif status == "submitted":
            if needs_grading(school, submission):
                waiting += 1
            else:
                graded += 1
        else:
            unpublished = any(
                isinstance(o, PointsOutcome)
                and o.points is not None
                and (o.published_points is None or o.published_points.points != o.points.points)
                for o in submission.outcomes
            )
            if unpublished:
                graded += 1
            else:
                returned += 1
    return Counts(waiting, graded, returned, not_in, excused)


def ungraded_submissions(school: School, teacher_id: str) -> list[Submission]:
    """Turned-in, ungraded submissions of open assignments in every class the teacher teaches."""
    found: list[Submission] = []
    for school_class in school.directory.taught_by(teacher_id):
        for assignment in school.assignments_of(school_class.id):
            if school.assignment_status(assignment) not in ("assigned", "published"):
                continue
            found.extend(s for s in assignment.submissions.values() if needs_grading(school, s))
    return found
