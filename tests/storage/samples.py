"""Sample records for the storage tests, built around one fixed clock (T0) so tests control time."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from storage.records import ConversationRecord, NewAuditRecord, NewOutboxEntry, ReminderSchedule

T0 = datetime(2025, 3, 3, 8, 30, 15, 123456, tzinfo=UTC)
BERLIN_WINTER = timezone(timedelta(hours=1))
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
BOT_ID = "28:6d3b3b4c-0f1e-4a3b-9c55-1c2f1a0b9e01"


def at(minutes: float = 0, *, seconds: float = 0) -> datetime:
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def conversation(conversation_id: str, **changes: Any) -> ConversationRecord:
    base = ConversationRecord(
        conversation_id=conversation_id,
        kind="personal",
        tenant_id=TENANT,
        service_url=SERVICE_URL,
        bot_id=BOT_ID,
        user_aad_id="teacher-1",
        team_id=None,
        class_id=None,
        reference={
            "activityId": "1712345678901",
            "bot": {"id": BOT_ID, "name": "Gradebot"},
            "conversation": {"id": conversation_id, "conversationType": "personal", "tenantId": TENANT},
            "channelId": "msteams",
            "locale": "de-DE",
            "serviceUrl": SERVICE_URL,
            "user": {"id": "29:1abc", "name": "Ms. Zoë Ångström-Ōtsuka 👩‍🏫", "aadObjectId": "teacher-1"},
        },
        updated_at=T0,
    )
    return replace(base, **changes)


def outbox_entry(key: str, **changes: Any) -> NewOutboxEntry:
    base = NewOutboxEntry(
        idempotency_key=key,
        kind="grade",
        teacher_id="teacher-1",
        tenant_id=TENANT,
        class_id="class-1",
        assignment_id="assignment-1",
        submission_id="submission-1",
        payload={
            "points": 8.5,
            "maxPoints": 10,
            "feedback": "Très bien — 很好! Watch the units.\nNächstes Mal: 🧪",
            "rubricLevels": [{"qualityId": "q1", "levelId": "l2"}],
            "expectedLastModified": "2025-03-03T08:00:00.0000000Z",
            "card": {"activityId": "1:abc", "conversationId": "a:1xyz"},
            "empty": None,
        },
    )
    return replace(base, **changes)


def audit(action: str, minute: float, **changes: Any) -> NewAuditRecord:
    base = NewAuditRecord(
        at=at(minute),
        teacher_id="teacher-1",
        tenant_id=TENANT,
        class_id="class-1",
        assignment_id="assignment-1",
        submission_id="submission-1",
        action=action,
        before={"points": None, "feedback": None},
        after={"points": 7, "feedback": "Gut gemacht, Łukasz"},
        outbox_key=f"grade:{action}:{minute}",
    )
    return replace(base, **changes)


def schedule(teacher_id: str, **changes: Any) -> ReminderSchedule:
    base = ReminderSchedule(
        teacher_id=teacher_id,
        tenant_id=TENANT,
        enabled=True,
        days=frozenset({0, 2, 4}),
        local_time="07:45",
        timezone="Europe/Berlin",
        quiet_start=None,
        quiet_end=None,
        class_ids=frozenset(),
        min_waiting=1,
        min_age_days=0,
        snoozed_until=None,
        paused_reason=None,
        paused_at=None,
        updated_at=T0,
    )
    return replace(base, **changes)
