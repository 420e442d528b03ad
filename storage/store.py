"""The Store: every piece of durable state Gradebot keeps, in one abstract class that is both contract and SQL.

Both backends speak SQL, so each method is written once, its contract beside its statement (not a Protocol repeated
by an implementation); a backend fills in only the seam. Callers pass the clock in (`now`); a store never reads it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Self

from storage.records import (
    OUTBOX_FAILURES,
    AuditRecord,
    ClassSweep,
    ConversationRecord,
    JsonObject,
    NewAuditRecord,
    NewOutboxEntry,
    OutboxBacklog,
    OutboxEntry,
    OutboxFailure,
    ReminderSchedule,
    Row,
    UserProfile,
    from_row,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version, name) VALUES (?, ?)"


class StoreError(Exception):
    """The database failed or could not be reached; the message names the operation, never the data."""


class StoreClosedError(StoreError):
    """The store was used after `close()`."""


class SchemaVersionError(StoreError):
    """The database was migrated by a newer Gradebot than this one; refusing to run against it."""


def positive(span: timedelta, name: str) -> timedelta:
    if span <= timedelta(0):
        raise ValueError(f"{name} must be positive, got {span}")
    return span


def positive_limit(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return limit


class Store(ABC):
    """Durable state shared by every Gradebot instance that opens the same database.

    Usable as `async with store:`; closing twice is harmless. Unless a method says otherwise, "not found" is None.
    Statements mark every parameter with `?` and use `?` nowhere else.
    """

    INT_LIST_PARAM: ClassVar[str] = "?"
    """How a statement takes a list of integers (a backend may add a cast)."""
    TEXT_LIST_PARAM: ClassVar[str] = "?"
    """How a statement takes a list of strings (a backend may add a cast)."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...

    async def check(self) -> int:
        """A cheap round trip proving the database is there (for readiness): the newest migration applied to it.
        StoreError when it cannot be reached."""
        row = await self._read_one(CURRENT_VERSION)
        return 0 if row is None else int(row["version"])

    # Conversation references and the class chosen in each conversation.

    async def save_conversation(self, record: ConversationRecord) -> None:
        """Insert or replace the conversation with this id."""
        await self._upsert("conversations", "conversation_id", record)

    async def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        row = await self._read_one("SELECT * FROM conversations WHERE conversation_id = ?", (conversation_id,))
        return None if row is None else from_row(ConversationRecord, row)

    async def personal_conversation(self, user_aad_id: str) -> ConversationRecord | None:
        """The most recently updated personal (1:1) chat with this user."""
        row = await self._read_one(
            """SELECT * FROM conversations WHERE kind = 'personal' AND user_aad_id = ?
               ORDER BY updated_at DESC, conversation_id DESC LIMIT 1""",
            (user_aad_id,),
        )
        return None if row is None else from_row(ConversationRecord, row)

    async def set_class_choice(self, conversation_id: str, class_id: str, now: datetime) -> None:
        await self._write(
            """INSERT INTO class_choices (conversation_id, class_id, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (conversation_id) DO UPDATE SET class_id = EXCLUDED.class_id,
                   updated_at = EXCLUDED.updated_at""",
            (conversation_id, class_id, self._time(now)),
        )

    async def get_class_choice(self, conversation_id: str) -> str | None:
        row = await self._read_one("SELECT class_id FROM class_choices WHERE conversation_id = ?", (conversation_id,))
        return None if row is None else str(row["class_id"])

    # Per-user token caches (encrypted by the caller) and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime, key_id: str = "") -> None:
        """Insert or replace the user's cache; `key_id` names the key that sealed it ("" = not recorded)."""
        await self._write(
            """INSERT INTO token_caches (user_key, blob, updated_at, key_id) VALUES (?, ?, ?, ?)
               ON CONFLICT (user_key) DO UPDATE SET blob = EXCLUDED.blob, updated_at = EXCLUDED.updated_at,
                   key_id = EXCLUDED.key_id""",
            (user_key, bytes(blob), self._time(now), key_id),
        )

    async def load_token_cache(self, user_key: str) -> bytes | None:
        row = await self._read_one("SELECT blob FROM token_caches WHERE user_key = ?", (user_key,))
        return None if row is None else bytes(row["blob"])

    async def delete_token_cache(self, user_key: str) -> bool:
        """True when a cache was deleted."""
        return bool(await self._write("DELETE FROM token_caches WHERE user_key = ? RETURNING user_key", (user_key,)))

    async def token_cache_key_ids(self) -> dict[str, int]:
        """How many caches each key id sealed."""
        rows = await self._read("SELECT key_id, COUNT(*) AS caches FROM token_caches GROUP BY key_id")
        return {str(row["key_id"]): int(row["caches"]) for row in rows}

    async def token_caches_sealed_with(self, key_id: str, limit: int) -> list[tuple[str, bytes]]:
        """(user_key, blob) of up to `limit` caches sealed with `key_id`, most recently saved first."""
        rows = await self._read(
            "SELECT user_key, blob FROM token_caches WHERE key_id = ? ORDER BY updated_at DESC, user_key LIMIT ?",
            (key_id, positive_limit(limit)),
        )
        return [(str(row["user_key"]), bytes(row["blob"])) for row in rows]

    async def save_user_profile(self, profile: UserProfile) -> None:
        """Insert or replace the profile of `profile.user_aad_id`."""
        await self._upsert("user_profiles", "user_aad_id", profile)

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None:
        row = await self._read_one("SELECT * FROM user_profiles WHERE user_aad_id = ?", (user_aad_id,))
        return None if row is None else from_row(UserProfile, row)

    # Once-only claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
        """True for the first caller across every instance; False while an unexpired claim on the key exists."""
        rows = await self._write(
            """INSERT INTO claims (namespace, claim_key, claimed_at, expires_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (namespace, claim_key) DO UPDATE SET claimed_at = EXCLUDED.claimed_at,
                   expires_at = EXCLUDED.expires_at
               WHERE claims.expires_at <= EXCLUDED.claimed_at
               RETURNING claim_key""",
            (namespace, key, self._time(now), self._time(now + positive(ttl, "ttl"))),
        )
        return bool(rows)

    async def claimed(self, namespace: str, key: str, now: datetime) -> bool:
        """True while an unexpired claim on the key exists (reading it claims nothing)."""
        row = await self._read_one(
            "SELECT claim_key FROM claims WHERE namespace = ? AND claim_key = ? AND expires_at > ?",
            (namespace, key, self._time(now)),
        )
        return row is not None

    async def purge_claims(self, now: datetime) -> int:
        """Delete claims that expired at or before `now`; returns how many."""
        rows = await self._write("DELETE FROM claims WHERE expires_at <= ? RETURNING claim_key", (self._time(now),))
        return len(rows)

    # Sign-in in progress: flows of the authorization-code page, one-time codes handed back through Teams.

    async def save_sign_in_flow(self, state: str, user_key: str, flow: bytes, now: datetime, ttl: timedelta) -> None:
        """Record a pending sign-in flow (sealed by the caller) under its `state`, valid until `now + ttl`."""
        await self._write(
            "INSERT INTO sign_in_flows (state, user_key, flow, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
            (state, user_key, bytes(flow), self._time(now), self._time(now + positive(ttl, "ttl"))),
        )

    async def take_sign_in_flow(self, state: str, now: datetime) -> tuple[str, bytes] | None:
        """Remove and return (user_key, flow) of the unexpired flow; None when missing, expired or already taken."""
        rows = await self._write(
            "DELETE FROM sign_in_flows WHERE state = ? AND expires_at > ? RETURNING user_key, flow",
            (state, self._time(now)),
        )
        return (str(rows[0]["user_key"]), bytes(rows[0]["flow"])) if rows else None

    async def purge_sign_in_flows(self, now: datetime) -> int:
        """Delete flows that expired at or before `now`; returns how many."""
        rows = await self._write("DELETE FROM sign_in_flows WHERE expires_at <= ? RETURNING state", (self._time(now),))
        return len(rows)

    async def issue_sign_in_code(self, user_key: str, digest: str, now: datetime, ttl: timedelta) -> None:
        """Record the digest of the user's new one-time code (replacing an earlier one), valid until `now + ttl`."""
        await self._write(
            """INSERT INTO sign_in_codes (user_key, digest, wrong_guesses, issued_at, expires_at)
               VALUES (?, ?, 0, ?, ?)
               ON CONFLICT (user_key) DO UPDATE SET digest = EXCLUDED.digest, wrong_guesses = 0,
                   issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at""",
            (user_key, digest, self._time(now), self._time(now + positive(ttl, "ttl"))),
        )

    async def redeem_sign_in_code(self, user_key: str, digest: str, now: datetime, max_wrong: int) -> bool:
        """True once, when `digest` is the user's unexpired code and fewer than `max_wrong` wrong guesses were
        made; the code is then used up. Any other digest counts as a wrong guess against the user's code."""
        redeemed = await self._write(
            """DELETE FROM sign_in_codes
               WHERE user_key = ? AND digest = ? AND expires_at > ? AND wrong_guesses < ?
               RETURNING user_key""",
            (user_key, digest, self._time(now), positive_limit(max_wrong)),
        )
        if redeemed:
            return True
        await self._write(
            "UPDATE sign_in_codes SET wrong_guesses = wrong_guesses + 1 WHERE user_key = ? RETURNING user_key",
            (user_key,),
        )
        return False

    async def purge_sign_in_codes(self, now: datetime) -> int:
        """Delete codes that expired at or before `now`; returns how many."""
        rows = await self._write(
            "DELETE FROM sign_in_codes WHERE expires_at <= ? RETURNING user_key", (self._time(now),)
        )
        return len(rows)

    # The grade outbox: a Graph write is recorded here before Graph is called.

    async def enqueue_outbox(self, new: NewOutboxEntry, now: datetime) -> tuple[OutboxEntry, bool]:
        """Record a pending write due at `now`. An existing key returns that entry unchanged and False."""
        moment = self._time(now)
        created = await self._write(
            """INSERT INTO outbox (idempotency_key, kind, teacher_id, tenant_id, class_id, assignment_id,
                   submission_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
               ON CONFLICT (idempotency_key) DO NOTHING
               RETURNING *""",
            (*self._values(new), moment, moment, moment),
        )
        if created:
            return from_row(OutboxEntry, created[0]), True
        # The conflicting entry is committed (a concurrent insert of the key made DO NOTHING wait for it).
        existing = await self.get_outbox_by_key(new.idempotency_key)
        if existing is None:
            raise StoreError("an outbox entry conflicted on its key but cannot be read back")
        return existing, False

    async def claim_outbox(self, entry_id: int, owner: str, now: datetime, lease: timedelta) -> OutboxEntry | None:
        """Take a pending entry, or an inflight one whose lease expired, for `owner` until `now + lease`.

        The entry becomes `inflight` and its `attempts` grows by one. None when the entry is finished, missing, or
        leased (by anyone, the same owner included) until after `now`.
        """
        moment = self._time(now)
        rows = await self._write(
            """UPDATE outbox SET status = 'inflight', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                   updated_at = ?
               WHERE id = ? AND (status = 'pending' OR (status = 'inflight' AND lease_until <= ?))
               RETURNING *""",
            (owner, self._time(now + positive(lease, "lease")), moment, entry_id, moment),
        )
        return from_row(OutboxEntry, rows[0]) if rows else None

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        """Pending entries due at or before `now` and inflight entries whose lease expired, oldest due first."""
        moment = self._time(now)
        rows = await self._read(
            """SELECT * FROM outbox
               WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'inflight' AND lease_until <= ?)
               ORDER BY CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, id
               LIMIT ?""",
            (moment, moment, positive_limit(limit)),
        )
        return [from_row(OutboxEntry, row) for row in rows]

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
        """Mark the entry done with Graph's result. False unless `owner` still holds it.

        A lease that ran out still belongs to its owner until another worker claims the entry, so a slow but
        successful attempt is recorded; once another worker has claimed it, the old owner gets False.
        """
        rows = await self._write(
            """UPDATE outbox SET status = 'done', result = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (self._json(result), self._time(now), entry_id, owner),
        )
        return bool(rows)

    async def retry_outbox(
        self, entry_id: int, owner: str, error: str, next_attempt_at: datetime, now: datetime
    ) -> bool:
        """Release the entry back to `pending`, due at `next_attempt_at`. False unless `owner` still holds it."""
        rows = await self._write(
            """UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, lease_owner = NULL,
                   lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (error, self._time(next_attempt_at), self._time(now), entry_id, owner),
        )
        return bool(rows)

    async def fail_outbox(
        self, entry_id: int, owner: str, error: str, now: datetime, status: OutboxFailure = "failed"
    ) -> bool:
        """Give up on the entry (`failed`, or `conflict` when Graph changed underneath). False unless owner holds it."""
        if status not in OUTBOX_FAILURES:
            raise ValueError(f"an outbox entry can only fail as 'failed' or 'conflict', not {status!r}")
        rows = await self._write(
            """UPDATE outbox SET status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (status, error, self._time(now), entry_id, owner),
        )
        return bool(rows)

    async def get_outbox(self, entry_id: int) -> OutboxEntry | None:
        row = await self._read_one("SELECT * FROM outbox WHERE id = ?", (entry_id,))
        return None if row is None else from_row(OutboxEntry, row)

    async def get_outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None:
        row = await self._read_one("SELECT * FROM outbox WHERE idempotency_key = ?", (idempotency_key,))
        return None if row is None else from_row(OutboxEntry, row)

    async def release_outbox(self, owner: str, now: datetime) -> list[int]:
        """Hand back every entry `owner` holds in flight (it is stopping): pending again, due at `now`, for any
        instance to resume; the attempt still counts. Returns their ids."""
        rows = await self._write(
            """UPDATE outbox SET status = 'pending', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
                   updated_at = ?
               WHERE status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (self._time(now), self._time(now), owner),
        )
        return sorted(int(row["id"]) for row in rows)

    async def pending_outbox_for(self, teacher_id: str) -> list[OutboxEntry]:
        """The teacher's unfinished (pending or inflight) entries, oldest first."""
        rows = await self._read(
            "SELECT * FROM outbox WHERE teacher_id = ? AND status IN ('pending', 'inflight') ORDER BY id",
            (teacher_id,),
        )
        return [from_row(OutboxEntry, row) for row in rows]

    async def outbox_backlog(self) -> OutboxBacklog:
        """How many entries are unfinished (pending or inflight) and when the oldest of them was recorded."""
        row = await self._read_one(
            """SELECT COUNT(*) AS depth, MIN(created_at) AS oldest_created_at FROM outbox
               WHERE status IN ('pending', 'inflight')"""
        )
        return OutboxBacklog(0, None) if row is None else from_row(OutboxBacklog, {**row, "depth": int(row["depth"])})

    async def purge_finished_outbox(self, before: datetime) -> int:
        """Delete done, failed and conflict entries last updated at or before `before`, except those of a
        submission that still has an unfinished entry (it checks them before writing); returns how many."""
        rows = await self._write(
            """DELETE FROM outbox
               WHERE status IN ('done', 'failed', 'conflict') AND updated_at <= ?
                   AND submission_id NOT IN (
                       SELECT submission_id FROM outbox WHERE status IN ('pending', 'inflight'))
               RETURNING id""",
            (self._time(before),),
        )
        # A notice about a purged write can no longer be given (nor one older than the retention).
        await self._write(
            """DELETE FROM owed_notices WHERE owed_at <= ? OR outbox_id NOT IN (SELECT id FROM outbox)
               RETURNING outbox_id""",
            (self._time(before),),
        )
        return len(rows)

    # Notices owed: a write outlived its invoke's answer ("Saving…"), so its teacher is told when it finishes.

    async def owe_notice(self, entry_id: int, now: datetime) -> None:
        """Remember that the teacher must be told how outbox entry `entry_id` ends (a repeat changes nothing)."""
        await self._write(
            "INSERT INTO owed_notices (outbox_id, owed_at) VALUES (?, ?) ON CONFLICT (outbox_id) DO NOTHING",
            (entry_id, self._time(now)),
        )

    async def owed_notices(self, limit: int) -> list[int]:
        """Outbox entry ids whose teacher is still owed a notice, oldest first."""
        rows = await self._read("SELECT outbox_id FROM owed_notices ORDER BY owed_at, outbox_id LIMIT ?", (limit,))
        return [int(row["outbox_id"]) for row in rows]

    async def settle_notice(self, entry_id: int) -> bool:
        """The teacher was told (or never can be); True when a notice was owed."""
        rows = await self._write("DELETE FROM owed_notices WHERE outbox_id = ? RETURNING outbox_id", (entry_id,))
        return bool(rows)

    # Audit log and undo.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord:
        rows = await self._write(
            """INSERT INTO audit_log (at, teacher_id, tenant_id, class_id, assignment_id, submission_id, action,
                   before_state, after_state, outbox_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               RETURNING *""",
            self._values(new),
        )
        if not rows:
            raise StoreError("an inserted audit record was not returned")
        return _audit(rows[0])

    async def last_undoable(self, teacher_id: str, actions: Collection[str]) -> AuditRecord | None:
        """The teacher's newest record of one of `actions` that has not been undone."""
        wanted = sorted(set(actions))
        if not wanted:
            return None
        marks = ", ".join("?" for _ in wanted)
        row = await self._read_one(
            f"""SELECT * FROM audit_log WHERE teacher_id = ? AND undone_at IS NULL AND action IN ({marks})
                ORDER BY at DESC, id DESC LIMIT 1""",
            (teacher_id, *wanted),
        )
        return None if row is None else _audit(row)

    async def mark_undone(self, audit_id: int, now: datetime) -> bool:
        """True the first time only."""
        rows = await self._write(
            "UPDATE audit_log SET undone_at = ? WHERE id = ? AND undone_at IS NULL RETURNING id",
            (self._time(now), audit_id),
        )
        return bool(rows)

    async def purge_audit(self, before: datetime) -> int:
        """Delete audit records made at or before `before` (past their retention); returns how many. What a
        purged record describes can no longer be undone."""
        rows = await self._write("DELETE FROM audit_log WHERE at <= ? RETURNING id", (self._time(before),))
        return len(rows)

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first."""
        filters = {"submission_id": submission_id, "teacher_id": teacher_id}
        given = {column: value for column, value in filters.items() if value is not None}
        # The column names are the fixed keys above; only the values are parameters.
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        rows = await self._read(
            f"SELECT * FROM audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT ?",
            (*given.values(), positive_limit(limit)),
        )
        return [_audit(row) for row in rows]

    # Reminder schedules, sent digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        """Insert or replace the schedule of `schedule.teacher_id`."""
        await self._upsert(
            "reminder_schedules", "teacher_id", schedule, days=self.INT_LIST_PARAM, class_ids=self.TEXT_LIST_PARAM
        )

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None:
        row = await self._read_one("SELECT * FROM reminder_schedules WHERE teacher_id = ?", (teacher_id,))
        return None if row is None else from_row(ReminderSchedule, row)

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        """Schedules ordered by teacher id."""
        rows = await self._read(
            "SELECT * FROM reminder_schedules WHERE enabled OR NOT ? ORDER BY teacher_id", (enabled_only,)
        )
        return [from_row(ReminderSchedule, row) for row in rows]

    async def record_digest(self, teacher_id: str, slot_key: str, now: datetime) -> bool:
        """True the first time a digest is recorded for (teacher, slot) across every instance; False after."""
        rows = await self._write(
            """INSERT INTO digests (teacher_id, slot_key, sent_at) VALUES (?, ?, ?)
               ON CONFLICT (teacher_id, slot_key) DO NOTHING RETURNING slot_key""",
            (teacher_id, slot_key, self._time(now)),
        )
        return bool(rows)

    async def digest_sent(self, teacher_id: str, slot_key: str) -> bool:
        row = await self._read_one(
            "SELECT slot_key FROM digests WHERE teacher_id = ? AND slot_key = ?", (teacher_id, slot_key)
        )
        return row is not None

    async def purge_digests(self, before: datetime) -> int:
        """Delete digest records sent at or before `before`; returns how many. A sweep looks a week back at most
        (and catches up 12 hours), so records older than that can never again stop a slot being sent twice."""
        rows = await self._write("DELETE FROM digests WHERE sent_at <= ? RETURNING slot_key", (self._time(before),))
        return len(rows)

    # The reminder sweep's waiting set per class.

    async def save_class_sweep(self, sweep: ClassSweep) -> None:
        """Insert or replace what the sweep knows about `sweep.class_id`."""
        await self._write(
            """INSERT INTO class_sweeps (class_id, waiting_set, full_at, swept_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (class_id) DO UPDATE SET waiting_set = EXCLUDED.waiting_set, full_at = EXCLUDED.full_at,
                   swept_at = EXCLUDED.swept_at""",
            self._values(sweep),
        )

    async def get_class_sweep(self, class_id: str) -> ClassSweep | None:
        row = await self._read_one("SELECT * FROM class_sweeps WHERE class_id = ?", (class_id,))
        return None if row is None else from_row(ClassSweep, row)

    async def purge_class_sweeps(self, before: datetime) -> int:
        """Delete the waiting sets of classes last swept at or before `before` (a sweep reads a class in full once
        its state is six days old anyway); returns how many."""
        rows = await self._write(
            "DELETE FROM class_sweeps WHERE swept_at <= ? RETURNING class_id", (self._time(before),)
        )
        return len(rows)

    # Leases: exactly one holder across instances.

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease if it is free or expired, or renew it if `holder` has it; held until `now + ttl`."""
        rows = await self._write(
            """INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
               WHERE leases.expires_at <= ? OR leases.holder = EXCLUDED.holder
               RETURNING holder""",
            (name, holder, self._time(now + positive(ttl, "ttl")), self._time(now)),
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up; False if `holder` did not have it."""
        rows = await self._write("DELETE FROM leases WHERE name = ? AND holder = ? RETURNING name", (name, holder))
        return bool(rows)

    # The seam each backend fills in.

    @abstractmethod
    async def _read(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run a query; rows come back with their columns decoded (datetimes, JSON, lists, booleans)."""

    @abstractmethod
    async def _write(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one changing statement atomically; returns what its RETURNING clause yields (or nothing)."""

    @abstractmethod
    def _time(self, moment: datetime) -> object:
        """An aware datetime as the backend stores it (in UTC)."""

    @abstractmethod
    def _json(self, value: object) -> object:
        """A JSON value as the backend stores it."""

    @abstractmethod
    def _list(self, values: list[Any]) -> object:
        """A sorted list as the backend stores it (see INT_LIST_PARAM and TEXT_LIST_PARAM)."""

    async def _upsert(self, table: str, key: str, record: DataclassInstance, **marks: str) -> None:
        """Insert `record` into `table`, whose columns are named as its fields, or replace the row with its `key`;
        `marks` gives a column a parameter marker other than `?` (a list's)."""
        columns = [field.name for field in fields(record)]
        await self._write(
            f"""INSERT INTO {table} ({", ".join(columns)}) VALUES ({", ".join(marks.get(c, "?") for c in columns)})
                ON CONFLICT ({key}) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != key)}""",
            self._values(record),
        )

    def _values(self, record: DataclassInstance) -> tuple[object, ...]:
        """The record's fields as the backend stores them, in declaration order: statements list columns in it."""
        return tuple(self._value(getattr(record, field.name)) for field in fields(record))

    def _value(self, value: object) -> object:
        if isinstance(value, datetime):
            return self._time(value)
        if isinstance(value, dict):
            return self._json(value)
        return self._list(sorted(value)) if isinstance(value, frozenset) else value

    async def _read_one(self, statement: str, params: Sequence[object] = ()) -> Row | None:
        rows = await self._read(statement, params)
        return rows[0] if rows else None


def _audit(row: Row) -> AuditRecord:
    return from_row(AuditRecord, row, before="before_state", after="after_state")
