"""Typed views of Microsoft Graph education resources: frozen pydantic dataclasses read under Graph's camelCase names
(unknown properties ignored, unknown enum values read as `unknownFutureValue`); nothing else in Gradebot reads Graph
dicts. Whole pages are validated at once (`parse(Page[Submission], body)`), so the loop runs in pydantic-core."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Self, TypeVar, cast

from pydantic import (
    AfterValidator,
    AliasChoices,
    AliasPath,
    AwareDatetime,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.dataclasses import dataclass, is_pydantic_dataclass

POINTS_OUTCOME = "#microsoft.graph.educationPointsOutcome"
FEEDBACK_OUTCOME = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC_OUTCOME = "#microsoft.graph.educationRubricOutcome"
POINTS_GRADE = "#microsoft.graph.educationAssignmentPointsGrade"
POINTS_GRADE_TYPE = "#microsoft.graph.educationAssignmentPointsGradeType"

T = TypeVar("T")
_CONFIG = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore", hide_input_in_errors=True)
"""Every model: read from Graph's camelCase names (unless a `validation_alias` says otherwise), unknown ones ignored.
Frozen pydantic dataclasses with slots: pydantic-core builds them about three times faster than BaseModel instances,
and code may still write `RubricSelection(quality, column)`."""


class _EvolvableEnum(enum.StrEnum):
    """Graph's evolvable enums: a value this version of Gradebot does not know reads as `unknownFutureValue`."""

    @classmethod
    def _missing_(cls, value: object) -> Self:
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


def parse_datetime(value: object) -> datetime | None:
    """Graph's ISO 8601 timestamps (up to 7 fractional digits, `Z`) as aware datetimes; None for no timestamp."""
    return parse(AwareDatetime, value) if isinstance(value, str) and value else None


def format_datetime(value: datetime) -> str:
    """An aware datetime in Graph's wire format (UTC, `Z`)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _at(value: object, *path: str) -> object:
    """The value at `path` inside nested JSON objects, or None where one is missing."""
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _none_when(empty: Callable[[dict[str, Any]], object]) -> BeforeValidator:
    """Read a JSON object for which `empty(object)` holds as None: Graph's empty forms of an identity, grade or
    feedback. Anything else (null, or a model built in code) goes on to pydantic as it is."""
    return BeforeValidator(lambda value: None if isinstance(value, dict) and empty(value) else value)


Text = Annotated[str, BeforeValidator(lambda value: "" if value is None else value)]
Timestamp = AwareDatetime | None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Actor:
    """The user half of an identitySet (an application's has no user: both None)."""

    user_id: str | None = Field(default=None, validation_alias=AliasPath("user", "id"))
    user_name: str | None = Field(default=None, validation_alias=AliasPath("user", "displayName"))


# identitySet's all-null form (`{"user": {"id": null, …}, "application": null}`) is nobody.
Identity = Annotated[Actor | None, _none_when(lambda v: not (_at(v, "user", "id") or _at(v, "application", "id")))]


@dataclass(frozen=True, slots=True, config=_CONFIG)
class EducationUser:
    id: str
    display_name: Text = ""


@dataclass(frozen=True, slots=True, config=_CONFIG)
class EducationClass:
    id: str
    display_name: Text = ""
    class_code: str | None = None
    term_name: str | None = Field(default=None, validation_alias=AliasPath("term", "displayName"))


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Assignment:
    id: str
    display_name: Text = ""
    status: AssignmentStatus = AssignmentStatus.UNKNOWN_FUTURE_VALUE
    max_points: float | None = Field(default=None, validation_alias=AliasPath("grading", "maxPoints"))
    """None for a credit (ungraded) assignment: Graph sends `grading: null`."""
    due: Timestamp = Field(default=None, validation_alias="dueDateTime")
    close: Timestamp = Field(default=None, validation_alias="closeDateTime")
    assign_at: Timestamp = Field(default=None, validation_alias="assignDateTime")
    web_url: str | None = None

    @property
    def is_points(self) -> bool:
        return self.max_points is not None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class RubricLevel:
    level_id: str
    display_name: Text = ""
    points: float | None = Field(default=None, validation_alias=AliasPath("grading", "maxPoints"))


@dataclass(frozen=True, slots=True, config=_CONFIG)
class RubricQuality:
    quality_id: str
    display_name: Text = ""
    weight: float | None = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Rubric:
    id: str
    display_name: Text = ""
    levels: tuple[RubricLevel, ...] = ()
    qualities: tuple[RubricQuality, ...] = ()


@dataclass(frozen=True, slots=True, config=_CONFIG)
class AssignmentRubric:
    """An assignment read with `$expand=rubric`: `rubric` is None when it has none."""

    rubric: Rubric | None = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class PointsGrade:
    points: float
    graded_at: Timestamp = Field(default=None, validation_alias="gradedDateTime")


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Feedback:
    text: str = Field(validation_alias=AliasPath("text", "content"))
    at: Timestamp = Field(default=None, validation_alias="feedbackDateTime")


@dataclass(frozen=True, slots=True, config=_CONFIG)
class RubricSelection:
    quality_id: str
    column_id: Text
    """The level's id; "" where Graph lists a quality with no level selected (`columnId: null`)."""


@dataclass(frozen=True, slots=True, config=_CONFIG)
class _Outcome:
    id: str
    last_modified_at: Timestamp = Field(default=None, validation_alias="lastModifiedDateTime")
    last_modified_by: Identity = None


# A points grade with null `points` is no grade; a feedback with null `text.content` is no feedback.
Grade = Annotated[PointsGrade | None, _none_when(lambda v: v.get("points") is None)]
Written = Annotated[Feedback | None, _none_when(lambda v: _at(v, "text", "content") is None)]
# Graph lists every quality of an ungraded rubric with `columnId: null`: only chosen levels are a grade.
Levels = Annotated[tuple[RubricSelection, ...], AfterValidator(lambda levels: tuple(x for x in levels if x.column_id))]


@dataclass(frozen=True, slots=True, config=_CONFIG)
class PointsOutcome(_Outcome):
    points: Grade = None
    published_points: Grade = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class FeedbackOutcome(_Outcome):
    feedback: Written = None
    published_feedback: Written = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class RubricOutcome(_Outcome):
    selected_levels: Levels = Field(default=(), validation_alias="rubricQualitySelectedLevels")
    published_selected_levels: Levels = Field(default=(), validation_alias="publishedRubricQualitySelectedLevels")


GradeOutcome = PointsOutcome | FeedbackOutcome | RubricOutcome
"""The outcomes a teacher writes: points, feedback and rubric levels (published* are Graph's copies, read only)."""

_OUTCOME_KINDS = {POINTS_OUTCOME: "points", FEEDBACK_OUTCOME: "feedback", RUBRIC_OUTCOME: "rubric"}


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Outcomes:
    """A submission's outcomes, picked by `@odata.type` (never by id) from Graph's list of educationOutcomes."""

    points: PointsOutcome | None = None
    feedback: FeedbackOutcome | None = None
    rubric: RubricOutcome | None = None

    @model_validator(mode="before")
    @classmethod
    def _by_type(cls, data: object) -> object:
        if not isinstance(data, list):
            return data
        by_type = {str(item.get("@odata.type")): item for item in data if isinstance(item, dict)}
        return {name: by_type[kind] for kind, name in _OUTCOME_KINDS.items() if kind in by_type}


_RESOURCE_URLS = AliasChoices(*(AliasPath("resource", key) for key in ("fileUrl", "link", "webUrl", "url")))


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Resource:
    """A file or link a student turned in (educationSubmissionResource)."""

    display_name: Text = Field(default="", validation_alias=AliasPath("resource", "displayName"))
    url: str | None = Field(default=None, validation_alias=_RESOURCE_URLS)


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Submission:
    id: str
    status: SubmissionStatus = SubmissionStatus.UNKNOWN_FUTURE_VALUE
    student_id: str | None = Field(default=None, validation_alias=AliasPath("recipient", "userId"))
    submitted_at: Timestamp = Field(default=None, validation_alias="submittedDateTime")
    returned_at: Timestamp = Field(default=None, validation_alias="returnedDateTime")
    reassigned_at: Timestamp = Field(default=None, validation_alias="reassignedDateTime")
    excused_at: Timestamp = Field(default=None, validation_alias="excusedDateTime")
    web_url: str | None = None
    outcomes: Outcomes | None = None
    """None unless requested with `$expand=outcomes`."""
    submitted_resources: tuple[Resource, ...] | None = None
    """None unless requested with `$expand=submittedResources`."""


@dataclass(frozen=True, slots=True, config=_CONFIG)
class RecentSubmission(Submission):
    """A submission from a class's getRecentlyModifiedSubmissions, which spans its assignments: it names its own."""

    assignment_id: str = ""
    modified_at: Timestamp = Field(default=None, validation_alias="lastModifiedDateTime")


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Page(Generic[T]):
    """One page of an OData collection: its items and the absolute `@odata.nextLink` when more pages follow."""

    value: tuple[T, ...] = ()
    next_link: str | None = Field(default=None, validation_alias="@odata.nextLink")


EXPANDED = ("outcomes", "submittedResources")
"""A submission's properties read through `$expand`: its outcomes and the work the student turned in."""


@functools.cache
def select(model: type[object]) -> tuple[str, ...]:
    """The `$select` list of a model: the Graph properties it reads (the first key of each alias path) in field order,
    but those read through `$expand`, so Graph sends nothing we would drop."""
    assert is_pydantic_dataclass(model)
    aliases = [info.validation_alias or info.alias for info in model.__pydantic_fields__.values()]
    firsts = [alias.choices[0] if isinstance(alias, AliasChoices) else alias for alias in aliases]
    wires = [first.path[0] if isinstance(first, AliasPath) else first for first in firsts]
    return tuple(dict.fromkeys(wire for wire in wires if isinstance(wire, str) and wire not in EXPANDED))


_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def parse(kind: type[T], data: object) -> T:
    """Graph JSON as `kind` (e.g. `Page[Submission]`), validated in one pass by a cached TypeAdapter; pydantic's
    ValidationError when it does not fit (the client turns that into a GraphError)."""
    adapter = _ADAPTERS.get(kind) or _ADAPTERS.setdefault(kind, TypeAdapter(kind))
    return cast(T, adapter.validate_python(data))
