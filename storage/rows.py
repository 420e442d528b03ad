"""Shared by both backends: argument checks and turning decoded database rows into records.

A backend first decodes its column types (datetimes, JSON, booleans, arrays) into Python values; the functions here
only assemble records and check what callers pass in.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from storage.records import (
    OUTBOX_FAILURES,
    AuditRecord,
    ConversationKind,
    ConversationRecord,
    OutboxEntry,
    OutboxFailure,
    OutboxStatus,
    ReminderSchedule,
    UserProfile,
)

Row = Mapping[str, Any]


def utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is a caller bug (whose clock would it be?)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("the store takes aware datetimes only (got a naive one)")
    return moment.astimezone(UTC)


def optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def positive(span: timedelta, name: str) -> timedelta:
    if span <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {span}")
    return span


def positive_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


def failure_status(status: str) -> OutboxFailure:
    if status not in OUTBOX_FAILURES:
        raise ValueError(f"an outbox entry can only fail as 'failed' or 'conflict', not {status!r}")
    return cast(OutboxFailure, status)


def conversation_from_row(row: Row) -> ConversationRecord:
    return ConversationRecord(
        conversation_id=row["conversation_id"],
        kind=cast(ConversationKind, row["kind"]),
        tenant_id=row["tenant_id"],
        service_url=row["service_url"],
        bot_id=row["bot_id"],
        user_aad_id=row["user_aad_id"],
        team_id=row["team_id"],
        class_id=row["class_id"],
        reference=row["reference"],
        updated_at=utc(row["updated_at"]),
    )


def profile_from_row(row: Row) -> UserProfile:
    return UserProfile(
        user_aad_id=row["user_aad_id"],
        tenant_id=row["tenant_id"],
        upn=row["upn"],
        timezone=row["timezone"],
        updated_at=utc(row["updated_at"]),
        teams_id=row["teams_id"],
        service_url=row["service_url"],
    )


def outbox_from_row(row: Row) -> OutboxEntry:
    return OutboxEntry(
        id=int(row["id"]),
        idempotency_key=row["idempotency_key"],
        kind=row["kind"],
        teacher_id=row["teacher_id"],
        tenant_id=row["tenant_id"],
        class_id=row["class_id"],
        assignment_id=row["assignment_id"],
        submission_id=row["submission_id"],
        payload=row["payload"],
        status=cast(OutboxStatus, row["status"]),
        attempts=int(row["attempts"]),
        next_attempt_at=utc(row["next_attempt_at"]),
        last_error=row["last_error"],
        result=row["result"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        lease_owner=row["lease_owner"],
        lease_until=optional_utc(row["lease_until"]),
    )


def audit_from_row(row: Row) -> AuditRecord:
    return AuditRecord(
        id=int(row["id"]),
        at=utc(row["at"]),
        teacher_id=row["teacher_id"],
        tenant_id=row["tenant_id"],
        class_id=row["class_id"],
        assignment_id=row["assignment_id"],
        submission_id=row["submission_id"],
        action=row["action"],
        before=row["before_state"],
        after=row["after_state"],
        outbox_key=row["outbox_key"],
        undone_at=optional_utc(row["undone_at"]),
    )


def schedule_from_row(row: Row) -> ReminderSchedule:
    return ReminderSchedule(
        teacher_id=row["teacher_id"],
        tenant_id=row["tenant_id"],
        enabled=bool(row["enabled"]),
        days=frozenset(int(day) for day in row["days"]),
        local_time=row["local_time"],
        timezone=row["timezone"],
        quiet_start=row["quiet_start"],
        quiet_end=row["quiet_end"],
        class_ids=frozenset(row["class_ids"]),
        min_waiting=int(row["min_waiting"]),
        min_age_days=int(row["min_age_days"]),
        snoozed_until=optional_utc(row["snoozed_until"]),
        paused_reason=row["paused_reason"],
        paused_at=optional_utc(row["paused_at"]),
        updated_at=utc(row["updated_at"]),
    )
