"""Grading's rules, checked on the server against fresh Graph data: points within the assignment's range, rubric
levels that exist, what a grade is (snapshots to compare and audit) and when someone else changed it meanwhile.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.kernel.errors import UserError
from cards.grading import format_points, last_change
from graph.models import Outcomes, Rubric, RubricSelection, Submission, format_datetime


class InvalidGradeError(UserError):
    """What the teacher typed does not fit the assignment (any more); the card is shown again with this message."""


def check_points(points: Decimal, max_points: float | None) -> None:
    """Points against the assignment's maximum (fresh from Graph); credit assignments take no points."""
    if max_points is None:
        raise InvalidGradeError("This assignment has no points. Enter feedback only.")
    if points < 0 or points > Decimal(str(max_points)):
        most = format_points(max_points)
        raise InvalidGradeError(
            f"{format_points(points)} is more than this assignment's {most} points: nothing was saved. "
            f"Points must be between 0 and {most}."
        )


def check_levels(levels: tuple[RubricSelection, ...], rubric: Rubric | None) -> None:
    if rubric is None:
        raise InvalidGradeError("This assignment has no rubric any more. Open it again.")
    qualities = {q.quality_id for q in rubric.qualities}
    columns = {level.level_id for level in rubric.levels}
    for selection in levels:
        if selection.quality_id not in qualities or selection.column_id not in columns:
            raise InvalidGradeError("The rubric changed since this card was shown. Open it again.")


def snapshot(outcomes: Outcomes | None, submission: Submission | None = None) -> dict[str, Any]:
    """The grade as JSON for the audit log: working and published points/feedback/levels, and the status."""
    view: dict[str, Any] = {}
    if submission is not None:
        view["status"] = submission.status.value
    if outcomes is None:
        return view
    if (points := outcomes.points) is not None:
        view["points"] = points.points.points if points.points else None
        view["publishedPoints"] = points.published_points.points if points.published_points else None
    if (feedback := outcomes.feedback) is not None:
        view["feedback"] = feedback.feedback.text if feedback.feedback else None
        view["publishedFeedback"] = feedback.published_feedback.text if feedback.published_feedback else None
    if outcomes.rubric is not None:
        view["levels"] = [[s.quality_id, s.column_id] for s in outcomes.rubric.selected_levels]
    modified = last_change(outcomes)[0]
    view["modifiedAt"] = format_datetime(modified) if modified else None
    return view


def working_grade(view: Mapping[str, Any]) -> dict[str, Any]:
    """The working grade (points, feedback, rubric levels) of a `snapshot`, normalized for comparing two of them."""
    points = view.get("points")
    levels = sorted((str(q), str(c)) for q, c in view.get("levels") or ())
    return {
        "points": None if points is None else float(points),
        "feedback": view.get("feedback") or None,
        "levels": [list(level) for level in levels],
    }


def changed_by_someone_else(outcomes: Outcomes | None, since: datetime | None, teacher_id: str) -> bool:
    """True when anyone but this teacher modified an outcome after `since` — or at all, when the teacher's card
    showed no grade yet (`since` None): a concurrent grader's work must not be silently overwritten."""
    return any(
        outcome.last_modified_by is None or outcome.last_modified_by.user_id != teacher_id
        for outcome in ((outcomes.points, outcomes.feedback, outcomes.rubric) if outcomes else ())
        if outcome is not None and outcome.last_modified_at is not None
        if since is None or outcome.last_modified_at > since
    )
