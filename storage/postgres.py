"""PostgresStore: the shared backend for several Gradebot instances, on psycopg 3 (async) and a connection pool.

Connections run in autocommit with the session time zone at UTC and `search_path` at the chosen schema. Every
decision that must hold across instances is one atomic statement (INSERT … ON CONFLICT …, UPDATE … WHERE … RETURNING).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import dict_row
from psycopg.types.json import Json
from psycopg_pool import AsyncConnectionPool

from storage.migrations import MIGRATIONS, POSTGRES_VERSION_TABLE, Migration, missing_steps
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
    optional_utc,
    outbox_from_row,
    positive,
    positive_limit,
    profile_from_row,
    schedule_from_row,
    utc,
)
from storage.store import Store, StoreClosedError, StoreError

DEFAULT_CONNECT_TIMEOUT = timedelta(seconds=10)
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

Params = Sequence[object] | Mapping[str, object]


def _json(value: object) -> Json:
    return Json(value, dumps=lambda obj: json.dumps(obj, allow_nan=False, separators=(",", ":")))


def valid_schema_name(schema: str) -> str:
    """A lowercase SQL identifier, so it needs no quoting anywhere (connection options included)."""
    if not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema must be a lowercase identifier (a-z, 0-9, _), got {schema!r}")
    return schema


def session_conninfo(conninfo: str, schema: str | None) -> str:
    """`conninfo` (URL or key=value) plus UTC and, when given, the schema as search_path."""
    options = conninfo_to_dict(conninfo).get("options")
    extra = "-c TimeZone=UTC" + ("" if schema is None else f" -c search_path={valid_schema_name(schema)}")
    params: dict[str, Any] = {"options": f"{options} {extra}" if options else extra}
    if "application_name" not in conninfo_to_dict(conninfo):
        params["application_name"] = "gradebot"
    return make_conninfo(conninfo, **params)


def _store_error(context: str, error: psycopg.Error) -> StoreError:
    """Class, SQLSTATE and primary message only: the server's DETAIL may quote a failing row (grades, feedback)."""
    primary = error.diag.message_primary
    if error.sqlstate and primary:
        return StoreError(f"{context}: {type(error).__name__} [{error.sqlstate}] {primary}")
    return StoreError(f"{context}: {type(error).__name__}: {error}")


def _safe_cause(error: psycopg.Error) -> psycopg.Error | None:
    """Chain client-side errors (connection, pool) for debugging; not server errors, whose text may hold data."""
    return None if error.sqlstate else error


def _lock_key(schema: str) -> int:
    """A stable advisory-lock id per schema, so openers of one schema queue and other schemas do not wait."""
    digest = hashlib.sha256(f"gradebot.migrations.{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def _migrate(
    connection: psycopg.AsyncConnection[Any], schema: str | None, migrations: Sequence[Migration]
) -> None:
    async with connection.transaction(), connection.cursor(row_factory=dict_row) as cursor:
        await cursor.execute("SELECT current_schema() AS name")
        row = await cursor.fetchone()
        target = schema if schema is not None else (row["name"] if row else None)
        if target is None:
            raise StoreError("the PostgreSQL search_path names no existing schema to migrate")
        await cursor.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(target),))
        await cursor.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (target,))
        if await cursor.fetchone() is None:
            await cursor.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(target)))
        await cursor.execute(POSTGRES_VERSION_TABLE)
        await cursor.execute("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
        current = await cursor.fetchone()
        for step in missing_steps(migrations, int(current["version"]) if current else 0):
            for statement in step.postgres:
                await cursor.execute(statement)
            await cursor.execute(
                "INSERT INTO schema_version (version, name) VALUES (%s, %s)", (step.version, step.name)
            )


class PostgresStore(Store):
    """The Store on a PostgreSQL database (optionally in one schema). Open with `await PostgresStore.open()`."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._closed = False

    @classmethod
    async def open(
        cls,
        conninfo: str,
        *,
        schema: str | None = None,
        max_connections: int = 10,
        connect_timeout: timedelta = DEFAULT_CONNECT_TIMEOUT,
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> PostgresStore:
        """Open a pool on `conninfo` (URL or key=value), create `schema` if missing, apply missing migrations."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        positive(connect_timeout, "connect_timeout")
        pool = AsyncConnectionPool(
            session_conninfo(conninfo, schema),
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            timeout=connect_timeout.total_seconds(),
            name="gradebot-store",
            open=False,
        )
        store = cls(pool)
        try:
            await pool.open(wait=True, timeout=connect_timeout.total_seconds())
            async with store._connection() as connection:
                await _migrate(connection, schema, migrations)
        except psycopg.Error as error:
            await store.close()
            raise _store_error("cannot open the PostgreSQL store", error) from _safe_cause(error)
        except BaseException:
            await store.close()
            raise
        return store

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._pool.close()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._closed:
            raise StoreClosedError("the PostgreSQL store is closed")
        try:
            async with self._pool.connection() as connection:
                yield connection
        except psycopg.Error as error:
            raise _store_error("PostgreSQL operation failed", error) from _safe_cause(error)

    async def _rows(self, query: str | sql.Composed, params: Params = ()) -> list[Row]:
        async with self._connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(query, params)
            if cursor.description is None:
                return []
            rows: list[Row] = list(await cursor.fetchall())
            return rows

    async def _row(self, query: str, params: Params = ()) -> Row | None:
        rows = await self._rows(query, params)
        return rows[0] if rows else None

    async def schema_version(self) -> int:
        row = await self._row("SELECT COALESCE(MAX(version), 0) AS version FROM schema_version")
        return 0 if row is None else int(row["version"])

    # Conversations.

    async def save_conversation(self, record: ConversationRecord) -> None:
        await self._rows(
            """INSERT INTO conversations (conversation_id, kind, tenant_id, service_url, bot_id, user_aad_id, team_id,
                   class_id, reference, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (conversation_id) DO UPDATE SET kind = EXCLUDED.kind, tenant_id = EXCLUDED.tenant_id,
                   service_url = EXCLUDED.service_url, bot_id = EXCLUDED.bot_id, user_aad_id = EXCLUDED.user_aad_id,
                   team_id = EXCLUDED.team_id, class_id = EXCLUDED.class_id, reference = EXCLUDED.reference,
                   updated_at = EXCLUDED.updated_at""",
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
                utc(record.updated_at),
            ),
        )

    async def get_conversation(self, conversation_id: str) -> ConversationRecord | None:
        row = await self._row("SELECT * FROM conversations WHERE conversation_id = %s", (conversation_id,))
        return None if row is None else conversation_from_row(row)

    async def personal_conversation(self, user_aad_id: str) -> ConversationRecord | None:
        row = await self._row(
            """SELECT * FROM conversations WHERE kind = 'personal' AND user_aad_id = %s
               ORDER BY updated_at DESC, conversation_id DESC LIMIT 1""",
            (user_aad_id,),
        )
        return None if row is None else conversation_from_row(row)

    async def team_conversation(self, class_id: str) -> ConversationRecord | None:
        row = await self._row(
            """SELECT * FROM conversations WHERE kind = 'channel' AND class_id = %s
               ORDER BY updated_at DESC, conversation_id DESC LIMIT 1""",
            (class_id,),
        )
        return None if row is None else conversation_from_row(row)

    async def set_class_choice(self, conversation_id: str, class_id: str, now: datetime) -> None:
        await self._rows(
            """INSERT INTO class_choices (conversation_id, class_id, updated_at) VALUES (%s, %s, %s)
               ON CONFLICT (conversation_id) DO UPDATE SET class_id = EXCLUDED.class_id,
                   updated_at = EXCLUDED.updated_at""",
            (conversation_id, class_id, utc(now)),
        )

    async def get_class_choice(self, conversation_id: str) -> str | None:
        row = await self._row("SELECT class_id FROM class_choices WHERE conversation_id = %s", (conversation_id,))
        return None if row is None else str(row["class_id"])

    # Token caches and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime) -> None:
        await self._rows(
            """INSERT INTO token_caches (user_key, blob, updated_at) VALUES (%s, %s, %s)
               ON CONFLICT (user_key) DO UPDATE SET blob = EXCLUDED.blob, updated_at = EXCLUDED.updated_at""",
            (user_key, bytes(blob), utc(now)),
        )

    async def load_token_cache(self, user_key: str) -> bytes | None:
        row = await self._row("SELECT blob FROM token_caches WHERE user_key = %s", (user_key,))
        return None if row is None else bytes(row["blob"])

    async def delete_token_cache(self, user_key: str) -> bool:
        return bool(await self._rows("DELETE FROM token_caches WHERE user_key = %s RETURNING user_key", (user_key,)))

    async def save_user_profile(self, profile: UserProfile) -> None:
        await self._rows(
            """INSERT INTO user_profiles (user_aad_id, tenant_id, upn, timezone, teams_id, service_url, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (user_aad_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, upn = EXCLUDED.upn,
                   timezone = EXCLUDED.timezone, teams_id = EXCLUDED.teams_id, service_url = EXCLUDED.service_url,
                   updated_at = EXCLUDED.updated_at""",
            (
                profile.user_aad_id,
                profile.tenant_id,
                profile.upn,
                profile.timezone,
                profile.teams_id,
                profile.service_url,
                utc(profile.updated_at),
            ),
        )

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None:
        row = await self._row("SELECT * FROM user_profiles WHERE user_aad_id = %s", (user_aad_id,))
        return None if row is None else profile_from_row(row)

    # Claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
        rows = await self._rows(
            """INSERT INTO claims (namespace, claim_key, claimed_at, expires_at) VALUES (%s, %s, %s, %s)
               ON CONFLICT (namespace, claim_key) DO UPDATE SET claimed_at = EXCLUDED.claimed_at,
                   expires_at = EXCLUDED.expires_at
               WHERE claims.expires_at <= EXCLUDED.claimed_at
               RETURNING claim_key""",
            (namespace, key, utc(now), utc(now) + positive(ttl, "ttl")),
        )
        return bool(rows)

    async def purge_claims(self, now: datetime) -> int:
        return len(await self._rows("DELETE FROM claims WHERE expires_at <= %s RETURNING claim_key", (utc(now),)))

    # Outbox.

    async def enqueue_outbox(self, new: NewOutboxEntry, now: datetime) -> tuple[OutboxEntry, bool]:
        moment = utc(now)
        async with self._connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            # A concurrent insert of the same key makes DO NOTHING wait for it to commit; the SELECT then sees it.
            await cursor.execute(
                """INSERT INTO outbox (idempotency_key, kind, teacher_id, tenant_id, class_id, assignment_id,
                       submission_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, %s, %s, %s)
                   ON CONFLICT (idempotency_key) DO NOTHING
                   RETURNING *""",
                (
                    new.idempotency_key,
                    new.kind,
                    new.teacher_id,
                    new.tenant_id,
                    new.class_id,
                    new.assignment_id,
                    new.submission_id,
                    _json(new.payload),
                    moment,
                    moment,
                    moment,
                ),
            )
            created = await cursor.fetchone()
            if created is not None:
                return outbox_from_row(created), True
            await cursor.execute("SELECT * FROM outbox WHERE idempotency_key = %s", (new.idempotency_key,))
            existing = await cursor.fetchone()
        if existing is None:
            raise StoreError("an outbox entry conflicted on its key but cannot be read back")
        return outbox_from_row(existing), False

    async def claim_outbox(self, entry_id: int, owner: str, now: datetime, lease: timedelta) -> OutboxEntry | None:
        moment = utc(now)
        row = await self._row(
            """UPDATE outbox SET status = 'inflight', lease_owner = %(owner)s, lease_until = %(until)s,
                   attempts = attempts + 1, updated_at = %(now)s
               WHERE id = %(id)s AND (status = 'pending' OR (status = 'inflight' AND lease_until <= %(now)s))
               RETURNING *""",
            {"owner": owner, "until": moment + positive(lease, "lease"), "now": moment, "id": entry_id},
        )
        return None if row is None else outbox_from_row(row)

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        rows = await self._rows(
            """SELECT * FROM outbox
               WHERE (status = 'pending' AND next_attempt_at <= %(now)s)
                  OR (status = 'inflight' AND lease_until <= %(now)s)
               ORDER BY CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, id
               LIMIT %(limit)s""",
            {"now": utc(now), "limit": positive_limit(limit)},
        )
        return [outbox_from_row(row) for row in rows]

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
        rows = await self._rows(
            """UPDATE outbox SET status = 'done', result = %s, lease_owner = NULL, lease_until = NULL, updated_at = %s
               WHERE id = %s AND status = 'inflight' AND lease_owner = %s
               RETURNING id""",
            (_json(result), utc(now), entry_id, owner),
        )
        return bool(rows)

    async def retry_outbox(
        self, entry_id: int, owner: str, error: str, next_attempt_at: datetime, now: datetime
    ) -> bool:
        rows = await self._rows(
            """UPDATE outbox SET status = 'pending', last_error = %s, next_attempt_at = %s, lease_owner = NULL,
                   lease_until = NULL, updated_at = %s
               WHERE id = %s AND status = 'inflight' AND lease_owner = %s
               RETURNING id""",
            (error, utc(next_attempt_at), utc(now), entry_id, owner),
        )
        return bool(rows)

    async def fail_outbox(
        self, entry_id: int, owner: str, error: str, now: datetime, status: OutboxFailure = "failed"
    ) -> bool:
        rows = await self._rows(
            """UPDATE outbox SET status = %s, last_error = %s, lease_owner = NULL, lease_until = NULL, updated_at = %s
               WHERE id = %s AND status = 'inflight' AND lease_owner = %s
               RETURNING id""",
            (failure_status(status), error, utc(now), entry_id, owner),
        )
        return bool(rows)

    async def get_outbox(self, entry_id: int) -> OutboxEntry | None:
        row = await self._row("SELECT * FROM outbox WHERE id = %s", (entry_id,))
        return None if row is None else outbox_from_row(row)

    async def get_outbox_by_key(self, idempotency_key: str) -> OutboxEntry | None:
        row = await self._row("SELECT * FROM outbox WHERE idempotency_key = %s", (idempotency_key,))
        return None if row is None else outbox_from_row(row)

    async def pending_outbox_for(self, teacher_id: str) -> list[OutboxEntry]:
        rows = await self._rows(
            "SELECT * FROM outbox WHERE teacher_id = %s AND status IN ('pending', 'inflight') ORDER BY id",
            (teacher_id,),
        )
        return [outbox_from_row(row) for row in rows]

    # Audit log.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord:
        row = await self._row(
            """INSERT INTO audit_log (at, teacher_id, tenant_id, class_id, assignment_id, submission_id, action,
                   before_state, after_state, outbox_key)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               RETURNING *""",
            (
                utc(new.at),
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
        if row is None:
            raise StoreError("an inserted audit record was not returned")
        return audit_from_row(row)

    async def last_undoable(self, teacher_id: str, actions: Collection[str]) -> AuditRecord | None:
        wanted = sorted(set(actions))
        if not wanted:
            return None
        row = await self._row(
            """SELECT * FROM audit_log WHERE teacher_id = %s AND undone_at IS NULL AND action = ANY(%s)
               ORDER BY at DESC, id DESC LIMIT 1""",
            (teacher_id, wanted),
        )
        return None if row is None else audit_from_row(row)

    async def mark_undone(self, audit_id: int, now: datetime) -> bool:
        rows = await self._rows(
            "UPDATE audit_log SET undone_at = %s WHERE id = %s AND undone_at IS NULL RETURNING id",
            (utc(now), audit_id),
        )
        return bool(rows)

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        filters = {"submission_id": submission_id, "teacher_id": teacher_id}
        given = {column: value for column, value in filters.items() if value is not None}
        where = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in given
        )
        query = sql.SQL("SELECT * FROM audit_log WHERE {} ORDER BY at DESC, id DESC LIMIT {}").format(
            where if given else sql.SQL("TRUE"), sql.Placeholder()
        )
        rows = await self._rows(query, (*given.values(), positive_limit(limit)))
        return [audit_from_row(row) for row in rows]

    # Reminder schedules and digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        await self._rows(
            """INSERT INTO reminder_schedules (teacher_id, tenant_id, enabled, days, local_time, timezone,
                   quiet_start, quiet_end, class_ids, min_waiting, min_age_days, snoozed_until, paused_reason,
                   paused_at, updated_at)
               VALUES (%s, %s, %s, %s::integer[], %s, %s, %s, %s, %s::text[], %s, %s, %s, %s, %s, %s)
               ON CONFLICT (teacher_id) DO UPDATE SET tenant_id = EXCLUDED.tenant_id, enabled = EXCLUDED.enabled,
                   days = EXCLUDED.days, local_time = EXCLUDED.local_time, timezone = EXCLUDED.timezone,
                   quiet_start = EXCLUDED.quiet_start, quiet_end = EXCLUDED.quiet_end,
                   class_ids = EXCLUDED.class_ids, min_waiting = EXCLUDED.min_waiting,
                   min_age_days = EXCLUDED.min_age_days, snoozed_until = EXCLUDED.snoozed_until,
                   paused_reason = EXCLUDED.paused_reason, paused_at = EXCLUDED.paused_at,
                   updated_at = EXCLUDED.updated_at""",
            (
                schedule.teacher_id,
                schedule.tenant_id,
                schedule.enabled,
                sorted(schedule.days),
                schedule.local_time,
                schedule.timezone,
                schedule.quiet_start,
                schedule.quiet_end,
                sorted(schedule.class_ids),
                schedule.min_waiting,
                schedule.min_age_days,
                optional_utc(schedule.snoozed_until),
                schedule.paused_reason,
                optional_utc(schedule.paused_at),
                utc(schedule.updated_at),
            ),
        )

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None:
        row = await self._row("SELECT * FROM reminder_schedules WHERE teacher_id = %s", (teacher_id,))
        return None if row is None else schedule_from_row(row)

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        rows = await self._rows(
            "SELECT * FROM reminder_schedules WHERE enabled OR NOT %s ORDER BY teacher_id", (enabled_only,)
        )
        return [schedule_from_row(row) for row in rows]

    async def delete_schedule(self, teacher_id: str) -> bool:
        rows = await self._rows(
            "DELETE FROM reminder_schedules WHERE teacher_id = %s RETURNING teacher_id", (teacher_id,)
        )
        return bool(rows)

    async def record_digest(self, teacher_id: str, slot_key: str, now: datetime) -> bool:
        rows = await self._rows(
            """INSERT INTO digests (teacher_id, slot_key, sent_at) VALUES (%s, %s, %s)
               ON CONFLICT (teacher_id, slot_key) DO NOTHING RETURNING slot_key""",
            (teacher_id, slot_key, utc(now)),
        )
        return bool(rows)

    async def digest_sent(self, teacher_id: str, slot_key: str) -> bool:
        row = await self._row(
            "SELECT slot_key FROM digests WHERE teacher_id = %s AND slot_key = %s", (teacher_id, slot_key)
        )
        return row is not None

    async def last_digest(self, teacher_id: str) -> tuple[str, datetime] | None:
        row = await self._row(
            """SELECT slot_key, sent_at FROM digests WHERE teacher_id = %s
               ORDER BY sent_at DESC, slot_key DESC LIMIT 1""",
            (teacher_id,),
        )
        return None if row is None else (str(row["slot_key"]), utc(row["sent_at"]))

    # Leases.

    async def acquire_lease(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        moment = utc(now)
        rows = await self._rows(
            """INSERT INTO leases (name, holder, expires_at) VALUES (%(name)s, %(holder)s, %(until)s)
               ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
               WHERE leases.expires_at <= %(now)s OR leases.holder = EXCLUDED.holder
               RETURNING holder""",
            {"name": name, "holder": holder, "until": moment + positive(ttl, "ttl"), "now": moment},
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> bool:
        rows = await self._rows("DELETE FROM leases WHERE name = %s AND holder = %s RETURNING name", (name, holder))
        return bool(rows)

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        row = await self._row("SELECT holder FROM leases WHERE name = %s AND expires_at > %s", (name, utc(now)))
        return None if row is None else str(row["holder"])

    # Key/value state.

    async def get_value(self, key: str) -> str | None:
        row = await self._row("SELECT item_value FROM key_values WHERE item_key = %s", (key,))
        return None if row is None else str(row["item_value"])

    async def set_value(self, key: str, value: str, now: datetime) -> None:
        await self._rows(
            """INSERT INTO key_values (item_key, item_value, updated_at) VALUES (%s, %s, %s)
               ON CONFLICT (item_key) DO UPDATE SET item_value = EXCLUDED.item_value,
                   updated_at = EXCLUDED.updated_at""",
            (key, value, utc(now)),
        )
