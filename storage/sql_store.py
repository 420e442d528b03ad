"""SqlStore: every Store operation written once, as SQL both backends run, over a small seam each backend fills in.

Shared statements mark every parameter with `?` and use it nowhere else; a backend supplies reads, writes and their
transactions, and how it encodes times, JSON and lists.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, ClassVar

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
from storage.store import Store, StoreError

CURRENT_VERSION = "SELECT COALESCE(MAX(version), 0) AS version FROM schema_version"
RECORD_VERSION = "INSERT INTO schema_version (version, name) VALUES (?, ?)"


class SqlStore(Store):
    """The Store methods both backends share; a subclass provides the seam below (reads, writes, encodings)."""

    INT_LIST_PARAM: ClassVar[str] = "?"
    """How a statement takes a list of integers (a backend may add a cast)."""
    TEXT_LIST_PARAM: ClassVar[str] = "?"
    """How a statement takes a list of strings (a backend may add a cast)."""

    # The seam.

    @abstractmethod
    async def _read(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run a query; rows come back with their columns decoded (datetimes, JSON, lists)."""

    @abstractmethod
    async def _write(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one changing statement atomically; returns what its RETURNING clause yields (or nothing)."""

    @abstractmethod
    async def _insert_or_select(
        self, insert: str, insert_params: Sequence[object], select: str, select_params: Sequence[object]
    ) -> tuple[Row | None, bool]:
        """(row, True) when `insert` returned a row; otherwise (the first row of `select`, False)."""

    @abstractmethod
    def _time(self, moment: datetime) -> object:
        """An aware datetime as the backend stores it (in UTC)."""

    @abstractmethod
    def _json(self, value: object) -> object:
        """A JSON value as the backend stores it."""

    @abstractmethod
    def _list(self, values: list[Any]) -> object:
        """A sorted list as the backend stores it (see INT_LIST_PARAM and TEXT_LIST_PARAM)."""

    def _optional_time(self, moment: datetime | None) -> object:
        return None if moment is None else self._time(moment)

    async def _read_one(self, statement: str, params: Sequence[object] = ()) -> Row | None:
        rows = await self._read(statement, params)
        return rows[0] if rows else None

    async def schema_version(self) -> int:
        row = await self._read_one(CURRENT_VERSION)
        return 0 if row is None else int(row["version"])

    # Conversations.

    async def save_conversation(self, record: ConversationRecord) -> None:
        await self._write(
            """INSERT INTO conversations (conversation_id, kind, tenant_id, service_url, bot_id, user_aad_id, team_id,
                   class_id, reference, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
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
                self._json(record.reference),
                self._time(record.updated_at),
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
               ON CONFLICT (conversation_id) DO UPDATE SET class_id = EXCLUDED.class_id,
                   updated_at = EXCLUDED.updated_at""",
            (conversation_id, class_id, self._time(now)),
        )

    async def get_class_choice(self, conversation_id: str) -> str | None:
        row = await self._read_one("SELECT class_id FROM class_choices WHERE conversation_id = ?", (conversation_id,))
        return None if row is None else str(row["class_id"])

    # Token caches and profiles.

    async def save_token_cache(self, user_key: str, blob: bytes, now: datetime, key_id: str = "") -> None:
        await self._write(
            """INSERT INTO token_caches (user_key, blob, updated_at, key_id) VALUES (?, ?, ?, ?)
               ON CONFLICT (user_key) DO UPDATE SET blob = EXCLUDED.blob, updated_at = EXCLUDED.updated_at,
                   key_id = EXCLUDED.key_id""",
            (user_key, bytes(blob), self._time(now), key_id),
        )

    async def token_cache_key_ids(self) -> dict[str, int]:
        rows = await self._read("SELECT key_id, COUNT(*) AS caches FROM token_caches GROUP BY key_id")
        return {str(row["key_id"]): int(row["caches"]) for row in rows}

    async def token_caches_sealed_with(self, key_id: str, limit: int) -> list[tuple[str, bytes]]:
        rows = await self._read(
            "SELECT user_key, blob FROM token_caches WHERE key_id = ? ORDER BY updated_at DESC, user_key LIMIT ?",
            (key_id, positive_limit(limit)),
        )
        return [(str(row["user_key"]), bytes(row["blob"])) for row in rows]

    async def load_token_cache(self, user_key: str) -> bytes | None:
        row = await self._read_one("SELECT blob FROM token_caches WHERE user_key = ?", (user_key,))
        return None if row is None else bytes(row["blob"])

    async def delete_token_cache(self, user_key: str) -> bool:
        return bool(await self._write("DELETE FROM token_caches WHERE user_key = ? RETURNING user_key", (user_key,)))

    async def save_user_profile(self, profile: UserProfile) -> None:
        await self._write(
            """INSERT INTO user_profiles (user_aad_id, tenant_id, upn, timezone, teams_id, service_url, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?)
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
                self._time(profile.updated_at),
            ),
        )

    async def get_user_profile(self, user_aad_id: str) -> UserProfile | None:
        row = await self._read_one("SELECT * FROM user_profiles WHERE user_aad_id = ?", (user_aad_id,))
        return None if row is None else profile_from_row(row)

    # Claims.

    async def claim_once(self, namespace: str, key: str, now: datetime, ttl: timedelta) -> bool:
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
        row = await self._read_one(
            "SELECT claim_key FROM claims WHERE namespace = ? AND claim_key = ? AND expires_at > ?",
            (namespace, key, self._time(now)),
        )
        return row is not None

    async def purge_claims(self, now: datetime) -> int:
        rows = await self._write("DELETE FROM claims WHERE expires_at <= ? RETURNING claim_key", (self._time(now),))
        return len(rows)

    # Sign-in in progress.

    async def save_sign_in_flow(self, state: str, user_key: str, flow: bytes, now: datetime, ttl: timedelta) -> None:
        await self._write(
            """INSERT INTO sign_in_flows (state, user_key, flow, created_at, expires_at) VALUES (?, ?, ?, ?, ?)""",
            (state, user_key, bytes(flow), self._time(now), self._time(now + positive(ttl, "ttl"))),
        )

    async def take_sign_in_flow(self, state: str, now: datetime) -> tuple[str, bytes] | None:
        rows = await self._write(
            "DELETE FROM sign_in_flows WHERE state = ? AND expires_at > ? RETURNING user_key, flow",
            (state, self._time(now)),
        )
        return (str(rows[0]["user_key"]), bytes(rows[0]["flow"])) if rows else None

    async def purge_sign_in_flows(self, now: datetime) -> int:
        rows = await self._write("DELETE FROM sign_in_flows WHERE expires_at <= ? RETURNING state", (self._time(now),))
        return len(rows)

    async def issue_sign_in_code(self, user_key: str, digest: str, now: datetime, ttl: timedelta) -> None:
        await self._write(
            """INSERT INTO sign_in_codes (user_key, digest, wrong_guesses, issued_at, expires_at)
               VALUES (?, ?, 0, ?, ?)
               ON CONFLICT (user_key) DO UPDATE SET digest = EXCLUDED.digest, wrong_guesses = 0,
                   issued_at = EXCLUDED.issued_at, expires_at = EXCLUDED.expires_at""",
            (user_key, digest, self._time(now), self._time(now + positive(ttl, "ttl"))),
        )

    async def redeem_sign_in_code(self, user_key: str, digest: str, now: datetime, max_wrong: int) -> bool:
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
        rows = await self._write(
            "DELETE FROM sign_in_codes WHERE expires_at <= ? RETURNING user_key", (self._time(now),)
        )
        return len(rows)

    # Outbox.

    async def enqueue_outbox(self, new: NewOutboxEntry, now: datetime) -> tuple[OutboxEntry, bool]:
        moment = self._time(now)
        row, created = await self._insert_or_select(
            """INSERT INTO outbox (idempotency_key, kind, teacher_id, tenant_id, class_id, assignment_id,
                   submission_id, payload, status, attempts, next_attempt_at, created_at, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)
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
                self._json(new.payload),
                moment,
                moment,
                moment,
            ),
            "SELECT * FROM outbox WHERE idempotency_key = ?",
            (new.idempotency_key,),
        )
        if row is None:
            raise StoreError("an outbox entry conflicted on its key but cannot be read back")
        return outbox_from_row(row), created

    async def claim_outbox(self, entry_id: int, owner: str, now: datetime, lease: timedelta) -> OutboxEntry | None:
        moment = self._time(now)
        rows = await self._write(
            """UPDATE outbox SET status = 'inflight', lease_owner = ?, lease_until = ?, attempts = attempts + 1,
                   updated_at = ?
               WHERE id = ? AND (status = 'pending' OR (status = 'inflight' AND lease_until <= ?))
               RETURNING *""",
            (owner, self._time(now + positive(lease, "lease")), moment, entry_id, moment),
        )
        return outbox_from_row(rows[0]) if rows else None

    async def due_outbox(self, now: datetime, limit: int) -> list[OutboxEntry]:
        moment = self._time(now)
        rows = await self._read(
            """SELECT * FROM outbox
               WHERE (status = 'pending' AND next_attempt_at <= ?) OR (status = 'inflight' AND lease_until <= ?)
               ORDER BY CASE WHEN status = 'pending' THEN next_attempt_at ELSE lease_until END, id
               LIMIT ?""",
            (moment, moment, positive_limit(limit)),
        )
        return [outbox_from_row(row) for row in rows]

    async def complete_outbox(self, entry_id: int, owner: str, result: JsonObject, now: datetime) -> bool:
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
        rows = await self._write(
            """UPDATE outbox SET status = ?, last_error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ?
               WHERE id = ? AND status = 'inflight' AND lease_owner = ?
               RETURNING id""",
            (failure_status(status), error, self._time(now), entry_id, owner),
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

    async def purge_finished_outbox(self, before: datetime) -> int:
        rows = await self._write(
            """DELETE FROM outbox
               WHERE status IN ('done', 'failed', 'conflict') AND updated_at <= ?
                   AND submission_id NOT IN (
                       SELECT submission_id FROM outbox WHERE status IN ('pending', 'inflight'))
               RETURNING id""",
            (self._time(before),),
        )
        return len(rows)

    # Audit log.

    async def record_audit(self, new: NewAuditRecord) -> AuditRecord:
        rows = await self._write(
            """INSERT INTO audit_log (at, teacher_id, tenant_id, class_id, assignment_id, submission_id, action,
                   before_state, after_state, outbox_key)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               RETURNING *""",
            (
                self._time(new.at),
                new.teacher_id,
                new.tenant_id,
                new.class_id,
                new.assignment_id,
                new.submission_id,
                new.action,
                self._json(new.before),
                self._json(new.after),
                new.outbox_key,
            ),
        )
        if not rows:
            raise StoreError("an inserted audit record was not returned")
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
            (self._time(now), audit_id),
        )
        return bool(rows)

    async def list_audit(
        self, *, submission_id: str | None = None, teacher_id: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        filters = {"submission_id": submission_id, "teacher_id": teacher_id}
        given = {column: value for column, value in filters.items() if value is not None}
        # The column names are the fixed keys above; only the values are parameters.
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        rows = await self._read(
            f"SELECT * FROM audit_log WHERE {where} ORDER BY at DESC, id DESC LIMIT ?",
            (*given.values(), positive_limit(limit)),
        )
        return [audit_from_row(row) for row in rows]

    # Reminder schedules and digests.

    async def save_schedule(self, schedule: ReminderSchedule) -> None:
        await self._write(
            f"""INSERT INTO reminder_schedules (teacher_id, tenant_id, enabled, days, local_time, timezone,
                    quiet_start, quiet_end, class_ids, min_waiting, min_age_days, snoozed_until, paused_reason,
                    paused_at, updated_at)
                VALUES (?, ?, ?, {self.INT_LIST_PARAM}, ?, ?, ?, ?, {self.TEXT_LIST_PARAM}, ?, ?, ?, ?, ?, ?)
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
                self._list(sorted(schedule.days)),
                schedule.local_time,
                schedule.timezone,
                schedule.quiet_start,
                schedule.quiet_end,
                self._list(sorted(schedule.class_ids)),
                schedule.min_waiting,
                schedule.min_age_days,
                self._optional_time(schedule.snoozed_until),
                schedule.paused_reason,
                self._optional_time(schedule.paused_at),
                self._time(schedule.updated_at),
            ),
        )

    async def get_schedule(self, teacher_id: str) -> ReminderSchedule | None:
        row = await self._read_one("SELECT * FROM reminder_schedules WHERE teacher_id = ?", (teacher_id,))
        return None if row is None else schedule_from_row(row)

    async def list_schedules(self, enabled_only: bool = True) -> list[ReminderSchedule]:
        rows = await self._read(
            "SELECT * FROM reminder_schedules WHERE enabled OR NOT ? ORDER BY teacher_id", (enabled_only,)
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
            (teacher_id, slot_key, self._time(now)),
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
            """INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
               WHERE leases.expires_at <= ? OR leases.holder = EXCLUDED.holder
               RETURNING holder""",
            (name, holder, self._time(now + positive(ttl, "ttl")), self._time(now)),
        )
        return bool(rows)

    async def release_lease(self, name: str, holder: str) -> bool:
        rows = await self._write("DELETE FROM leases WHERE name = ? AND holder = ? RETURNING name", (name, holder))
        return bool(rows)

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        row = await self._read_one(
            "SELECT holder FROM leases WHERE name = ? AND expires_at > ?", (name, self._time(now))
        )
        return None if row is None else str(row["holder"])

    # Key/value state.

    async def get_value(self, key: str) -> str | None:
        row = await self._read_one("SELECT item_value FROM key_values WHERE item_key = ?", (key,))
        return None if row is None else str(row["item_value"])

    async def set_value(self, key: str, value: str, now: datetime) -> None:
        await self._write(
            """INSERT INTO key_values (item_key, item_value, updated_at) VALUES (?, ?, ?)
               ON CONFLICT (item_key) DO UPDATE SET item_value = EXCLUDED.item_value,
                   updated_at = EXCLUDED.updated_at""",
            (key, value, self._time(now)),
        )
