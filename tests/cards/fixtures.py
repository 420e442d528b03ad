"""Graph models for card tests, parsed (`graph.models.parse`) from bodies in Graph's wire shape (our own data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.school.progress import lateness
from cards.lists import UngradedItem
from graph.models import (
    FEEDBACK_OUTCOME,
    POINTS_GRADE_TYPE,
    POINTS_OUTCOME,
    RUBRIC_OUTCOME,
    Assignment,
    EducationClass,
    Rubric,
    Submission,
    format_datetime,
    parse,
)

TZ = ZoneInfo("Europe/London")
NOW = datetime(2025, 12, 1, 10, 0, tzinfo=UTC)  # a Monday
NONCE = "n0nce-Abc123_xyz"
CLASS_ID = "0b5a3c1e-5c9d-4c7e-9f1a-2d3e4f5a6b7c"
ASSIGNMENT_ID = "7e1d2c3b-4a59-4e6f-8a7b-9c0d1e2f3a4b"
TEACHER: dict[str, str | None] = {"id": "c1a2b3c4-d5e6-47f8-9a0b-1c2d3e4f5a6b", "displayName": "Grace Hopper"}
OTHER_TEACHER: dict[str, str | None] = {"id": "d2b3c4d5-e6f7-4809-8a1b-2c3d4e5f6a7b", "displayName": "Alan Turing"}


def stamp(value: datetime) -> str:
    return format_datetime(value)


def identity(user: dict[str, str | None] | None) -> dict[str, Any]:
    return {"application": None, "device": None, "user": user or {"id": None, "displayName": None}}


def education_class(
    class_id: str = CLASS_ID, name: str = "Biology 9A", code: str = "BIO-9A", term: str = "Autumn 2025"
) -> EducationClass:
    return parse(
        EducationClass,
        {
            "id": class_id,
            "displayName": name,
            "classCode": code,
            "externalId": "SIS-1",
            "term": {"displayName": term, "startDate": "2025-09-01", "endDate": "2025-12-19"},
        },
    )


def assignment(
    assignment_id: str = ASSIGNMENT_ID,
    name: str = "Essay 1: Cells",
    *,
    class_id: str = CLASS_ID,
    max_points: float | None = 20,
    status: str = "assigned",
    due: datetime | None = datetime(2025, 11, 28, 23, 59, tzinfo=UTC),
    close: datetime | None = None,
    assign_at: datetime | None = None,
) -> Assignment:
    grading = {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": max_points} if max_points is not None else None
    return parse(
        Assignment,
        {
            "id": assignment_id,
            "classId": class_id,
            "displayName": name,
            "status": status,
            "grading": grading,
            "dueDateTime": stamp(due) if due else None,
            "closeDateTime": stamp(close) if close else None,
            "assignDateTime": stamp(assign_at) if assign_at else None,
            "allowLateSubmissions": True,
            "webUrl": f"https://teams.microsoft.com/l/entity/66aeee93/classroom?assignment={assignment_id}",
            "instructions": {"content": "Write 500 words.", "contentType": "text"},
        },
    )


def outcomes(
    *,
    points: float | None = None,
    published_points: float | None = None,
    feedback: str | None = None,
    published_feedback: str | None = None,
    levels: dict[str, str] | None = None,
    modified: datetime | None = None,
    modified_by: dict[str, str | None] | None = None,
) -> list[dict[str, Any]]:
    """The three grade outcomes of a submission in Graph's shape (null values when not graded)."""
    when = stamp(modified) if modified else None
    by = identity(modified_by) if modified_by else None

    def grade(value: float | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {
            "@odata.type": "#microsoft.graph.educationAssignmentPointsGrade",
            "points": value,
            "gradedDateTime": when,
            "gradedBy": by,
        }

    def text(value: str | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {"text": {"content": value, "contentType": "text"}, "feedbackDateTime": when, "feedbackBy": by}

    result: list[dict[str, Any]] = [
        {
            "@odata.type": FEEDBACK_OUTCOME,
            "id": "f0000000-0000-4000-8000-000000000001",
            "lastModifiedDateTime": when if feedback or published_feedback else None,
            "lastModifiedBy": by if feedback or published_feedback else None,
            "feedback": text(feedback),
            "publishedFeedback": text(published_feedback),
        },
        {
            "@odata.type": POINTS_OUTCOME,
            "id": "f0000000-0000-4000-8000-000000000002",
            "lastModifiedDateTime": when if points is not None else None,
            "lastModifiedBy": by if points is not None else None,
            "points": grade(points),
            "publishedPoints": grade(published_points),
        },
    ]
    if levels is not None:
        result.append(
            {
                "@odata.type": RUBRIC_OUTCOME,
                "id": "f0000000-0000-4000-8000-000000000003",
                "lastModifiedDateTime": when if levels else None,
                "lastModifiedBy": by if levels else None,
                "rubricQualityFeedback": [],
                "rubricQualitySelectedLevels": [
                    {"qualityId": quality, "columnId": column} for quality, column in levels.items()
                ],
                "publishedRubricQualitySelectedLevels": [],
            }
        )
    return result


def submission(
    submission_id: str = "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    *,
    assignment_id: str = ASSIGNMENT_ID,
    student_id: str = "51cf5a99-d234-4e43-96de-cd65df14bfa1",
    status: str = "submitted",
    submitted: datetime | None = datetime(2025, 11, 30, 9, 15, tzinfo=UTC),
    outcome_items: list[dict[str, Any]] | None = None,
    resources: list[dict[str, Any]] | None = None,
) -> Submission:
    return parse(
        Submission,
        {
            "id": submission_id,
            "assignmentId": assignment_id,
            "status": status,
            "recipient": {
                "@odata.type": "#microsoft.graph.educationSubmissionIndividualRecipient",
                "userId": student_id,
            },
            "submittedDateTime": stamp(submitted) if submitted else None,
            "submittedBy": identity({"id": student_id, "displayName": None}),
            "webUrl": f"https://teams.microsoft.com/l/entity/66aeee93/classroom?submission={submission_id}",
            "outcomes": outcome_items if outcome_items is not None else outcomes(),
            "submittedResources": resources if resources is not None else [],
        },
    )


def file_resource(name: str, url: str) -> dict[str, Any]:
    return {
        "assignmentResourceUrl": None,
        "id": "r-" + name.replace(" ", "-").replace(".", "-"),
        "resource": {
            "@odata.type": "#microsoft.graph.educationWordResource",
            "displayName": name,
            "fileUrl": url,
            "createdDateTime": "2025-11-30T09:00:00Z",
        },
    }


def link_resource(name: str, link: str) -> dict[str, Any]:
    return {"resource": {"@odata.type": "#microsoft.graph.educationLinkResource", "displayName": name, "link": link}}


QUALITY_IDS = ("9f1e2d3c-0000-4000-8000-0000000000a1", "9f1e2d3c-0000-4000-8000-0000000000a2")
LEVEL_IDS = ("1e2d3c4b-0000-4000-8000-0000000000b1", "1e2d3c4b-0000-4000-8000-0000000000b2")


def rubric() -> Rubric:
    return parse(
        Rubric,
        {
            "id": "7a8b9c0d-0000-4000-8000-0000000000c1",
            "displayName": "Essay rubric",
            "levels": [
                {
                    "levelId": LEVEL_IDS[0],
                    "displayName": "Good",
                    "grading": {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": 2},
                },
                {
                    "levelId": LEVEL_IDS[1],
                    "displayName": "Poor",
                    "grading": {"@odata.type": POINTS_GRADE_TYPE, "maxPoints": 1},
                },
            ],
            "qualities": [
                {
                    "qualityId": QUALITY_IDS[0],
                    "displayName": "Argument",
                    "weight": 50.0,
                    "criteria": [{"description": {"content": "Clear", "contentType": "text"}}],
                },
                {
                    "qualityId": QUALITY_IDS[1],
                    "displayName": "Spelling",
                    "weight": 50.0,
                    "criteria": [{"description": {"content": "Few errors", "contentType": "text"}}],
                },
            ],
        },
    )


def ungraded_items(count: int, *, name_length: int = 12, classes: int = 1, assignments: int = 1) -> list[UngradedItem]:
    """`count` turned-in, ungraded submissions over `classes` classes of `assignments` assignments each, oldest
    first, every third one late."""
    items: list[UngradedItem] = []
    due = datetime(2025, 11, 20, 23, 59, tzinfo=UTC)
    for index in range(count):
        class_index = index % classes
        work_index = class_index * assignments + (index // classes) % assignments
        klass = education_class(f"c1a55000-0000-4000-8000-{class_index:012d}", f"Class {class_index}")
        work = assignment(
            f"a551900-0000-4000-8000-{work_index:012d}", f"Essay {work_index}", class_id=klass.id, due=due
        )
        turned_in = (
            due - timedelta(days=2) + timedelta(hours=index) if index % 3 else due + timedelta(days=2, hours=index)
        )
        sub = submission(f"50b00000-0000-4000-8000-{index:012d}", assignment_id=work.id, submitted=turned_in)
        name = f"Student{index:04d} " + "Longname" * (name_length // 8)
        items.append(UngradedItem(klass, work, sub, name, lateness(sub, work)))
    return sorted(items, key=lambda item: item.turned_in_at or NOW)
