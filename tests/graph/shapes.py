"""Graph education JSON in the documented shapes, built per test (our own fixtures, not copies of the docs)."""

from __future__ import annotations

from typing import Any

from graph.models import FEEDBACK_OUTCOME, POINTS_GRADE, POINTS_GRADE_TYPE, POINTS_OUTCOME, RUBRIC_OUTCOME

NOBODY = {"application": None, "device": None, "user": {"id": None, "displayName": None}}


def by(user_id: str) -> dict[str, Any]:
    return {"application": None, "device": None, "user": {"id": user_id, "displayName": None}}


def points_outcome(
    outcome_id: str = "po-1", points: float | None = None, published: float | None = None
) -> dict[str, Any]:
    def grade(value: float | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {
            "@odata.type": POINTS_GRADE,
            "points": value,
            "gradedDateTime": "2026-03-02T10:00:00Z",
            "gradedBy": by("t"),
        }

    return {
        "@odata.type": POINTS_OUTCOME,
        "id": outcome_id,
        "lastModifiedDateTime": None,
        "lastModifiedBy": None,
        "points": grade(points),
        "publishedPoints": grade(published),
    }


def feedback_outcome(outcome_id: str = "fo-1", text: str | None = None) -> dict[str, Any]:
    feedback = None
    if text is not None:
        feedback = {"text": {"content": text, "contentType": "text"}, "feedbackDateTime": "2026-03-02T10:00:00Z"}
    return {
        "@odata.type": FEEDBACK_OUTCOME,
        "id": outcome_id,
        "lastModifiedDateTime": None,
        "lastModifiedBy": None,
        "feedback": feedback,
        "publishedFeedback": None,
    }


def rubric_outcome(outcome_id: str = "ro-1", levels: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    selected = [{"qualityId": q, "columnId": c} for q, c in levels or []]
    return {
        "@odata.type": RUBRIC_OUTCOME,
        "id": outcome_id,
        "rubricQualitySelectedLevels": selected,
        "publishedRubricQualitySelectedLevels": [],
    }


def submission(
    submission_id: str, status: str = "submitted", student: str = "s-1", outcomes: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.educationSubmission",
        "id": submission_id,
        "assignmentId": "a-1",
        "status": status,
        "submittedDateTime": "2026-03-01T09:00:00Z" if status == "submitted" else None,
        "recipient": {"@odata.type": "#microsoft.graph.educationSubmissionIndividualRecipient", "userId": student},
        "submittedBy": by(student),
        "returnedBy": NOBODY,
    }
    if outcomes is not None:
        body["outcomes"] = outcomes
    return body


def assignment(assignment_id: str, status: str = "assigned", max_points: float | None = 100.0) -> dict[str, Any]:
    grading = None if max_points is None else {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": max_points}
    return {
        "id": assignment_id,
        "classId": "c-1",
        "displayName": f"Assignment {assignment_id}",
        "status": status,
        "grading": grading,
        "dueDateTime": "2026-03-01T23:59:00Z",
        "allowLateSubmissions": True,
    }


def collection(items: list[dict[str, Any]], next_link: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"@odata.context": "https://graph.test/$metadata#collection", "value": items}
    if next_link is not None:
        page["@odata.nextLink"] = next_link
    return page
