"""SqliteStore: the embedded default backend on stdlib sqlite3, one connection driven by one dedicated thread.

Several processes (or Store objects) may share one file: WAL journal, a busy timeout, and every write runs in
BEGIN IMMEDIATE so writers queue for the lock up front instead of failing on a lock upgrade.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from storage.migrations import MIGRATIONS, SQLITE_VERSION_TABLE, Migration, missing_steps
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
from storage.rows import (
    Row,
    audit_from_row,
    conversation_from_row,
    failure_status,
    outbox_from_row,
    positive,
    positive_limit,
    profile_from_row,
    schedule_from_row,
    utc,
)
from storage.store import Store, StoreClosedError, StoreError

MEMORY = ":memory:"
DEFAULT_BUSY_TIMEOUT = timedelta(seconds=10)
_WAL_SWITCH_RETRY = timedelta(milliseconds=5)

# Columns are decoded by name, so a name means the same type in every table.
_TIME_COLUMNS = frozenset(
    {
        "updated_at",
        "claimed_at",
        "expires_at",
        "next_attempt_at",
        "created_at",
        "lease_until",
        "at",
        "undone_at",
        "snoozed_until",
        "paused_at",
        "sent_at",
    }
)
_JSON_COLUMNS = frozenset({"reference", "payload", "result", "before_state", "after_state", "days", "class_ids"})

_T = TypeVar("_T")


def _time(moment: datetime) -> str:
    """Fixed-width ISO 8601 in UTC, so comparing the text compares the instants."""
    return utc(moment).isoformat(timespec="microseconds")


def _optional_time(moment: datetime | None) -> str | None:
    return None if moment is None else _time(moment)


def _json(value: object) -> str:
    return json.dumps(value, allow_nan=False, separators=(",", ":"))


def _decode_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column, value in zip(cursor.description, values, strict=True):
        name = column[0]
        if value is not None and name in _TIME_COLUMNS:
            value = datetime.fromisoformat(value)
        elif value is not None and name in _JSON_COLUMNS:
            value = json.loads(value)
        row[name] = value
    return row


@contextmanager
def _immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that takes the database's write lock at BEGIN (waiting up to the busy timeout)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _use_wal(connection: sqlite3.Connection, busy_timeout: timedelta) -> None:
    """Switch to WAL; SQLite answers BUSY at once (no busy handler) while another opener makes the same switch."""
    deadline = time.monotonic() + busy_timeout.total_seconds()
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(_WAL_SWITCH_RETRY.total_seconds())


def _connect(path: str, busy_timeout: timedelta) -> sqlite3.Connection:
    if path != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=busy_timeout.total_seconds(), isolation_level=None)
    try:
        connection.row_factory = _decode_row
        _use_wal(connection, busy_timeout)
        connection.execute("PRAGMA synchronous = FULL")
    except BaseException:
        connection.close()
        raise
    return connection


def _migrate(connection: sqlite3.Connection, migrations: Sequence[Migration]) -> None:
    with _immediate(connection):
        connection.execute(SQLITE_VERSION_TABLE)
        current = connection.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version").fetchone()
        for step in missing_steps(migrations, int(current["version"])):
            for statement in step.sqlite:
                connection.execute(statement)
            connection.execute("INSERT INTO schema_version (version, name) VALUES (?, ?)", (step.version, step.name))


class SqliteStore(Store):
    """The Store on one SQLite file (or `:memory:`, private to this object). Open with `await SqliteStore.open()`."""

    def __init__(self, connection: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._connection = connection
        self._executor = executor
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        busy_timeout: timedelta = DEFAULT_BUSY_TIMEOUT,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> SqliteStore:
        """Connect (creating the file and its folder if needed) and apply missing migrations."""
        positive(busy_timeout, "busy_timeout")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradebot-sqlite")
        loop = asyncio.get_running_loop()
        try:
            connection = await loop.run_in_executor(executor, _connect, str(path), busy_timeout)
        except sqlite3.Error as error:
            executor.shutdown()
            raise StoreError(f"cannot open the SQLite database: {error}") from error
        except BaseException:
            executor.shutdown()
            raise
        store = cls(connection, executor)
        try:
            await store._call(lambda conn: _migrate(conn, migrations))
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._connection.close)
        finally:
            self._executor.shutdown()

    async def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` on the store's thread, which alone touches the connection."""
        if self._closed:
            raise StoreClosedError("the SQLite store is closed")
        connection = self._connection
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, connection)
        except sqlite3.Error as error:
            raise StoreError(f"SQLite operation failed: {error}") from error

    async def _read(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return await self._call(lambda conn: conn.execute(sql, params).fetchall())

    async def _read_one(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        rows = await self._read(sql, params)
        return rows[0] if rows else None

    async def _write(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        def work(conn: sqlite3.Connection) -> list[Row]:
            with _immediate(conn):
                return conn.execute(sql, params).fetchall()

        return await self._call(work)

    async def schema_version(self) -> int:
        row = await self._read_one("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
        return 0 if row is None else int(row["version"])

    # Conversations.

    async def save_conversation(self, record: ConversationRecord) -> None:
        await self._write(
            """INSERT INTO conversations (conversation_id, kind, tenant_id, service_url, bot_id, user_aad_id, team_id,
                   class_id, reference, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (conversation_id) DO UPDATE SET kind = excluded.kind, tenant_id = excluded.tenant_id,
                   service_url = excluded.service_url, bot_id = excluded.bot_id, user_aad_id = excluded.user_aad_id,
                   team_id = excluded.team_id, class_id = excluded.class_id, reference = excluded.reference,
                   updated_at = excluded.updated_at""",
            (
                record.conversation_id,
                record.kind,
                record.tenant_id,
                record.service_url,
                record.bot_id,
                record.user_aad_id,
                record.team_id,
                record.class_id,
                _json(record.reference),
                _time(record.updated_at),
            ),
        )

    async def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        row = await self._read_one("SELECT * FROM conversations WHERE conversation_id = ?", (conversation_id,))
        return None if row is None else conversation_from_row(row)

    async def personal_conversation(self, user_aad_id: str) -> ConversationRecord | None:
        row = await self._read_one(
            """SELECT * FROM conversations WHERE kind = 'personal' AND user_aad_id = ?
               ORDER BY updated_at DESC, conversation_id DESC LIMIT 1""",
            (user_aad_id,),
        )
        return None if row is None else conversation_from_row(row)

    async def team_conversation(self, class_id: str) -> ConversationRecord | None:
        row = await self._read_one(
            """SELECT * FROM conversations WHERE kind = 'channel' AND class_id = ?
               ORDER BY updated_at DESC, conversation_id DESC LIMIT 1""",
            (class_id,),
        )
        return None if row is None else conversation_from_row(row)

    async def set_class_choice(self, conversation_id: str, class_id: str, now: datetime) -> None:
        await self._write(
            """INSERT INTO class_choices (conversation_id, class_id, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (conversation_id) DO UPDATE SET class_id = excluded.class_id,
                   updated_at = excluded.updated_at""",
            (conversation_id, class_id, _time(now)),
        )

    async def get_class_choice(self, conversation_id: str) -> str | None:
        row = await self._read_one("SELECT class_id FROM class_choices WHERE conversation_id = ?", (conversation_id,))
        return None if row is None else str(row["class_id"])

    # Token caches and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime) -> None:
        await self._write(
            """INSERT INTO token_caches (user_key, blob, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (user_key) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at""",
            (user_key, bytes(blob), _time(now)),
        )

    async def load_token_cache(self, user_key: str) -> bytes | None:
        row = await self._read_one("SELECT blob FROM token_caches WHERE user_key = ?", (user_key,))
        return None if row is None else bytes(row["blob"])

    async def delete_token_cache(self, user_key: str) -> bool:
        return bool(await self._write("DELETE FROM token_caches WHERE user_key = ? RETURNING user_key", (user_key,)))

    async def save_user_profile(self, profile: UserProfile) -> None:
        await self._write(
            """INSERT INTO user_profiles (user_aad_id, tenant_id, upn, timezone, teams_id, service_url, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (user_aad_id) DO UPDATE SET tenant_id = excluded.tenant_id, upn = excluded.upn,
                   timezone = excluded.timezone, teams_id = excluded.teams_id, service_url = excluded.service_url,
                   updated_at = excluded.updated_at""",
            (
                profile.user_aad_id,
                profile.tenant_id,
                profile.upn,
                profile.timezone,
                profile.teams_id,
                profile.service_url,
                _time(profile.updated_at),
            ),
        )

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None:
        row = await self._read_one("SELECT * FROM user_profiles WHERE user_aad_id = ?", (user_aad_id,))
        return None if row is None else profile_from_row(row)

    # Claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
        rows = await self._write(
            """INSERT INTO claims (namespace, claim_key, claimed_at, expires_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (namespace, claim_key) DO UPDATE SET claimed_at = excluded.claimed_at,
                   expires_at = excluded.expires_at
               WHERE claims.expires_at <= excluded.claimed_at
               RETURNING claim_key""",
            (namespace, key, _time(now), _time(now + positive(ttl, "ttl"))),
        )
        return bool(rows)

    async def purge_claims(self, now: datetime) -> int:
        return len(await self._write("DELETE FROM claims WHERE expires_at <= ? RETURNING claim_key", (_time(now),)))

    # Outbox.

    async def enqueue_outbox(self, new: NewOutboxEntry, now: datetime) -> tuple[OutboxEntry, bool]:
        params = (
            new.idempotency_key,
            new.kind,
            new.teacher_id,
            new.tenant_id,
            new.class_id,
            new.assignment_id,
            new.submission_id,
            _json(new.payload),
            _time(now),
        )

        def work(conn: sqlite3.Connection) -> tuple[Row, bool]:
            with _immediate(conn):
                created = conn.execute(
                    """INSERT INTO outbox (idempotency_key, kind, teacher_id, tenant_id, class_id, assignment_id,
                           submission_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
                       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', 0, ?9, ?9, ?9)
                       ON CONFLICT (idempotency_key) DO NOTHING
                       RETURNING *""",
                    params,
                ).fetchone()
                if created is not None:
                    return created, True
                existing = conn.execute("SELECT * FROM outbox WHERE idempotency_key = ?", (new.idempotency_key,))
                return existing.fetchone(), False

        row, created = await self._call(work)
        return outbox_from_row(row), created

    async def claim_outbox(self, entry_id: int, owner: str, now: datetime, lease: timedelta) -> OutboxEntry | None:
        rows = await self._write(
            """UPDATE outbox SET status = 'inflight', lease_owner = ?1, lease_until = ?2, attempts = attempts + 1,
                   updated_at = ?3
               WHERE id = ?4 AND (status = 'pending' OR (status = 'inflight' AND lease_until <= ?3))
               RETURNING *""",
            (owner, _time(now + positive(lease, "lease")), _time(now), entry_id),
        )
        return outbox_from_row(rows[0]) if rows else None

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        rows = await self._read(
            """SELECT * FROM outbox
               WHERE (status = 'pending' AND next_attempt_at <= ?1) OR (status = 'inflight' AND lease_until <= ?1)
               ORDER BY CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, id
               LIMIT ?2""",
            (_time(now), positive_limit(limit)),
        )
        return [outbox_from_row(row) for row in rows]

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
        rows = await self._write(
            """UPDATE outbox SET status = 'done', result = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (_json(result), _time(now), entry_id, owner),
        )
        return bool(rows)

    async def retry_outbox(
        self, entry_id: int, owner: str, error: str, next_attempt_at: datetime, now: datetime
    ) -> bool:
        rows = await self._write(
            """UPDATE outbox SET status = 'pending', last_error = ?, next_attempt_at = ?, lease_owner = NULL,
                   lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (error, _time(next_attempt_at), _time(now), entry_id, owner),
        )
        return bool(rows)

    async def fail_outbox(
        self, entry_id: int, owner: str, error: str, now: datetime, status: OutboxFailure = "failed"
    ) -> bool:
        rows = await self._write(
            """UPDATE outbox SET status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (failure_status(status), error, _time(now), entry_id, owner),
        )
        return bool(rows)

    async def get_outbox(self, entry_id: int) -> OutboxEntry | None:
        row = await self._read_one("SELECT * FROM outbox WHERE id = ?", (entry_id,))
        return None if row is None else outbox_from_row(row)

    async def get_outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None:
        row = await self._read_one("SELECT * FROM outbox WHERE idempotency_key = ?", (idempotency_key,))
        return None if row is None else outbox_from_row(row)

    async def pending_outbox_for(self, teacher_id: str) -> list[OutboxEntry]:
        rows = await self._read(
            "SELECT * FROM outbox WHERE teacher_id = ? AND status IN ('pending', 'inflight') ORDER BY id",
            (teacher_id,),
        )
        return [outbox_from_row(row) for row in rows]

    # Audit log.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord:
        rows = await self._write(
            """INSERT INTO audit_log (at, teacher_id, tenant_id, class_id, assignment_id, submission_id, action,
                   before_state, after_state, outbox_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               RETURNING *""",
            (
                _time(new.at),
                new.teacher_id,
                new.tenant_id,
                new.class_id,
                new.assignment_id,
                new.submission_id,
                new.action,
                _json(new.before),
                _json(new.after),
                new.outbox_key,
            ),
        )
        return audit_from_row(rows[0])

    async def last_undoable(self, teacher_id: str, actions: Collection[str]) -> AuditRecord | None:
        wanted = sorted(set(actions))
        if not wanted:
            return None
        marks = ", ".join("?" for _ in wanted)
        row = await self._read_one(
            f"""SELECT * FROM audit_log WHERE teacher_id = ? AND undone_at IS NULL AND action IN ({marks})
                ORDER BY at DESC, id DESC LIMIT 1""",
            (teacher_id, *wanted),
        )
        return None if row is None else audit_from_row(row)

    async def mark_undone(self, audit_id: int, now: datetime) -> bool:
        rows = await self._write(
            "UPDATE audit_log SET undone_at = ? WHERE id = ? AND undone_at IS NULL RETURNING id",
            (_time(now), audit_id),
        )
        return bool(rows)

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        filters = {"submission_id": submission_id, "teacher_id": teacher_id}
        given = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        rows = await self._read(
            f"SELECT * FROM audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT ?",
            (*given.values(), positive_limit(limit)),
        )
        return [audit_from_row(row) for row in rows]

    # Reminder schedules and digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        await self._write(
            """INSERT INTO reminder_schedules (teacher_id, tenant_id, enabled, days, local_time, timezone,
                   quiet_start, quiet_end, class_ids, min_waiting, min_age_days, snoozed_until, paused_reason,
                   paused_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (teacher_id) DO UPDATE SET tenant_id = excluded.tenant_id, enabled = excluded.enabled,
                   days = excluded.days, local_time = excluded.local_time, timezone = excluded.timezone,
                   quiet_start = excluded.quiet_start, quiet_end = excluded.quiet_end,
                   class_ids = excluded.class_ids, min_waiting = excluded.min_waiting,
                   min_age_days = excluded.min_age_days, snoozed_until = excluded.snoozed_until,
                   paused_reason = excluded.paused_reason, paused_at = excluded.paused_at,
                   updated_at = excluded.updated_at""",
            (
                schedule.teacher_id,
                schedule.tenant_id,
                1 if schedule.enabled else 0,
                _json(sorted(schedule.days)),
                schedule.local_time,
                schedule.timezone,
                schedule.quiet_start,
                schedule.quiet_end,
                _json(sorted(schedule.class_ids)),
                schedule.min_waiting,
                schedule.min_age_days,
                _optional_time(schedule.snoozed_until),
                schedule.paused_reason,
                _optional_time(schedule.paused_at),
                _time(schedule.updated_at),
            ),
        )

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None:
        row = await self._read_one("SELECT * FROM reminder_schedules WHERE teacher_id = ?", (teacher_id,))
        return None if row is None else schedule_from_row(row)

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        rows = await self._read(
            "SELECT * FROM reminder_schedules WHERE enabled = 1 OR ? = 0 ORDER BY teacher_id",
            (1 if enabled_only else 0,),
        )
        return [schedule_from_row(row) for row in rows]

    async def delete_schedule(self, teacher_id: str) -> bool:
        rows = await self._write(
            "DELETE FROM reminder_schedules WHERE teacher_id = ? RETURNING teacher_id", (teacher_id,)
        )
        return bool(rows)

    async def record_digest(self, teacher_id: str, slot_key: str, now: datetime) -> bool:
        rows = await self._write(
            """INSERT INTO digests (teacher_id, slot_key, sent_at) VALUES (?, ?, ?)
               ON CONFLICT (teacher_id, slot_key) DO NOTHING RETURNING slot_key""",
            (teacher_id, slot_key, _time(now)),
        )
        return bool(rows)

    async def digest_sent(self, teacher_id: str, slot_key: str) -> bool:
        row = await self._read_one(
            "SELECT slot_key FROM digests WHERE teacher_id = ? AND slot_key = ?", (teacher_id, slot_key)
        )
        return row is not None

    async def last_digest(self, teacher_id: str) -> tuple[str, datetime] | None:
        row = await self._read_one(
            "SELECT slot_key, sent_at FROM digests WHERE teacher_id = ? ORDER BY sent_at DESC, slot_key DESC LIMIT 1",
            (teacher_id,),
        )
        return None if row is None else (str(row["slot_key"]), utc(row["sent_at"]))

    # Leases.

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        rows = await self._write(
            """INSERT INTO leases (name, holder, expires_at) VALUES (?1, ?2, ?3)
               ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
               WHERE leases.expires_at <= ?4 OR leases.holder = excluded.holder
               RETURNING holder""",
            (name, holder, _time(now + positive(ttl, "ttl")), _time(now)),
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> bool:
        rows = await self._write("DELETE FROM leases WHERE name = ? AND holder = ? RETURNING name", (name, holder))
        return bool(rows)

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        row = await self._read_one("SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, _time(now)))
        return None if row is None else str(row["holder"])

    # Key/value state.

    async def get_value(self, key: str) -> str | None:
        row = await self._read_one("SELECT item_value FROM key_values WHERE item_key = ?", (key,))
        return None if row is None else str(row["item_value"])

    async def set_value(self, key: str, value: str, now: datetime) -> None:
        await self._write(
            """INSERT INTO key_values (item_key, item_value, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (item_key) DO UPDATE SET item_value = excluded.item_value,
                   updated_at = excluded.updated_at""",
            (key, value, _time(now)),
        )
