"""The Store protocol: every piece of durable state Gradebot keeps, behind one async interface, and its errors.

Callers pass the clock in (`now`, aware datetimes); a store never reads the time to make a decision.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta
from types import TracebackType
from typing import Protocol, Self

from storage.records import (
    AuditRecord,
    ConversationRecord,
    JsonObject,
    NewAuditRecord,
    NewOutboxEntry,
    OutboxEntry,
    OutboxFailure,
    ReminderSchedule,
    UserProfile,
)


class StoreError(Exception):
    """The database failed or could not be reached; the message names the operation, never the data."""


class StoreClosedError(StoreError):
    """The store was used after `close()`."""


class SchemaVersionError(StoreError):
    """The database was migrated by a newer Gradebot than this one; refusing to run against it."""


class Store(Protocol):
    """Durable state shared by every Gradebot instance that opens the same database.

    Usable as `async with store:`; closing twice is harmless. Unless a method says otherwise, "not found" is None.
    """

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None: ...

    async def schema_version(self) -> int:
        """The newest migration applied to the database."""
        ...

    # Conversation references and the class chosen in each conversation.

    async def save_conversation(self, record: ConversationRecord) -> None:
        """Insert or replace the conversation with this id."""
        ...

    async def get_conversation(self, conversation_id: str) -> ConversationRecord | None: ...

    async def personal_conversation(self, user_aad_id: str) -> ConversationRecord | None:
        """The most recently updated personal (1:1) chat with this user."""
        ...

    async def team_conversation(self, class_id: str) -> ConversationRecord | None:
        """The most recently updated channel conversation in the team of this class."""
        ...

    async def set_class_choice(self, conversation_id: str, class_id: str, now: datetime) -> None: ...

    async def get_class_choice(self, conversation_id: str) -> str | None: ...

    # Per-user token caches (encrypted by the caller) and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime, key_id: str = "") -> None:
        """Insert or replace the user's cache; `key_id` names the key that sealed it ("" = not recorded)."""
        ...

    async def load_token_cache(self, user_key: str) -> bytes | None: ...

    async def delete_token_cache(self, user_key: str) -> bool:
        """True when a cache was deleted."""
        ...

    async def token_cache_key_ids(self) -> dict[str, int]:
        """How many caches each key id sealed."""
        ...

    async def token_caches_sealed_with(self, key_id: str, limit: int) -> list[tuple[str, bytes]]:
        """(user_key, blob) of up to `limit` caches sealed with `key_id`, most recently saved first."""
        ...

    async def save_user_profile(self, profile: UserProfile) -> None:
        """Insert or replace the profile of `profile.user_aad_id`."""
        ...

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None: ...

    # Once-only claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
        """True for the first caller across every instance; False while an unexpired claim on the key exists."""
        ...

    async def claimed(self, namespace: str, key: str, now: datetime) -> bool:
        """True while an unexpired claim on the key exists (reading it claims nothing)."""
        ...

    async def purge_claims(self, now: datetime) -> int:
        """Delete claims that expired at or before `now`; returns how many."""
        ...

    # Sign-in in progress: flows of the authorization-code page, one-time codes handed back through Teams.

    async def save_sign_in_flow(self, state: str, user_key: str, flow: bytes, now: datetime, ttl: timedelta) -> None:
        """Record a pending sign-in flow (sealed by the caller) under its `state`, valid until `now + ttl`."""
        ...

    async def take_sign_in_flow(self, state: str, now: datetime) -> tuple[str, bytes] | None:
        """Remove and return (user_key, flow) of the unexpired flow; None when missing, expired or already taken."""
        ...

    async def purge_sign_in_flows(self, now: datetime) -> int:
        """Delete flows that expired at or before `now`; returns how many."""
        ...

    async def issue_sign_in_code(self, user_key: str, digest: str, now: datetime, ttl: timedelta) -> None:
        """Record the digest of the user's new one-time code (replacing an earlier one), valid until `now + ttl`."""
        ...

    async def redeem_sign_in_code(self, user_key: str, digest: str, now: datetime, max_wrong: int) -> bool:
        """True once, when `digest` is the user's unexpired code and fewer than `max_wrong` wrong guesses were
        made; the code is then used up. Any other digest counts as a wrong guess against the user's code."""
        ...

    async def purge_sign_in_codes(self, now: datetime) -> int:
        """Delete codes that expired at or before `now`; returns how many."""
        ...

    # The grade outbox: a Graph write is recorded here before Graph is called.

    async def enqueue_outbox(self, new: NewOutboxEntry, now: datetime) -> tuple[OutboxEntry, bool]:
        """Record a pending write due at `now`. An existing key returns that entry unchanged and False."""
        ...

    async def claim_outbox(self, entry_id: int, owner: str, now: datetime, lease: timedelta) -> OutboxEntry | None:
        """Take a pending entry, or an inflight one whose lease expired, for `owner` until `now + lease`.

        The entry becomes `inflight` and its `attempts` grows by one. None when the entry is finished, missing, or
        leased (by anyone, the same owner included) until after `now`.
        """
        ...

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        """Pending entries due at or before `now` and inflight entries whose lease expired, oldest due first."""
        ...

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
        """Mark the entry done with Graph's result. False unless `owner` still holds it.

        A lease that ran out still belongs to its owner until another worker claims the entry, so a slow but
        successful attempt is recorded; once another worker has claimed it, the old owner gets False.
        """
        ...

    async def retry_outbox(
        self, entry_id: int, owner: str, error: str, next_attempt_at: datetime, now: datetime
    ) -> bool:
        """Release the entry back to `pending`, due at `next_attempt_at`. False unless `owner` still holds it."""
        ...

    async def fail_outbox(
        self, entry_id: int, owner: str, error: str, now: datetime, status: OutboxFailure = "failed"
    ) -> bool:
        """Give up on the entry (`failed`, or `conflict` when Graph changed underneath). False unless owner holds it."""
        ...

    async def get_outbox(self, entry_id: int) -> OutboxEntry | None: ...

    async def get_outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None: ...

    async def pending_outbox_for(self, teacher_id: str) -> list[OutboxEntry]:
        """The teacher's unfinished (pending or inflight) entries, oldest first."""
        ...

    async def purge_finished_outbox(self, before: datetime) -> int:
        """Delete done, failed and conflict entries last updated at or before `before`, except those of a
        submission that still has an unfinished entry (it checks them before writing); returns how many."""
        ...

    # Audit log and undo.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord: ...

    async def last_undoable(self, teacher_id: str, actions: Collection[str]) -> AuditRecord | None:
        """The teacher's newest record of one of `actions` that has not been undone."""
        ...

    async def mark_undone(self, audit_id: int, now: datetime) -> bool:
        """True the first time only."""
        ...

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first."""
        ...

    # Reminder schedules, sent digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        """Insert or replace the schedule of `schedule.teacher_id`."""
        ...

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None: ...

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        """Schedules ordered by teacher id."""
        ...

    async def delete_schedule(self, teacher_id: str) -> bool: ...

    async def record_digest(self, teacher_id: str, slot_key: str, now: datetime) -> bool:
        """True the first time a digest is recorded for (teacher, slot) across every instance; False after."""
        ...

    async def digest_sent(self, teacher_id: str, slot_key: str) -> bool: ...

    async def last_digest(self, teacher_id: str) -> tuple[str, datetime] | None:
        """(slot_key, sent_at) of the teacher's most recently sent digest."""
        ...

    # Leases: exactly one holder across instances.

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease if it is free or expired, or renew it if `holder` has it; held until `now + ttl`."""
        ...

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up; False if `holder` did not have it."""
        ...

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        """Who holds the lease at `now` (None when free or expired)."""
        ...

    # Small named values.

    async def get_value(self, key: str) -> str | None: ...

    async def set_value(self, key: str, value: str, now: datetime) -> None: ...
