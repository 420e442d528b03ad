"""What a submission's outcomes say, worded for cards: working and returned points, feedback and rubric levels."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cards.actions import format_points
from graph.models import Outcomes, RubricSelection


@dataclass(frozen=True, slots=True)
class GradeValues:
    """One side of a grade: the working values (what the teacher set) or the returned ones (what the student saw)."""

    points: float | None
    feedback: str | None
    levels: tuple[RubricSelection, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.points is None and not self.feedback and not self.levels


def working_values(outcomes: Outcomes | None) -> GradeValues:
    """The teacher's current (draft) grade: `points`, `feedback`, `rubricQualitySelectedLevels`."""
    if outcomes is None:
        return GradeValues(None, None)
    points = outcomes.points.points.points if outcomes.points and outcomes.points.points else None
    feedback = outcomes.feedback.feedback.text if outcomes.feedback and outcomes.feedback.feedback else None
    levels = outcomes.rubric.selected_levels if outcomes.rubric else ()
    return GradeValues(points, feedback or None, levels)


def returned_values(outcomes: Outcomes | None) -> GradeValues:
    """What the student was last shown: the `published*` copies made by Return."""
    if outcomes is None:
        return GradeValues(None, None)
    points = outcomes.points.published_points.points if outcomes.points and outcomes.points.published_points else None
    feedback = (
        outcomes.feedback.published_feedback.text
        if outcomes.feedback and outcomes.feedback.published_feedback
        else None
    )
    levels = outcomes.rubric.published_selected_levels if outcomes.rubric else ()
    return GradeValues(points, feedback or None, levels)


def outcomes_modified_at(outcomes: Outcomes | None) -> datetime | None:
    """The latest lastModifiedDateTime of the points, feedback and rubric outcomes (the grade action's
    `knownModified`); the service compares it with the same value read fresh from Graph to detect conflicts."""
    if outcomes is None:
        return None
    stamps = [
        outcome.last_modified_at
        for outcome in (outcomes.points, outcomes.feedback, outcomes.rubric)
        if outcome is not None and outcome.last_modified_at is not None
    ]
    return max(stamps) if stamps else None


def last_modified_by(outcomes: Outcomes | None) -> str | None:
    """Display name of whoever changed the grade last (None when unknown)."""
    if outcomes is None:
        return None
    latest = None
    for outcome in (outcomes.points, outcomes.feedback, outcomes.rubric):
        if outcome is None or outcome.last_modified_at is None:
            continue
        if latest is None or outcome.last_modified_at > latest[0]:
            latest = (outcome.last_modified_at, outcome.last_modified_by)
    return latest[1].user_name if latest and latest[1] else None


def score_text(points: float | None, max_points: float | None) -> str:
    """ "18/20", "18 points" (no maximum) or "no points"."""
    if points is None:
        return "no points"
    if max_points is None:
        return f"{format_points(points)} points"
    return f"{format_points(points)}/{format_points(max_points)}"
