"""Typed views of Microsoft Graph education resources, and the only place their JSON is parsed.

Every model is a frozen dataclass built by a `from_json` classmethod; nothing else in Gradebot reads Graph dicts.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
FEEDBACK_OUTCOME = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC_OUTCOME = "#microsoft.graph.educationRubricOutcome"
FEEDBACK_RESOURCE_OUTCOME = "#microsoft.graph.educationFeedbackResourceOutcome"
POINTS_GRADE = "#microsoft.graph.educationAssignmentPointsGrade"
POINTS_GRADE_TYPE = "#microsoft.graph.educationAssignmentPointsGradeType"

Json = Mapping[str, Any]


class _EvolvableEnum(enum.StrEnum):
    """Graph's evolvable enums: a value this version of Gradebot does not know reads as `unknownFutureValue`."""

    @classmethod
    def parse(cls, value: object) -> Self:
        try:
            return cls(str(value))
        except ValueError:
            return cls("unknownFutureValue")


class SubmissionStatus(_EvolvableEnum):
    """educationSubmissionStatus; `reassigned` and `excused` need `Prefer: include-unknown-enum-members`."""

    WORKING = "working"
    SUBMITTED = "submitted"
    RELEASED = "released"
    RETURNED = "returned"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
    REASSIGNED = "reassigned"
    EXCUSED = "excused"


class AssignmentStatus(_EvolvableEnum):
    """educationAssignmentStatus (plus `scheduled`, which the docs list and the CSDL lacks)."""

    DRAFT = "draft"
    PUBLISHED = "published"
    ASSIGNED = "assigned"
    SCHEDULED = "scheduled"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
    INACTIVE = "inactive"


class UserRole(_EvolvableEnum):
    """educationUserRole."""

    STUDENT = "student"
    TEACHER = "teacher"
    FACULTY = "faculty"
    NONE = "none"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


def parse_datetime(value: object) -> datetime | None:
    """Graph's ISO 8601 timestamps (7 fractional digits, `Z`) as aware datetimes."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    # Python accepts at most 6 fractional digits; Graph sends up to 7.
    if "." in text:
        head, _, rest = text.partition(".")
        digits = rest[: len(rest) - len(rest.lstrip("0123456789"))]
        zone = rest[len(digits) :]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.fromisoformat(text)


def format_datetime(value: datetime) -> str:
    """An aware datetime in Graph's wire format (UTC, `Z`)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _float(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _list(value: object) -> Sequence[Json]:
    if not isinstance(value, list):
        return ()
    return [item for item in value if isinstance(item, Mapping)]


def _map(value: object) -> Json:
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True, slots=True)
class Actor:
    """The user (or application) half of an identitySet; both ids are None in the all-null form."""

    user_id: str | None = None
    user_name: str | None = None
    application_id: str | None = None

    @classmethod
    def from_json(cls, data: object) -> Actor | None:
        body = _map(data)
        user = _map(body.get("user"))
        app = _map(body.get("application"))
        actor = cls(_str(user.get("id")), _str(user.get("displayName")), _str(app.get("id")))
        return actor if actor.user_id or actor.application_id else None


@dataclass(frozen=True, slots=True)
class EducationUser:
    id: str
    display_name: str
    user_principal_name: str | None
    primary_role: UserRole
    mail: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> EducationUser:
        return cls(
            id=str(data["id"]),
            display_name=_str(data.get("displayName")) or "",
            user_principal_name=_str(data.get("userPrincipalName")),
            primary_role=UserRole.parse(data.get("primaryRole")),
            mail=_str(data.get("mail")),
        )


@dataclass(frozen=True, slots=True)
class EducationClass:
    id: str
    display_name: str
    description: str | None = None
    class_code: str | None = None
    external_id: str | None = None
    term_name: str | None = None

    @classmethod
    def from_json(cls, data: Json) -> EducationClass:
        return cls(
            id=str(data["id"]),
            display_name=_str(data.get("displayName")) or "",
            description=_str(data.get("description")),
            class_code=_str(data.get("classCode")),
            external_id=_str(data.get("externalId")),
            term_name=_str(_map(data.get("term")).get("displayName")),
        )


@dataclass(frozen=True, slots=True)
class Assignment:
    id: str
    class_id: str
    display_name: str
    status: AssignmentStatus
    max_points: float | None
    """None for a credit (ungraded) assignment."""
    due: datetime | None = None
    close: datetime | None = None
    assign_at: datetime | None = None
    assigned_at: datetime | None = None
    created_at: datetime | None = None
    last_modified_at: datetime | None = None
    allow_late_submissions: bool = True
    web_url: str | None = None
    instructions: str | None = None

    @property
    def is_points(self) -> bool:
        return self.max_points is not None

    @classmethod
    def from_json(cls, data: Json) -> Assignment:
        grading = _map(data.get("grading"))
        max_points = _float(grading.get("maxPoints")) if grading.get("@odata.type") == POINTS_GRADE_TYPE else None
        allow_late = data.get("allowLateSubmissions")
        return cls(
            id=str(data["id"]),
            class_id=_str(data.get("classId")) or "",
            display_name=_str(data.get("displayName")) or "",
            status=AssignmentStatus.parse(data.get("status")),
            max_points=max_points,
            due=parse_datetime(data.get("dueDateTime")),
            close=parse_datetime(data.get("closeDateTime")),
            assign_at=parse_datetime(data.get("assignDateTime")),
            assigned_at=parse_datetime(data.get("assignedDateTime")),
            created_at=parse_datetime(data.get("createdDateTime")),
            last_modified_at=parse_datetime(data.get("lastModifiedDateTime")),
            allow_late_submissions=allow_late if isinstance(allow_late, bool) else True,
            web_url=_str(data.get("webUrl")),
            instructions=_str(_map(data.get("instructions")).get("content")),
        )


@dataclass(frozen=True, slots=True)
class RubricLevel:
    level_id: str
    display_name: str
    points: float | None = None

    @classmethod
    def from_json(cls, data: Json) -> RubricLevel:
        return cls(
            level_id=str(data.get("levelId") or ""),
            display_name=_str(data.get("displayName")) or "",
            points=_float(_map(data.get("grading")).get("maxPoints")),
        )


@dataclass(frozen=True, slots=True)
class RubricQuality:
    quality_id: str
    display_name: str
    description: str | None = None
    weight: float | None = None
    criteria: tuple[str, ...] = ()
    """One description per level, in level order."""

    @classmethod
    def from_json(cls, data: Json) -> RubricQuality:
        criteria = tuple(
            _str(_map(item.get("description")).get("content")) or "" for item in _list(data.get("criteria"))
        )
        return cls(
            quality_id=str(data.get("qualityId") or ""),
            display_name=_str(data.get("displayName")) or "",
            description=_str(_map(data.get("description")).get("content")),
            weight=_float(data.get("weight")),
            criteria=criteria,
        )


@dataclass(frozen=True, slots=True)
class Rubric:
    id: str
    display_name: str
    levels: tuple[RubricLevel, ...]
    qualities: tuple[RubricQuality, ...]

    @classmethod
    def from_json(cls, data: Json) -> Rubric:
        return cls(
            id=str(data.get("id") or ""),
            display_name=_str(data.get("displayName")) or "",
            levels=tuple(RubricLevel.from_json(item) for item in _list(data.get("levels"))),
            qualities=tuple(RubricQuality.from_json(item) for item in _list(data.get("qualities"))),
        )


def expanded_rubric(assignment: Json) -> Rubric | None:
    """The rubric inside an assignment read with `$expand=rubric`; None when the assignment has none."""
    data = assignment.get("rubric")
    return Rubric.from_json(data) if isinstance(data, Mapping) else None


@dataclass(frozen=True, slots=True)
class PointsGrade:
    points: float
    graded_at: datetime | None = None
    graded_by: Actor | None = None

    @classmethod
    def from_json(cls, data: object) -> PointsGrade | None:
        body = _map(data)
        points = _float(body.get("points"))
        if points is None:
            return None
        return cls(points, parse_datetime(body.get("gradedDateTime")), Actor.from_json(body.get("gradedBy")))


@dataclass(frozen=True, slots=True)
class Feedback:
    text: str
    at: datetime | None = None
    by: Actor | None = None

    @classmethod
    def from_json(cls, data: object) -> Feedback | None:
        body = _map(data)
        text = _str(_map(body.get("text")).get("content"))
        if text is None:
            return None
        return cls(text, parse_datetime(body.get("feedbackDateTime")), Actor.from_json(body.get("feedbackBy")))


@dataclass(frozen=True, slots=True)
class PointsOutcome:
    id: str
    points: PointsGrade | None
    published_points: PointsGrade | None
    last_modified_at: datetime | None = None
    last_modified_by: Actor | None = None


@dataclass(frozen=True, slots=True)
class FeedbackOutcome:
    id: str
    feedback: Feedback | None
    published_feedback: Feedback | None
    last_modified_at: datetime | None = None
    last_modified_by: Actor | None = None


@dataclass(frozen=True, slots=True)
class RubricSelection:
    quality_id: str
    column_id: str


@dataclass(frozen=True, slots=True)
class RubricOutcome:
    id: str
    selected_levels: tuple[RubricSelection, ...]
    published_selected_levels: tuple[RubricSelection, ...]
    last_modified_at: datetime | None = None
    last_modified_by: Actor | None = None


def _selections(value: object) -> tuple[RubricSelection, ...]:
    return tuple(
        RubricSelection(str(item.get("qualityId") or ""), str(item.get("columnId") or "")) for item in _list(value)
    )


GradeOutcome = PointsOutcome | FeedbackOutcome | RubricOutcome
"""The outcomes a teacher writes: points, feedback and rubric levels."""


def outcome_from_json(item: Json) -> GradeOutcome | None:
    """One educationOutcome picked by `@odata.type`; None for feedback resources and unknown kinds."""
    kind = item.get("@odata.type")
    outcome_id = str(item.get("id") or "")
    modified_at = parse_datetime(item.get("lastModifiedDateTime"))
    modified_by = Actor.from_json(item.get("lastModifiedBy"))
    if kind == POINTS_OUTCOME:
        return PointsOutcome(
            outcome_id,
            PointsGrade.from_json(item.get("points")),
            PointsGrade.from_json(item.get("publishedPoints")),
            modified_at,
            modified_by,
        )
    if kind == FEEDBACK_OUTCOME:
        return FeedbackOutcome(
            outcome_id,
            Feedback.from_json(item.get("feedback")),
            Feedback.from_json(item.get("publishedFeedback")),
            modified_at,
            modified_by,
        )
    if kind == RUBRIC_OUTCOME:
        return RubricOutcome(
            outcome_id,
            _selections(item.get("rubricQualitySelectedLevels")),
            _selections(item.get("publishedRubricQualitySelectedLevels")),
            modified_at,
            modified_by,
        )
    return None


@dataclass(frozen=True, slots=True)
class Outcomes:
    """A submission's outcomes, picked by `@odata.type` (never by id)."""

    points: PointsOutcome | None = None
    feedback: FeedbackOutcome | None = None
    rubric: RubricOutcome | None = None
    feedback_resource_ids: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, items: Sequence[Json]) -> Outcomes:
        points: PointsOutcome | None = None
        feedback: FeedbackOutcome | None = None
        rubric: RubricOutcome | None = None
        resources: list[str] = []
        for item in items:
            outcome = outcome_from_json(item)
            if isinstance(outcome, PointsOutcome):
                points = outcome
            elif isinstance(outcome, FeedbackOutcome):
                feedback = outcome
            elif isinstance(outcome, RubricOutcome):
                rubric = outcome
            elif item.get("@odata.type") == FEEDBACK_RESOURCE_OUTCOME:
                resources.append(str(item.get("id") or ""))
        return cls(points, feedback, rubric, tuple(resources))


@dataclass(frozen=True, slots=True)
class Resource:
    """A file or link a student turned in (educationSubmissionResource)."""

    display_name: str
    kind: str
    url: str | None

    @classmethod
    def from_json(cls, data: Json) -> Resource:
        resource = _map(data.get("resource"))
        url = (
            _str(resource.get("fileUrl"))
            or _str(resource.get("link"))
            or _str(resource.get("webUrl"))
            or _str(resource.get("url"))
        )
        kind = (_str(resource.get("@odata.type")) or "").removeprefix("#microsoft.graph.education")
        return cls(_str(resource.get("displayName")) or "", kind.removesuffix("Resource") or "resource", url)


@dataclass(frozen=True, slots=True)
class Submission:
    id: str
    assignment_id: str
    status: SubmissionStatus
    student_id: str | None
    submitted_at: datetime | None = None
    submitted_by: Actor | None = None
    returned_at: datetime | None = None
    reassigned_at: datetime | None = None
    excused_at: datetime | None = None
    unsubmitted_at: datetime | None = None
    last_modified_at: datetime | None = None
    web_url: str | None = None
    outcomes: Outcomes | None = None
    """None unless requested with `$expand=outcomes`."""
    submitted_resources: tuple[Resource, ...] | None = None
    """None unless requested with `$expand=submittedResources`."""

    @classmethod
    def from_json(cls, data: Json) -> Submission:
        recipient = _map(data.get("recipient"))
        outcomes = data.get("outcomes")
        resources = data.get("submittedResources")
        return cls(
            id=str(data["id"]),
            assignment_id=_str(data.get("assignmentId")) or "",
            status=SubmissionStatus.parse(data.get("status")),
            student_id=_str(recipient.get("userId")),
            submitted_at=parse_datetime(data.get("submittedDateTime")),
            submitted_by=Actor.from_json(data.get("submittedBy")),
            returned_at=parse_datetime(data.get("returnedDateTime")),
            reassigned_at=parse_datetime(data.get("reassignedDateTime")),
            excused_at=parse_datetime(data.get("excusedDateTime")),
            unsubmitted_at=parse_datetime(data.get("unsubmittedDateTime")),
            last_modified_at=parse_datetime(data.get("lastModifiedDateTime")),
            web_url=_str(data.get("webUrl")),
            outcomes=Outcomes.from_json(_list(outcomes)) if isinstance(outcomes, list) else None,
            submitted_resources=(
                tuple(Resource.from_json(item) for item in _list(resources)) if isinstance(resources, list) else None
            ),
        )


@dataclass(frozen=True, slots=True)
class CollectionPage:
    """One page of an OData collection: its raw items and the absolute `@odata.nextLink` when more pages follow."""

    items: tuple[Json, ...]
    next_link: str | None

    @classmethod
    def from_json(cls, data: Json) -> CollectionPage:
        return cls(tuple(_list(data.get("value"))), _str(data.get("@odata.nextLink")) or None)


# `$select` lists: exactly the properties the models above read, so Graph sends nothing we would drop.
USER_FIELDS = ("id", "displayName", "userPrincipalName", "primaryRole", "mail")
CLASS_FIELDS = ("id", "displayName", "description", "classCode", "externalId", "term")
ASSIGNMENT_FIELDS = (
    "id",
    "classId",
    "displayName",
    "status",
    "grading",
    "dueDateTime",
    "closeDateTime",
    "assignDateTime",
    "assignedDateTime",
    "createdDateTime",
    "lastModifiedDateTime",
    "allowLateSubmissions",
    "webUrl",
    "instructions",
)
SUBMISSION_FIELDS = (
    "id",
    "assignmentId",
    "status",
    "recipient",
    "submittedDateTime",
    "submittedBy",
    "returnedDateTime",
    "reassignedDateTime",
    "excusedDateTime",
    "unsubmittedDateTime",
    "lastModifiedDateTime",
    "webUrl",
)
