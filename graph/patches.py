"""The grade writes Gradebot makes, as typed values that know their PATCH body (never a `published*` property).

Points go inside an educationAssignmentPointsGrade, feedback text inside an educationItemBody of type text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from graph.models import FEEDBACK_OUTCOME, POINTS_GRADE, POINTS_OUTCOME, RUBRIC_OUTCOME, RubricSelection
from graph.paths import SubmissionRef, outcome_path


@dataclass(frozen=True, slots=True)
class PointsPatch:
    """Set (or clear, with None) the working points of a submission's points outcome."""

    submission: SubmissionRef
    outcome_id: str
    points: float | None

    def __post_init__(self) -> None:
        if self.points is not None and (isinstance(self.points, bool) or not math.isfinite(self.points)):
            raise ValueError("points must be a finite number")

    @property
    def path(self) -> str:
        return outcome_path(self.submission, self.outcome_id)

    def body(self) -> dict[str, Any]:
        if self.points is None:
            return {"@odata.type": POINTS_OUTCOME, "points": None}
        return {
            "@odata.type": POINTS_OUTCOME,
            "points": {"@odata.type": POINTS_GRADE, "points": float(self.points)},
        }


@dataclass(frozen=True, slots=True)
class FeedbackPatch:
    """Set (or clear, with None) the working feedback text of a submission's feedback outcome."""

    submission: SubmissionRef
    outcome_id: str
    text: str | None

    @property
    def path(self) -> str:
        return outcome_path(self.submission, self.outcome_id)

    def body(self) -> dict[str, Any]:
        if self.text is None:
            return {"@odata.type": FEEDBACK_OUTCOME, "feedback": None}
        return {
            "@odata.type": FEEDBACK_OUTCOME,
            "feedback": {"text": {"content": self.text, "contentType": "text"}},
        }


@dataclass(frozen=True, slots=True)
class RubricPatch:
    """Select one level (column) per rubric quality in a submission's rubric outcome."""

    submission: SubmissionRef
    outcome_id: str
    selections: Sequence[RubricSelection]

    @property
    def path(self) -> str:
        return outcome_path(self.submission, self.outcome_id)

    def body(self) -> dict[str, Any]:
        return {
            "@odata.type": RUBRIC_OUTCOME,
            "rubricQualitySelectedLevels": [
                {"qualityId": selection.quality_id, "columnId": selection.column_id} for selection in self.selections
            ],
        }


OutcomePatch = PointsPatch | FeedbackPatch | RubricPatch
