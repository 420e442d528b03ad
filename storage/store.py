"""The Store: every piece of durable state Gradebot keeps, in one abstract class that is both contract and SQL. Both
backends speak SQL, so each method is written once, its contract beside its statement; a backend fills in only the
seam. Callers pass the clock in (`now`); a store never reads it."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import fields
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, get_args

from storage.records import (
    AuditRecord,
    ClassSweep,
    ConversationRecord,
    JsonObject,
    NewAuditRecord,
    NewOutboxEntry,
    OutboxBacklog,
    OutboxEntry,
    OutboxFailure,
    RecordT,
    ReminderSchedule,
    Row,
    UserProfile,
    from_row,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version, name) VALUES (?, ?)"
_UNFINISHED = "status IN ('pending', 'inflight')"


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


class Store(AbstractAsyncContextManager["Store"]):
    """Durable state shared by every Gradebot instance that opens the same database.

    Usable as `async with store:`; closing twice is harmless. Unless a method says otherwise, "not found" is None.
    Statements mark every parameter with `?` and use `?` nowhere else.
    """

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @abstractmethod
    async def close(self) -> None: ...

    async def check(self) -> int:
        """A cheap round trip proving the database is there (for readiness): the newest migration applied to it.
        StoreError when it cannot be reached."""
        return int((await self._sql(CURRENT_VERSION))[0]["version"])

    # Conversation references and the class chosen in each conversation.

    async def save_conversation(self, record: ConversationRecord) -> None:
        """Insert or replace the conversation with this id."""
        await self._upsert("conversations", **_columns(record))

    async def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        return await self._first(ConversationRecord, "conversations WHERE conversation_id = ?", (conversation_id,))

    async def personal_conversation(self, user_aad_id: str) -> ConversationRecord | None:
        """The most recently updated personal (1:1) chat with this user."""
        query = """conversations WHERE kind = 'personal' AND user_aad_id = ?
                   ORDER BY updated_at DESC, conversation_id DESC"""
        return await self._first(ConversationRecord, query, (user_aad_id,))

    async def set_class_choice(self, conversation_id: str, class_id: str, now: datetime) -> None:
        await self._upsert("class_choices", conversation_id=conversation_id, class_id=class_id, updated_at=now)

    async def get_class_choice(self, conversation_id: str) -> str | None:
        rows = await self._sql("SELECT class_id FROM class_choices WHERE conversation_id = ?", (conversation_id,))
        return str(rows[0]["class_id"]) if rows else None

    # Per-user token caches (encrypted by the caller) and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime, key_id: str = "") -> None:
        """Insert or replace the user's cache; `key_id` names the key that sealed it ("" = not recorded)."""
        await self._upsert("token_caches", user_key=user_key, blob=bytes(blob), updated_at=now, key_id=key_id)

    async def load_token_cache(self, user_key: str) -> bytes | None:
        rows = await self._sql("SELECT blob FROM token_caches WHERE user_key = ?", (user_key,))
        return bytes(rows[0]["blob"]) if rows else None

    async def delete_token_cache(self, user_key: str) -> bool:
        """True when a cache was deleted."""
        return bool(await self._sql("DELETE FROM token_caches WHERE user_key = ? RETURNING user_key", (user_key,)))

    async def token_cache_key_ids(self) -> dict[str, int]:
        """How many caches each key id sealed."""
        rows = await self._sql("SELECT key_id, COUNT(*) AS caches FROM token_caches GROUP BY key_id")
        return {str(row["key_id"]): int(row["caches"]) for row in rows}

    async def token_caches_sealed_with(self, key_id: str, limit: int) -> list[tuple[str, bytes]]:
        """(user_key, blob) of up to `limit` caches sealed with `key_id`, most recently saved first."""
        statement = """SELECT user_key, blob FROM token_caches WHERE key_id = ?
            ORDER BY updated_at DESC, user_key LIMIT ?"""
        rows = await self._sql(statement, (key_id, positive_limit(limit)))
        return [(str(row["user_key"]), bytes(row["blob"])) for row in rows]

    async def save_user_profile(self, profile: UserProfile) -> None:
        """Insert or replace the profile of `profile.user_aad_id`."""
        await self._upsert("user_profiles", **_columns(profile))

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None:
        return await self._first(UserProfile, "user_profiles WHERE user_aad_id = ?", (user_aad_id,))

    # Once-only claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
        """True for the first caller across every instance; False while an unexpired claim on the key exists."""
        statement = """INSERT INTO claims (namespace, claim_key, claimed_at, expires_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (namespace, claim_key) DO UPDATE SET claimed_at = EXCLUDED.claimed_at,
                expires_at = EXCLUDED.expires_at WHERE claims.expires_at <= EXCLUDED.claimed_at
            RETURNING claim_key"""
        return bool(await self._sql(statement, (namespace, key, now, now + positive(ttl, "ttl"))))

    async def claimed(self, namespace: str, key: str, now: datetime) -> bool:
        """True while an unexpired claim on the key exists (reading it claims nothing)."""
        statement = "SELECT claim_key FROM claims WHERE namespace = ? AND claim_key = ? AND expires_at > ?"
        return bool(await self._sql(statement, (namespace, key, now)))

    async def purge_claims(self, now: datetime) -> int:
        """Delete claims that expired at or before `now`; returns how many."""
        return await self._purge("claims", "expires_at", now)

    # Sign-in in progress: flows of the authorization-code page, one-time codes handed back through Teams.

    async def save_sign_in_flow(self, state: str, user_key: str, flow: bytes, now: datetime, ttl: timedelta) -> None:
        """Record a pending sign-in flow (sealed by the caller) under its `state`, valid until `now + ttl`."""
        statement = "INSERT INTO sign_in_flows (state, user_key, flow, created_at, expires_at) VALUES (?, ?, ?, ?, ?)"
        await self._sql(statement, (state, user_key, bytes(flow), now, now + positive(ttl, "ttl")))

    async def take_sign_in_flow(self, state: str, now: datetime) -> tuple[str, bytes] | None:
        """Remove and return (user_key, flow) of the unexpired flow; None when missing, expired or already taken."""
        statement = "DELETE FROM sign_in_flows WHERE state = ? AND expires_at > ? RETURNING user_key, flow"
        rows = await self._sql(statement, (state, now))
        return (str(rows[0]["user_key"]), bytes(rows[0]["flow"])) if rows else None

    async def purge_sign_in_flows(self, now: datetime) -> int:
        """Delete flows that expired at or before `now`; returns how many."""
        return await self._purge("sign_in_flows", "expires_at", now)

    async def issue_sign_in_code(self, user_key: str, digest: str, now: datetime, ttl: timedelta) -> None:
        """Record the digest of the user's new one-time code (replacing an earlier one), valid until `now + ttl`."""
        expires_at = now + positive(ttl, "ttl")
        await self._upsert(
            "sign_in_codes", user_key=user_key, digest=digest, wrong_guesses=0, issued_at=now, expires_at=expires_at
        )

    async def redeem_sign_in_code(self, user_key: str, digest: str, now: datetime, max_wrong: int) -> bool:
        """True once, when `digest` is the user's unexpired code and fewer than `max_wrong` wrong guesses were
        made; the code is then used up. Any other digest counts as a wrong guess against the user's code."""
        use_up = """DELETE FROM sign_in_codes WHERE user_key = ? AND digest = ? AND expires_at > ? AND wrong_guesses < ?
            RETURNING user_key"""
        if await self._sql(use_up, (user_key, digest, now, positive_limit(max_wrong))):
            return True
        await self._sql("UPDATE sign_in_codes SET wrong_guesses = wrong_guesses + 1 WHERE user_key = ?", (user_key,))
        return False

    async def purge_sign_in_codes(self, now: datetime) -> int:
        """Delete codes that expired at or before `now`; returns how many."""
        return await self._purge("sign_in_codes", "expires_at", now)

    # The grade outbox: a Graph write is recorded here before Graph is called.

    async def enqueue_outbox(
        self, new: NewOutboxEntry, now: datetime, due: datetime | None = None
    ) -> tuple[OutboxEntry, bool]:
        """Record a pending write, due at `due` (default `now`). An existing key returns that entry unchanged and
        False."""
        statement = """INSERT INTO outbox (idempotency_key, kind, teacher_id, tenant_id, class_id, assignment_id,
                submission_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
            ON CONFLICT (idempotency_key) DO NOTHING RETURNING *"""
        created = await self._sql(statement, (*_columns(new).values(), due or now, now, now))
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
        leased (by anyone, the same owner included) until after `now` — or while another owner's lease holds an
        earlier write to the same submission: its request may still land, and must not land over this one.
        """
        statement = """UPDATE outbox SET status = 'inflight', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                updated_at = ?
            WHERE id = ? AND (status = 'pending' OR (status = 'inflight' AND lease_until <= ?))
                AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.submission_id = outbox.submission_id
                    AND earlier.id < outbox.id AND earlier.status = 'inflight' AND earlier.lease_until > ?
                    AND earlier.lease_owner <> ?)
            RETURNING *"""
        rows = await self._sql(statement, (owner, now + positive(lease, "lease"), now, entry_id, now, now, owner))
        return from_row(OutboxEntry, rows[0]) if rows else None

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        """Pending entries due at or before `now` and inflight entries whose lease expired, oldest due first."""
        query = """outbox WHERE (status = 'pending' AND next_attempt_at <= ?)
                OR (status = 'inflight' AND lease_until <= ?)
            ORDER BY CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, id LIMIT ?"""
        return await self._all(OutboxEntry, query, (now, now, positive_limit(limit)))

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
        """Mark the entry done with Graph's result. False unless `owner` still holds it.

        A lease that ran out still belongs to its owner until another worker claims the entry, so a slow but
        successful attempt is recorded; once another worker has claimed it, the old owner gets False.
        """
        return await self._let_go(entry_id, owner, now, "status = 'done', result = ?", (result,))

    async def retry_outbox(
        self, entry_id: int, owner: str, error: str, next_attempt_at: datetime, now: datetime
    ) -> bool:
        """Release the entry back to `pending`, due at `next_attempt_at`. False unless `owner` still holds it."""
        changes = "status = 'pending', last_error = ?, next_attempt_at = ?"
        return await self._let_go(entry_id, owner, now, changes, (error, next_attempt_at))

    async def fail_outbox(
        self, entry_id: int, owner: str, error: str, now: datetime, status: OutboxFailure = "failed"
    ) -> bool:
        """Give up on the entry (`failed`, or `conflict` when Graph changed underneath). False unless owner holds it."""
        if status not in get_args(OutboxFailure):
            raise ValueError(f"an outbox entry can only fail as 'failed' or 'conflict', not {status!r}")
        return await self._let_go(entry_id, owner, now, "status = ?, last_error = ?", (status, error))

    async def get_outbox(self, entry_id: int) -> OutboxEntry | None:
        return await self._first(OutboxEntry, "outbox WHERE id = ?", (entry_id,))

    async def get_outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None:
        return await self._first(OutboxEntry, "outbox WHERE idempotency_key = ?", (idempotency_key,))

    async def release_outbox(self, owner: str, now: datetime, until: datetime) -> list[int]:
        """Hand back every entry `owner` holds in flight (it is stopping): its lease ends at `until`, when any
        instance may resume it (a request cut off may land until then); the attempt still counts. Returns their
        ids."""
        statement = """UPDATE outbox SET lease_until = ?, updated_at = ?
            WHERE status = 'inflight' AND lease_owner = ? RETURNING id"""
        rows = await self._sql(statement, (until, now, owner))
        return sorted(int(row["id"]) for row in rows)

    async def pending_outbox_for(self, teacher_id: str) -> list[OutboxEntry]:
        """The teacher's unfinished (pending or inflight) entries, oldest first."""
        return await self._all(OutboxEntry, f"outbox WHERE teacher_id = ? AND {_UNFINISHED} ORDER BY id", (teacher_id,))

    async def outbox_backlog(self) -> OutboxBacklog:
        """How many entries are unfinished (pending or inflight) and when the oldest of them was recorded."""
        statement = f"SELECT COUNT(*) AS depth, MIN(created_at) AS oldest_created_at FROM outbox WHERE {_UNFINISHED}"
        return from_row(OutboxBacklog, (await self._sql(statement))[0])

    async def purge_finished_outbox(self, before: datetime) -> int:
        """Delete done, failed and conflict entries last updated at or before `before`, except those of a
        submission that still has an unfinished entry (it checks them before writing); returns how many."""
        statement = f"""DELETE FROM outbox WHERE status IN ('done', 'failed', 'conflict') AND updated_at <= ?
            AND submission_id NOT IN (SELECT submission_id FROM outbox WHERE {_UNFINISHED}) RETURNING id"""
        rows = await self._sql(statement, (before,))
        # A notice about a purged write can no longer be given (nor one older than the retention).
        orphans = "DELETE FROM owed_notices WHERE owed_at <= ? OR outbox_id NOT IN (SELECT id FROM outbox)"
        await self._sql(orphans, (before,))
        return len(rows)

    # Notices owed: a write outlived its invoke's answer ("Saving…"), so its teacher is told when it finishes.

    async def owe_notice(self, entry_id: int, now: datetime) -> None:
        """Remember that the teacher must be told how outbox entry `entry_id` ends (a repeat changes nothing)."""
        statement = "INSERT INTO owed_notices (outbox_id, owed_at) VALUES (?, ?) ON CONFLICT (outbox_id) DO NOTHING"
        await self._sql(statement, (entry_id, now))

    async def owed_notices(self, limit: int) -> list[int]:
        """Outbox entry ids whose teacher is still owed a notice, oldest first."""
        rows = await self._sql("SELECT outbox_id FROM owed_notices ORDER BY owed_at, outbox_id LIMIT ?", (limit,))
        return [int(row["outbox_id"]) for row in rows]

    async def settle_notice(self, entry_id: int) -> bool:
        """The teacher was told (or never can be); True when a notice was owed."""
        return bool(await self._sql("DELETE FROM owed_notices WHERE outbox_id = ? RETURNING outbox_id", (entry_id,)))

    # Audit log and undo.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord:
        statement = """INSERT INTO audit_log (at, teacher_id, tenant_id, class_id, assignment_id, submission_id, action,
            before_state, after_state, outbox_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *"""
        rows = await self._sql(statement, tuple(_columns(new).values()))
        return _audit(rows[0])

    async def last_undoable(self, teacher_id: str, actions: Collection[str]) -> AuditRecord | None:
        """The teacher's newest record of one of `actions` that has not been undone."""
        wanted = sorted(set(actions))
        if not wanted:
            return None
        marks = ", ".join("?" for _ in wanted)
        statement = f"""SELECT * FROM audit_log WHERE teacher_id = ? AND undone_at IS NULL AND action IN ({marks})
            ORDER BY at DESC, id DESC LIMIT 1"""
        rows = await self._sql(statement, (teacher_id, *wanted))
        return _audit(rows[0]) if rows else None

    async def mark_undone(self, audit_id: int, now: datetime) -> bool:
        """True the first time only."""
        statement = "UPDATE audit_log SET undone_at = ? WHERE id = ? AND undone_at IS NULL RETURNING id"
        return bool(await self._sql(statement, (now, audit_id)))

    async def purge_audit(self, before: datetime) -> int:
        """Delete audit records made at or before `before` (past their retention); returns how many. What a
        purged record describes can no longer be undone."""
        return await self._purge("audit_log", "at", before)

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """Records matching every given filter, newest first."""
        filters = {"submission_id": submission_id, "teacher_id": teacher_id}
        given = {column: value for column, value in filters.items() if value is not None}
        # The column names are the fixed keys above; only the values are parameters.
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        statement = f"SELECT * FROM audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT ?"
        rows = await self._sql(statement, (*given.values(), positive_limit(limit)))
        return [_audit(row) for row in rows]

    # Reminder schedules, sent digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        """Insert or replace the schedule of `schedule.teacher_id`."""
        await self._upsert("reminder_schedules", **_columns(schedule))

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None:
        return await self._first(ReminderSchedule, "reminder_schedules WHERE teacher_id = ?", (teacher_id,))

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        """Schedules ordered by teacher id."""
        statement = "reminder_schedules WHERE enabled OR NOT ? ORDER BY teacher_id"
        return await self._all(ReminderSchedule, statement, (enabled_only,))

    async def record_digest(self, teacher_id: str, slot_key: str, now: datetime) -> bool:
        """True the first time a digest is recorded for (teacher, slot) across every instance; False after."""
        statement = """INSERT INTO digests (teacher_id, slot_key, sent_at) VALUES (?, ?, ?)
            ON CONFLICT (teacher_id, slot_key) DO NOTHING RETURNING slot_key"""
        return bool(await self._sql(statement, (teacher_id, slot_key, now)))

    async def digest_sent(self, teacher_id: str, slot_key: str) -> bool:
        statement = "SELECT slot_key FROM digests WHERE teacher_id = ? AND slot_key = ?"
        return bool(await self._sql(statement, (teacher_id, slot_key)))

    async def purge_digests(self, before: datetime) -> int:
        """Delete digest records sent at or before `before`; returns how many. A sweep looks a week back at most
        (and catches up 12 hours), so records older than that can never again stop a slot being sent twice."""
        return await self._purge("digests", "sent_at", before)

    # The reminder sweep's waiting set per class.

    async def save_class_sweep(self, sweep: ClassSweep) -> None:
        """Insert or replace what the sweep knows about `sweep.class_id`."""
        await self._upsert("class_sweeps", **_columns(sweep))

    async def get_class_sweep(self, class_id: str) -> ClassSweep | None:
        return await self._first(ClassSweep, "class_sweeps WHERE class_id = ?", (class_id,))

    async def purge_class_sweeps(self, before: datetime) -> int:
        """Delete the waiting sets of classes last swept at or before `before` (a sweep reads a class in full once
        its state is six days old anyway); returns how many."""
        return await self._purge("class_sweeps", "swept_at", before)

    # Leases: exactly one holder across instances.

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Take the lease if it is free or expired, or renew it if `holder` has it; held until `now + ttl`."""
        statement = """INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
            ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
            WHERE leases.expires_at <= ? OR leases.holder = EXCLUDED.holder RETURNING holder"""
        return bool(await self._sql(statement, (name, holder, now + positive(ttl, "ttl"), now)))

    async def release_lease(self, name: str, holder: str) -> bool:
        """Give the lease up; False if `holder` did not have it."""
        return bool(await self._sql("DELETE FROM leases WHERE name = ? AND holder = ? RETURNING name", (name, holder)))

    # The seam each backend fills in, and the helpers written on it.

    @abstractmethod
    async def _sql(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement atomically, its parameters stored as the backend stores them (aware datetimes in UTC,
        dicts as JSON, frozensets as sorted lists); returns its rows (or RETURNING's) with their columns decoded."""

    async def _first(self, record: type[RecordT], query: str, params: Sequence[object]) -> RecordT | None:
        """The first row of `SELECT * FROM {query}` as a `record`."""
        rows = await self._sql(f"SELECT * FROM {query} LIMIT 1", params)
        return from_row(record, rows[0]) if rows else None

    async def _all(self, record: type[RecordT], query: str, params: Sequence[object]) -> list[RecordT]:
        """Every row of `SELECT * FROM {query}` as a `record`."""
        return [from_row(record, row) for row in await self._sql(f"SELECT * FROM {query}", params)]

    async def _upsert(self, table: str, **values: object) -> None:
        """Insert a row of `values` into `table`, or replace the row with the same first value (its primary key)."""
        key, *others = values
        marks = ", ".join("?" for _ in values)
        statement = f"""INSERT INTO {table} ({", ".join(values)}) VALUES ({marks})
            ON CONFLICT ({key}) DO UPDATE SET {", ".join(f"{c} = EXCLUDED.{c}" for c in others)}"""
        await self._sql(statement, tuple(values.values()))

    async def _let_go(self, entry_id: int, owner: str, now: datetime, changes: str, values: tuple[object, ...]) -> bool:
        """Make `changes` to the entry and end its lease, if `owner` still holds it in flight; False when not."""
        statement = f"""UPDATE outbox SET {changes}, lease_owner = NULL, lease_until = NULL, updated_at = ?
            WHERE id = ? AND status = 'inflight' AND lease_owner = ? RETURNING id"""
        return bool(await self._sql(statement, (*values, now, entry_id, owner)))

    async def _purge(self, table: str, column: str, before: datetime) -> int:
        """Delete the rows of `table` whose `column` is at or before `before`; returns how many."""
        return len(await self._sql(f"DELETE FROM {table} WHERE {column} <= ? RETURNING 1", (before,)))


def _columns(record: DataclassInstance) -> dict[str, object]:
    """The record's fields by name, in declaration order (`asdict` without its deep copy)."""
    return {field.name: getattr(record, field.name) for field in fields(record)}


def _audit(row: Row) -> AuditRecord:
    return from_row(AuditRecord, {**row, "before": row["before_state"], "after": row["after_state"]})
