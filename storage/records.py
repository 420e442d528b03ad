"""The frozen records that cross the Store boundary, and how a backend's decoded row becomes one. Every timestamp is an
aware datetime (the store returns them in UTC); JSON fields are plain dicts, opaque to storage."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

JsonObject = dict[str, Any]
Row = Mapping[str, Any]
"""A database row with its columns decoded by the backend (datetimes, JSON, lists, booleans)."""

OutboxFailure = Literal["failed", "conflict"]

_CLOCK_TIME = re.compile(r"^(?:[01]\d|2[0-3]):[0-5]\d$")
RecordT = TypeVar("RecordT", bound="DataclassInstance")


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is a caller bug (whose clock would it be?)."""
    if moment.utcoffset() is None:
        raise ValueError("the store takes aware datetimes only (got a naive one)")
    return moment.astimezone(UTC)


def dump_json(value: object) -> str:
    """Compact JSON, refusing NaN and infinities (which JSON cannot carry)."""
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def from_row(record: type[RecordT], row: Row) -> RecordT:
    """A `record` from the row's columns of the same names, with times in UTC and lists (array columns) as
    frozensets."""
    return record(**{field.name: _plain(row[field.name]) for field in fields(record)})


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return utc(value)
    return frozenset(value) if isinstance(value, list) else value


@dataclass(frozen=True, slots=True)
class OutboxBacklog:
    """How far behind the outbox is: unfinished (pending or inflight) entries and when the oldest was recorded."""

    depth: int
    oldest_created_at: datetime | None
    """None when nothing is unfinished."""


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """Where Gradebot can reply or post proactively: one Teams conversation and its serialized reference."""

    conversation_id: str
    kind: Literal["personal", "channel", "groupChat"]
    tenant_id: str
    service_url: str
    bot_id: str
    user_aad_id: str | None
    """The user of a personal (1:1) chat; None elsewhere."""
    team_id: str | None
    class_id: str | None
    """The team's aadGroupId (= educationClass id) when known."""
    reference: JsonObject
    """botbuilder's ConversationReference as JSON; storage never looks inside."""
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class UserProfile:
    """What Gradebot remembers about a signed-in user between turns."""

    user_aad_id: str
    tenant_id: str
    upn: str | None
    timezone: str | None
    """IANA name from the Teams client's localTimezone."""
    updated_at: datetime
    teams_id: str | None = None
    """The user's `29:` id as Gradebot's bot sees it (needed to open a 1:1 chat proactively)."""
    service_url: str | None = None
    """The Bot Connector URL the user's tenant was last seen through."""


@dataclass(frozen=True, slots=True)
class NewOutboxEntry:
    """A Graph write to record before it is attempted; `idempotency_key` makes a replay return the first entry."""

    idempotency_key: str
    kind: str
    """What to do: "grade", "return", "reassign", "excuse", …"""
    teacher_id: str
    tenant_id: str
    class_id: str
    assignment_id: str
    submission_id: str
    payload: JsonObject


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxEntry(NewOutboxEntry):
    """A recorded Graph write and where it stands; `lease_owner` is the worker attempting it while `inflight`."""

    id: int
    status: Literal["pending", "inflight", "done", "failed", "conflict"]
    attempts: int
    """How many times a worker has claimed the entry (each claim is one attempt)."""
    next_attempt_at: datetime
    last_error: str | None
    result: JsonObject | None
    created_at: datetime
    updated_at: datetime
    lease_owner: str | None
    lease_until: datetime | None

    @property
    def finished(self) -> bool:
        """True once the entry is done, failed or in conflict: no worker will touch it again."""
        return self.status in ("done", "failed", "conflict")


@dataclass(frozen=True, slots=True)
class NewAuditRecord:
    """One change a teacher made (or undid), with the state before and after it."""

    at: datetime
    teacher_id: str
    tenant_id: str
    class_id: str
    assignment_id: str
    submission_id: str
    action: str
    before: JsonObject
    after: JsonObject
    outbox_key: str | None = None
    """The idempotency key of the outbox entry that carried the change to Graph, if any."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditRecord(NewAuditRecord):
    """A stored audit entry; `undone_at` is set once when the change is undone."""

    id: int
    undone_at: datetime | None


@dataclass(frozen=True, slots=True)
class ReminderSchedule:
    """When and how a teacher wants the "work waiting to be graded" digest."""

    teacher_id: str
    tenant_id: str
    enabled: bool
    days: frozenset[int]
    """Weekdays to send on: 0 = Monday … 6 = Sunday."""
    local_time: str
    """"HH:MM" in `timezone`."""
    timezone: str
    """IANA name, e.g. "Europe/Berlin"."""
    quiet_start: str | None
    quiet_end: str | None
    class_ids: frozenset[str]
    """Classes to include; empty means every class the teacher teaches."""
    min_waiting: int
    """Send only when at least this many submissions wait."""
    min_age_days: int
    """Count only submissions waiting at least this many days."""
    snoozed_until: datetime | None
    paused_reason: str | None
    paused_at: datetime | None
    updated_at: datetime

    def __post_init__(self) -> None:
        if not all(isinstance(day, int) and 0 <= day <= 6 for day in self.days):
            raise ValueError("reminder days must be weekday numbers 0 (Monday) to 6 (Sunday)")
        for name in ("local_time", "quiet_start", "quiet_end"):
            value = getattr(self, name)
            if value is not None and not _CLOCK_TIME.match(value):
                raise ValueError(f"{name} must be HH:MM (24-hour), got {value!r}")
        if (self.quiet_start is None) != (self.quiet_end is None):
            raise ValueError("quiet_start and quiet_end must both be set or both be None")
        if self.min_waiting < 0 or self.min_age_days < 0:
            raise ValueError("min_waiting and min_age_days must not be negative")


@dataclass(frozen=True, slots=True)
class ClassSweep:
    """The reminder sweep's memory of one class: its waiting set (a JSON object in the sweep's own shape), when the
    class was last read in full and when it was last swept (fully or from the recently modified submissions)."""

    class_id: str
    waiting_set: JsonObject
    full_at: datetime
    swept_at: datetime
