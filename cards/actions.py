"""Typed Action.Execute payloads: one frozen dataclass per verb, packed into card `data` and re-validated on return.

Card data comes back from the client and is attacker-controlled, so `parse` trusts nothing: every value is re-checked.
"""

from __future__ import annotations

import abc
import math
import re
import secrets
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import ClassVar, Final, Literal, Self, TypeVar, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graph.models import RubricSelection, format_datetime

ID_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
NONCE_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{8,64}")
FEEDBACK_MAX_LENGTH: Final = 4000
POINTS_LIMIT: Final = Decimal(10_000_000)
"""Graph rejects points of 9999999 and more (`invalidGrading`); we stop just below."""
MAX_DATA_KEYS: Final = 200
MAX_RUBRIC_LEVELS: Final = 50
MAX_CLASS_IDS: Final = 200
MAX_PAGE: Final = 10_000
MAX_EXPECTED_COUNT: Final = 100_000
MAX_WRITE_ID: Final = 2**62
QUERY_MAX_LENGTH: Final = 200
LEVEL_INPUT_PREFIX: Final = "level_"
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_TIMESTAMP_TEXT = re.compile(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?(Z|[+-]\d{2}:\d{2})", re.ASCII)
_CLOCK_TEXT = re.compile(r"([01]\d|2[0-3]):([0-5]\d)(?::[0-5]\d)?", re.ASCII)
_WHOLE_NUMBER_TEXT = re.compile(r"\d{1,9}(?:\.0*)?", re.ASCII)
_TIMEZONE_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9_+-]{0,31}(?:/[A-Za-z0-9_+-]{1,32}){0,2}")
_STALE_CARD = "This card is out of date or incomplete. Open it again from the list and retry."

_T = TypeVar("_T", bound=str)

NextView = Literal["assignments", "ungraded", "grade"]
RefreshableView = Literal["assignments", "ungraded"]
ConflictChoice = Literal["mine", "theirs"]
NEXT_VIEWS: Final[tuple[NextView, ...]] = ("assignments", "ungraded", "grade")
REFRESHABLE_VIEWS: Final[tuple[RefreshableView, ...]] = ("assignments", "ungraded")
CONFLICT_CHOICES: Final[tuple[ConflictChoice, ...]] = ("mine", "theirs")


class ActionDataError(ValueError):
    """Card data failed validation; `str(error)` is written for the teacher, `field` names the bad key for logs."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class UnknownActionError(ActionDataError):
    """The verb is not one Gradebot's cards send."""

    def __init__(self, verb: object) -> None:
        super().__init__("That button belongs to an older version of Gradebot. Type 'help' to start again.", "verb")
        self.verb = verb if isinstance(verb, str) and len(verb) <= 64 else None


def new_nonce() -> str:
    """A fresh per-card-render idempotency token (the caller renders it into the card)."""
    return secrets.token_urlsafe(16)


# --- value checks (each raises ActionDataError with a teacher-facing message) ---------------------------------------


def _mapping(data: object) -> Mapping[str, object]:
    if not isinstance(data, Mapping) or len(data) > MAX_DATA_KEYS:
        raise ActionDataError(_STALE_CARD, "data")
    return cast(Mapping[str, object], data)


def _is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _id(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise ActionDataError(_STALE_CARD, key)
    return value


def _optional_id(data: Mapping[str, object], key: str) -> str | None:
    return None if _is_blank(data.get(key)) else _id(data, key)


def _nonce(data: Mapping[str, object], key: str = "nonce") -> str:
    value = data.get(key)
    if not isinstance(value, str) or NONCE_PATTERN.fullmatch(value) is None:
        raise ActionDataError(_STALE_CARD, key)
    return value


def _bool(data: Mapping[str, object], key: str, *, accept_text: bool = False) -> bool:
    value = data.get(key)
    if isinstance(value, bool):
        return value
    if accept_text and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ActionDataError(_STALE_CARD, key)


def _choice(data: Mapping[str, object], key: str, allowed: tuple[_T, ...]) -> _T:
    value = data.get(key)
    for option in allowed:
        if value == option:
            return option
    raise ActionDataError(_STALE_CARD, key)


def _whole_number(value: object, key: str, low: int, high: int, message: str) -> int:
    """An int, or its text form ("3", " 3 ", "3.0" as Input.Number may send), within [low, high]."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and len(value) <= 16:
        text = value.strip()
        if _WHOLE_NUMBER_TEXT.fullmatch(text):
            number = int(text.split(".")[0])
    if number is None or not low <= number <= high:
        raise ActionDataError(message, key)
    return number


def _page(data: Mapping[str, object], key: str = "page") -> int:
    return _whole_number(data.get(key), key, 0, MAX_PAGE, _STALE_CARD)


def parse_points(value: object, key: str = "points") -> Decimal | None:
    """Points typed into a card: None when empty, else a finite decimal 0 ≤ p < 1e7 with at most 2 decimals."""
    not_a_number = ActionDataError("Points must be a number, for example 7 or 7.5.", key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise not_a_number
    if isinstance(value, int):
        if value < 0:
            raise ActionDataError("Points can't be negative.", key)
        if value >= POINTS_LIMIT:
            raise ActionDataError("Points must be less than 10,000,000.", key)
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise not_a_number
        text = repr(value)
    elif isinstance(value, str):
        if len(value) > 32 or not value.isascii():
            raise not_a_number
        text = value.strip()
        if not text:
            return None
    else:
        raise not_a_number
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise not_a_number from None
    if not number.is_finite():
        raise not_a_number
    if number < 0:
        raise ActionDataError("Points can't be negative.", key)
    if number >= POINTS_LIMIT:
        raise ActionDataError("Points must be less than 10,000,000.", key)
    hundredths = number.quantize(Decimal("0.01"))
    if hundredths != number:
        raise ActionDataError("Points can have at most 2 decimals.", key)
    if number == number.to_integral_value():
        return number.quantize(Decimal(1)).copy_abs()  # "18.0", "1e3" and "-0" read as 18, 1000 and 0
    return number


def format_points(points: Decimal | float) -> str:
    """18 → "18", 18.5 → "18.5", 18.25 → "18.25" (no trailing zeros, no exponent)."""
    number = Decimal(str(points)) if isinstance(points, float) else points
    text = f"{number:f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def check_points(points: Decimal, max_points: float | None) -> None:
    """Check points against the assignment's maximum (fresh from Graph); credit assignments take no points."""
    if max_points is None:
        raise ActionDataError("This assignment has no points. Enter feedback only.", "points")
    if points < 0 or points > Decimal(str(max_points)):
        raise ActionDataError(f"Points must be between 0 and {format_points(max_points)}.", "points")


def clean_text(value: object, key: str, *, max_length: int, label: str, multiline: bool) -> str | None:
    """Free text typed by the teacher: None when empty; no control characters except newline and tab."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_length * 4:
        if isinstance(value, str):
            raise ActionDataError(f"{label} is too long: the limit is {max_length} characters.", key)
        raise ActionDataError(_STALE_CARD, key)
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        return None
    if len(text) > max_length:
        raise ActionDataError(f"{label} is too long ({len(text)} characters): the limit is {max_length}.", key)
    allowed = "\n\t" if multiline else "\t"
    for char in text:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
            raise ActionDataError(f"{label} contains characters that can't be saved. Please retype it.", key)
    return text


def parse_feedback(value: object, key: str = "feedback") -> str | None:
    return clean_text(value, key, max_length=FEEDBACK_MAX_LENGTH, label="Feedback", multiline=True)


def _timestamp(data: Mapping[str, object], key: str) -> datetime | None:
    value = data.get(key)
    if _is_blank(value):
        return None
    match = _TIMESTAMP_TEXT.fullmatch(value.strip()) if isinstance(value, str) and len(value) <= 40 else None
    if match is None:
        raise ActionDataError(_STALE_CARD, key)
    base, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")  # Graph writes 7 digits; Python keeps 6
    try:
        return datetime.fromisoformat(f"{base}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        raise ActionDataError(_STALE_CARD, key) from None


def _clock(value: object, key: str, label: str) -> time | None:
    if _is_blank(value):
        return None
    match = _CLOCK_TEXT.fullmatch(value.strip()) if isinstance(value, str) and len(value) <= 16 else None
    if match is None:
        raise ActionDataError(f"{label} must be a time like 16:30.", key)
    return time(int(match.group(1)), int(match.group(2)))


def _levels_from_inputs(data: Mapping[str, object]) -> tuple[RubricSelection, ...]:
    selections: list[RubricSelection] = []
    for key, value in data.items():
        if not isinstance(key, str) or not key.startswith(LEVEL_INPUT_PREFIX) or _is_blank(value):
            continue
        quality_id = key.removeprefix(LEVEL_INPUT_PREFIX)
        if ID_PATTERN.fullmatch(quality_id) is None:
            raise ActionDataError(_STALE_CARD, key)
        selections.append(RubricSelection(quality_id, _id(data, key)))
    if len(selections) > MAX_RUBRIC_LEVELS:
        raise ActionDataError(_STALE_CARD, "levels")
    return tuple(sorted(selections, key=lambda selection: selection.quality_id))


def _levels_from_data(data: Mapping[str, object], key: str = "levels") -> tuple[RubricSelection, ...]:
    value = data.get(key)
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > MAX_RUBRIC_LEVELS:
        raise ActionDataError(_STALE_CARD, key)
    levels = cast(Mapping[str, object], value)
    for quality_id in levels:
        if not isinstance(quality_id, str) or ID_PATTERN.fullmatch(quality_id) is None:
            raise ActionDataError(_STALE_CARD, key)
    return tuple(RubricSelection(quality_id, _id(levels, quality_id)) for quality_id in sorted(levels))


def _comma_ids(value: object, key: str) -> tuple[str, ...]:
    if _is_blank(value):
        return ()
    if not isinstance(value, str) or len(value) > MAX_CLASS_IDS * 130:
        raise ActionDataError(_STALE_CARD, key)
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if len(parts) > MAX_CLASS_IDS or any(ID_PATTERN.fullmatch(part) is None for part in parts):
        raise ActionDataError(_STALE_CARD, key)
    return tuple(dict.fromkeys(parts))


def _weekdays(value: object, key: str) -> tuple[str, ...]:
    if _is_blank(value):
        return ()
    if not isinstance(value, str) or len(value) > 64:
        raise ActionDataError(_STALE_CARD, key)
    chosen = {part.strip().lower() for part in value.split(",") if part.strip()}
    if not chosen <= set(WEEKDAYS):
        raise ActionDataError(_STALE_CARD, key)
    return tuple(day for day in WEEKDAYS if day in chosen)


def _timezone(value: object, key: str) -> str:
    message = "Enter a time zone like Europe/London or America/New_York."
    if not isinstance(value, str) or len(value) > 100:
        raise ActionDataError(message, key)
    name = value.strip()
    if _TIMEZONE_TEXT.fullmatch(name) is None:
        raise ActionDataError(message, key)
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ActionDataError(message, key) from None
    return name


def _require_grade(points: Decimal | None, feedback: str | None, levels: tuple[RubricSelection, ...]) -> None:
    if points is None and feedback is None and not levels:
        raise ActionDataError("Enter points or feedback before saving.", "points")


def _without_none(data: dict[str, object]) -> dict[str, object]:
    return {key: value for key, value in data.items() if value is not None}


# --- payloads ----------------------------------------------------------------------------------------------------


class ActionPayload(abc.ABC):
    """Base of every payload: `VERB`, `to_data()` for the card, `parse()` for the invoke."""

    __slots__ = ()
    VERB: ClassVar[str]

    @abc.abstractmethod
    def to_data(self) -> dict[str, object]:
        """The Action.Execute `data` the card carries."""

    @classmethod
    @abc.abstractmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        """The payload from an invoke's `data`, every value re-validated (raises ActionDataError)."""


@dataclass(frozen=True, slots=True)
class PickClassAction(ActionPayload):
    """A class picked in the 1:1 chat; `next_view` is what to show for it, `query` an assignment search (grade …)."""

    VERB: ClassVar[str] = "pickClass"
    class_id: str
    next_view: NextView
    query: str | None = None

    def to_data(self) -> dict[str, object]:
        return _without_none({"classId": self.class_id, "next": self.next_view, "query": self.query})

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        query = clean_text(data.get("query"), "query", max_length=QUERY_MAX_LENGTH, label="Search", multiline=False)
        return cls(_id(data, "classId"), _choice(data, "next", NEXT_VIEWS), query)


@dataclass(frozen=True, slots=True)
class ShowAssignmentsAction(ActionPayload):
    VERB: ClassVar[str] = "showAssignments"
    class_id: str

    def to_data(self) -> dict[str, object]:
        return {"classId": self.class_id}

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        return cls(_id(data, "classId"))


@dataclass(frozen=True, slots=True)
class ShowUngradedAction(ActionPayload):
    """Ungraded work of one class, or of every taught class when `class_id` is None; `page` counts from 0."""

    VERB: ClassVar[str] = "showUngraded"
    class_id: str | None
    page: int = 0

    def to_data(self) -> dict[str, object]:
        return _without_none({"classId": self.class_id, "page": self.page})

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        return cls(_optional_id(data, "classId"), _page(data))


@dataclass(frozen=True, slots=True)
class RefreshViewAction(ActionPayload):
    """The refresh of a neutral channel card: brings the invoking teacher's own view."""

    VERB: ClassVar[str] = "refreshView"
    view: RefreshableView
    class_id: str | None
    page: int = 0

    def to_data(self) -> dict[str, object]:
        return _without_none({"view": self.view, "classId": self.class_id, "page": self.page})

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        view = _choice(data, "view", REFRESHABLE_VIEWS)
        class_id = _id(data, "classId") if view == "assignments" else _optional_id(data, "classId")
        return cls(view, class_id, _page(data))


@dataclass(frozen=True, slots=True)
class OpenGradingAction(ActionPayload):
    """Open the grading card; without a submission, the first one waiting in the assignment."""

    VERB: ClassVar[str] = "openGrading"
    class_id: str
    assignment_id: str
    submission_id: str | None = None

    def to_data(self) -> dict[str, object]:
        return _without_none(
            {"classId": self.class_id, "assignmentId": self.assignment_id, "submissionId": self.submission_id}
        )

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        return cls(_id(data, "classId"), _id(data, "assignmentId"), _optional_id(data, "submissionId"))


@dataclass(frozen=True, slots=True)
class GradeAction(ActionPayload):
    """Save a working grade (never visible to the student until returned).

    `points`/`feedback` are None when their input was empty (the card pre-fills current values);
    `known_modified` is the latest outcome lastModifiedDateTime the card showed (None if never graded; sent as "").
    """

    VERB: ClassVar[str] = "grade"
    class_id: str
    assignment_id: str
    submission_id: str
    points: Decimal | None
    feedback: str | None
    levels: tuple[RubricSelection, ...]
    known_modified: datetime | None
    force: bool
    nonce: str

    def to_data(self) -> dict[str, object]:
        """Static data only; points, feedback and `level_<qualityId>` arrive as inputs merged into it."""
        return {
            "classId": self.class_id,
            "assignmentId": self.assignment_id,
            "submissionId": self.submission_id,
            "knownModified": format_datetime(self.known_modified) if self.known_modified else "",
            "force": self.force,
            "nonce": self.nonce,
        }

    def to_inputs(self) -> dict[str, object]:
        """The input values as the client would merge them (for tests and replays)."""
        inputs: dict[str, object] = {
            "points": format_points(self.points) if self.points is not None else "",
            "feedback": self.feedback or "",
        }
        inputs.update({f"{LEVEL_INPUT_PREFIX}{level.quality_id}": level.column_id for level in self.levels})
        return inputs

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        if "knownModified" not in data:
            raise ActionDataError(_STALE_CARD, "knownModified")
        ids = (_id(data, "classId"), _id(data, "assignmentId"), _id(data, "submissionId"))
        points = parse_points(data.get("points"))
        feedback = parse_feedback(data.get("feedback"))
        levels = _levels_from_inputs(data)
        known_modified = _timestamp(data, "knownModified")
        force = _bool(data, "force")
        nonce = _nonce(data)
        _require_grade(points, feedback, levels)
        return cls(*ids, points, feedback, levels, known_modified, force, nonce)


@dataclass(frozen=True, slots=True)
class SkipAction(ActionPayload):
    VERB: ClassVar[str] = "skip"
    class_id: str
    assignment_id: str
    submission_id: str

    def to_data(self) -> dict[str, object]:
        return {"classId": self.class_id, "assignmentId": self.assignment_id, "submissionId": self.submission_id}

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        return cls(_id(data, "classId"), _id(data, "assignmentId"), _id(data, "submissionId"))


@dataclass(frozen=True, slots=True)
class _SubmissionStep(ActionPayload):
    """Shared shape of return / reassign / excuse: a confirmed step on one submission."""

    class_id: str
    assignment_id: str
    submission_id: str
    confirmed: bool
    nonce: str

    def to_data(self) -> dict[str, object]:
        return {
            "classId": self.class_id,
            "assignmentId": self.assignment_id,
            "submissionId": self.submission_id,
            "confirmed": self.confirmed,
            "nonce": self.nonce,
        }

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        ids = (_id(data, "classId"), _id(data, "assignmentId"), _id(data, "submissionId"))
        return cls(*ids, _bool(data, "confirmed"), _nonce(data))


@dataclass(frozen=True, slots=True)
class ReturnAction(_SubmissionStep):
    """Return one submission: its working grade becomes visible to the student."""

    VERB: ClassVar[str] = "return"


@dataclass(frozen=True, slots=True)
class ReassignAction(_SubmissionStep):
    """Return for revision: the student can change the work and turn it in again."""

    VERB: ClassVar[str] = "reassign"


@dataclass(frozen=True, slots=True)
class ExcuseAction(_SubmissionStep):
    """Excuse the student from the assignment (deletes feedback and rubric selections)."""

    VERB: ClassVar[str] = "excuse"


@dataclass(frozen=True, slots=True)
class ReturnAllAction(ActionPayload):
    """Return every graded, not yet returned submission of an assignment; `expected_count` is what the card showed."""

    VERB: ClassVar[str] = "returnAll"
    class_id: str
    assignment_id: str
    confirmed: bool
    expected_count: int
    nonce: str

    def to_data(self) -> dict[str, object]:
        return {
            "classId": self.class_id,
            "assignmentId": self.assignment_id,
            "confirmed": self.confirmed,
            "expectedCount": self.expected_count,
            "nonce": self.nonce,
        }

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        count = _whole_number(data.get("expectedCount"), "expectedCount", 0, MAX_EXPECTED_COUNT, _STALE_CARD)
        return cls(_id(data, "classId"), _id(data, "assignmentId"), _bool(data, "confirmed"), count, _nonce(data))


@dataclass(frozen=True, slots=True)
class ResolveConflictAction(ActionPayload):
    """After a conflict: keep the teacher's values (`mine`, written with force) or the newer ones (`theirs`)."""

    VERB: ClassVar[str] = "resolveConflict"
    class_id: str
    assignment_id: str
    submission_id: str
    choice: ConflictChoice
    points: Decimal | None
    feedback: str | None
    nonce: str
    levels: tuple[RubricSelection, ...] = ()

    def to_data(self) -> dict[str, object]:
        return _without_none(
            {
                "classId": self.class_id,
                "assignmentId": self.assignment_id,
                "submissionId": self.submission_id,
                "choice": self.choice,
                "points": format_points(self.points) if self.points is not None else None,
                "feedback": self.feedback,
                "levels": {level.quality_id: level.column_id for level in self.levels} or None,
                "nonce": self.nonce,
            }
        )

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        ids = (_id(data, "classId"), _id(data, "assignmentId"), _id(data, "submissionId"))
        choice = _choice(data, "choice", CONFLICT_CHOICES)
        points = parse_points(data.get("points"))
        feedback = parse_feedback(data.get("feedback"))
        levels = _levels_from_data(data)
        if choice == "mine":
            _require_grade(points, feedback, levels)
        return cls(*ids, choice, points, feedback, _nonce(data), levels)


@dataclass(frozen=True, slots=True)
class UndoAction(ActionPayload):
    """Undo the save `write_id` names (Gradebot's id for that write), once; `nonce` is the card's.

    A payload without `write_id` names nothing and undoes nothing. `anyway` is the teacher's explicit choice on the
    undo conflict card to replace the grade shown there, whose newest outcome change was `known_modified`.
    """

    VERB: ClassVar[str] = "undo"
    nonce: str
    write_id: int | None = None
    anyway: bool = False
    known_modified: datetime | None = None

    def to_data(self) -> dict[str, object]:
        data: dict[str, object] = {"nonce": self.nonce}
        if self.write_id is not None:
            data["writeId"] = self.write_id
        if self.anyway:
            data["anyway"] = True
            data["knownModified"] = format_datetime(self.known_modified) if self.known_modified else ""
        return data

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        nonce = _nonce(data)
        write_id = None
        if not _is_blank(data.get("writeId")):
            write_id = _whole_number(data.get("writeId"), "writeId", 1, MAX_WRITE_ID, _STALE_CARD)
        anyway = _bool(data, "anyway") if "anyway" in data else False
        if anyway and write_id is None:
            raise ActionDataError(_STALE_CARD, "writeId")
        known_modified = _timestamp(data, "knownModified") if anyway else None
        return cls(nonce, write_id, anyway, known_modified)


@dataclass(frozen=True, slots=True)
class SnoozeAction(ActionPayload):
    """Pause reminders for a day or a week."""

    VERB: ClassVar[str] = "snooze"
    days: Literal[1, 7]

    def to_data(self) -> dict[str, object]:
        return {"days": self.days}

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        days = _whole_number(data.get("days"), "days", 1, 7, _STALE_CARD)
        if days == 1:
            return cls(1)
        if days == 7:
            return cls(7)
        raise ActionDataError(_STALE_CARD, "days")


@dataclass(frozen=True, slots=True)
class SaveRemindersAction(ActionPayload):
    """The reminder settings card's inputs. Empty `class_ids` means every taught class."""

    VERB: ClassVar[str] = "saveReminders"
    days: tuple[str, ...]
    at: time
    timezone: str
    quiet_start: time | None
    quiet_end: time | None
    class_ids: tuple[str, ...]
    min_waiting: int
    min_age_days: int
    enabled: bool

    MIN_WAITING_RANGE: ClassVar[tuple[int, int]] = (1, 1000)
    MIN_AGE_RANGE: ClassVar[tuple[int, int]] = (0, 365)

    def to_data(self) -> dict[str, object]:
        """No static data: every value comes from the card's inputs (see `to_inputs`)."""
        return {}

    def to_inputs(self) -> dict[str, object]:
        return {
            "days": ",".join(self.days),
            "time": self.at.strftime("%H:%M"),
            "timezone": self.timezone,
            "quietStart": self.quiet_start.strftime("%H:%M") if self.quiet_start else "",
            "quietEnd": self.quiet_end.strftime("%H:%M") if self.quiet_end else "",
            "classIds": ",".join(self.class_ids),
            "minWaiting": str(self.min_waiting),
            "minAgeDays": str(self.min_age_days),
            "enabled": "true" if self.enabled else "false",
        }

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        data = _mapping(data)
        days = _weekdays(data.get("days"), "days")
        enabled = _bool(data, "enabled", accept_text=True)
        if enabled and not days:
            raise ActionDataError("Pick at least one day for reminders.", "days")
        at = _clock(data.get("time"), "time", "Reminder time")
        if at is None:
            raise ActionDataError("Reminder time must be a time like 16:30.", "time")
        quiet_start = _clock(data.get("quietStart"), "quietStart", "Quiet hours start")
        quiet_end = _clock(data.get("quietEnd"), "quietEnd", "Quiet hours end")
        if (quiet_start is None) != (quiet_end is None):
            raise ActionDataError("Set both ends of the quiet hours, or neither.", "quietStart")
        low, high = cls.MIN_WAITING_RANGE
        min_waiting = _whole_number(
            data.get("minWaiting"), "minWaiting", low, high, f"Minimum waiting must be a number from {low} to {high}."
        )
        low, high = cls.MIN_AGE_RANGE
        min_age = _whole_number(
            data.get("minAgeDays"), "minAgeDays", low, high, f"Minimum age must be {low} to {high} days."
        )
        return cls(
            days=days,
            at=at,
            timezone=_timezone(data.get("timezone"), "timezone"),
            quiet_start=quiet_start,
            quiet_end=quiet_end,
            class_ids=_comma_ids(data.get("classIds"), "classIds"),
            min_waiting=min_waiting,
            min_age_days=min_age,
            enabled=enabled,
        )


@dataclass(frozen=True, slots=True)
class RemindOffAction(ActionPayload):
    VERB: ClassVar[str] = "remindOff"

    def to_data(self) -> dict[str, object]:
        return {}

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        _mapping(data)
        return cls()


@dataclass(frozen=True, slots=True)
class SignInAction(ActionPayload):
    VERB: ClassVar[str] = "signIn"

    def to_data(self) -> dict[str, object]:
        return {}

    @classmethod
    def parse(cls, data: Mapping[str, object]) -> Self:
        _mapping(data)
        return cls()


ConfirmableAction = ReturnAction | ReturnAllAction | ReassignAction | ExcuseAction

ACTIONS: Final[dict[str, type[ActionPayload]]] = {
    payload.VERB: payload
    for payload in (
        PickClassAction,
        ShowAssignmentsAction,
        ShowUngradedAction,
        RefreshViewAction,
        OpenGradingAction,
        GradeAction,
        SkipAction,
        ReturnAction,
        ReturnAllAction,
        ReassignAction,
        ExcuseAction,
        ResolveConflictAction,
        UndoAction,
        SnoozeAction,
        SaveRemindersAction,
        RemindOffAction,
        SignInAction,
    )
}


def parse_action(verb: object, data: object) -> ActionPayload:
    """The typed payload for an Action.Execute invoke; raises UnknownActionError or ActionDataError."""
    payload_type = ACTIONS.get(verb) if isinstance(verb, str) else None
    if payload_type is None:
        raise UnknownActionError(verb)
    return payload_type.parse(_mapping(data))
