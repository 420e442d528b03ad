"""The versioned schema history, each step written once for SQLite and PostgreSQL, and which steps a database needs.
Each backend applies the missing steps at open in one transaction that also records them in `schema_version`, under
a lock that serialises concurrent openers. Never edit a released step: append a new one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.store import SchemaVersionError


@dataclass(frozen=True, slots=True)
class Migration:
    """One schema step: the statements each dialect runs to get from `version - 1` to `version`."""

    version: int
    name: str
    sqlite: tuple[str, ...]
    postgres: tuple[str, ...]


# The words for each column type the steps use, in SQLite and in PostgreSQL. SQLite keeps datetimes as fixed-width
# ISO 8601 UTC text (so text order is time order), and JSON and lists as JSON text.
_TYPES = {
    "text": ("TEXT", "text"),
    "int": ("INTEGER", "integer"),
    "blob": ("BLOB", "bytea"),
    "time": ("TEXT", "timestamptz"),
    "json": ("TEXT", "json"),
    "ints": ("TEXT", "integer[]"),
    "texts": ("TEXT", "text[]"),
    "id": ("INTEGER PRIMARY KEY AUTOINCREMENT", "bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"),
    "flag": ("INTEGER NOT NULL CHECK (enabled IN (0, 1))", "boolean NOT NULL"),
    "now": ("TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))", "timestamptz NOT NULL DEFAULT now()"),
}


def _spell(statement: str, dialect: int) -> str:
    """A statement written once, its `{type}` words filled in for SQLite (dialect 0) or PostgreSQL (1)."""
    return statement.format_map({word: pair[dialect] for word, pair in _TYPES.items()})


def _step(version: int, name: str, statements: tuple[str, ...]) -> Migration:
    sqlite, postgres = (tuple(_spell(each, dialect) for each in statements) for dialect in (0, 1))
    return Migration(version, name, sqlite=sqlite, postgres=postgres)


_VERSION_TABLE = """CREATE TABLE IF NOT EXISTS schema_version (
    version {int} PRIMARY KEY,
    name {text} NOT NULL,
    applied_at {now}
)"""
SQLITE_VERSION_TABLE, POSTGRES_VERSION_TABLE = _spell(_VERSION_TABLE, 0), _spell(_VERSION_TABLE, 1)


_V1 = (
    """CREATE TABLE conversations (
        conversation_id {text} PRIMARY KEY,
        kind {text} NOT NULL CHECK (kind IN ('personal', 'channel', 'groupChat')),
        tenant_id {text} NOT NULL,
        service_url {text} NOT NULL,
        bot_id {text} NOT NULL,
        user_aad_id {text},
        team_id {text},
        class_id {text},
        reference {json} NOT NULL,
        updated_at {time} NOT NULL
    )""",
    "CREATE INDEX conversations_personal ON conversations (user_aad_id, updated_at) WHERE kind = 'personal'",
    "CREATE INDEX conversations_channel ON conversations (class_id, updated_at) WHERE kind = 'channel'",
    """CREATE TABLE class_choices (
        conversation_id {text} PRIMARY KEY,
        class_id {text} NOT NULL,
        updated_at {time} NOT NULL
    )""",
    """CREATE TABLE token_caches (
        user_key {text} PRIMARY KEY,
        blob {blob} NOT NULL,
        updated_at {time} NOT NULL
    )""",
    """CREATE TABLE user_profiles (
        user_aad_id {text} PRIMARY KEY,
        tenant_id {text} NOT NULL,
        upn {text},
        timezone {text},
        teams_id {text},
        service_url {text},
        updated_at {time} NOT NULL
    )""",
    """CREATE TABLE claims (
        namespace {text} NOT NULL,
        claim_key {text} NOT NULL,
        claimed_at {time} NOT NULL,
        expires_at {time} NOT NULL,
        PRIMARY KEY (namespace, claim_key)
    )""",
    "CREATE INDEX claims_expiry ON claims (expires_at)",
    """CREATE TABLE outbox (
        id {id},
        idempotency_key {text} NOT NULL UNIQUE,
        kind {text} NOT NULL,
        teacher_id {text} NOT NULL,
        tenant_id {text} NOT NULL,
        class_id {text} NOT NULL,
        assignment_id {text} NOT NULL,
        submission_id {text} NOT NULL,
        payload {json} NOT NULL,
        status {text} NOT NULL CHECK (status IN ('pending', 'inflight', 'done', 'failed', 'conflict')),
        attempts {int} NOT NULL DEFAULT 0,
        next_attempt_at {time} NOT NULL,
        last_error {text},
        result {json},
        created_at {time} NOT NULL,
        updated_at {time} NOT NULL,
        lease_owner {text},
        lease_until {time}
    )""",
    "CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX outbox_inflight ON outbox (lease_until) WHERE status = 'inflight'",
    "CREATE INDEX outbox_unfinished ON outbox (teacher_id, id) WHERE status IN ('pending', 'inflight')",
    """CREATE TABLE audit_log (
        id {id},
        at {time} NOT NULL,
        teacher_id {text} NOT NULL,
        tenant_id {text} NOT NULL,
        class_id {text} NOT NULL,
        assignment_id {text} NOT NULL,
        submission_id {text} NOT NULL,
        action {text} NOT NULL,
        before_state {json} NOT NULL,
        after_state {json} NOT NULL,
        outbox_key {text},
        undone_at {time}
    )""",
    "CREATE INDEX audit_by_teacher ON audit_log (teacher_id, at)",
    "CREATE INDEX audit_by_submission ON audit_log (submission_id, at)",
    """CREATE TABLE reminder_schedules (
        teacher_id {text} PRIMARY KEY,
        tenant_id {text} NOT NULL,
        enabled {flag},
        days {ints} NOT NULL,
        local_time {text} NOT NULL,
        timezone {text} NOT NULL,
        quiet_start {text},
        quiet_end {text},
        class_ids {texts} NOT NULL,
        min_waiting {int} NOT NULL,
        min_age_days {int} NOT NULL,
        snoozed_until {time},
        paused_reason {text},
        paused_at {time},
        updated_at {time} NOT NULL
    )""",
    """CREATE TABLE digests (
        teacher_id {text} NOT NULL,
        slot_key {text} NOT NULL,
        sent_at {time} NOT NULL,
        PRIMARY KEY (teacher_id, slot_key)
    )""",
    "CREATE INDEX digests_latest ON digests (teacher_id, sent_at)",
    """CREATE TABLE leases (
        name {text} PRIMARY KEY,
        holder {text} NOT NULL,
        expires_at {time} NOT NULL
    )""",
    """CREATE TABLE key_values (
        item_key {text} PRIMARY KEY,
        item_value {text} NOT NULL,
        updated_at {time} NOT NULL
    )""",
)

# Sign-in state that expires (flows, one-time codes), the id of the key that sealed each token cache, an index for
# purging finished outbox entries, and the removal of v1's sign-in flows, which were kept in key_values forever.
_V2 = (
    """CREATE TABLE sign_in_flows (
        state {text} PRIMARY KEY,
        user_key {text} NOT NULL,
        flow {blob} NOT NULL,
        created_at {time} NOT NULL,
        expires_at {time} NOT NULL
    )""",
    "CREATE INDEX sign_in_flows_expiry ON sign_in_flows (expires_at)",
    """CREATE TABLE sign_in_codes (
        user_key {text} PRIMARY KEY,
        digest {text} NOT NULL,
        wrong_guesses {int} NOT NULL DEFAULT 0,
        issued_at {time} NOT NULL,
        expires_at {time} NOT NULL
    )""",
    "CREATE INDEX sign_in_codes_expiry ON sign_in_codes (expires_at)",
    "ALTER TABLE token_caches ADD COLUMN key_id {text} NOT NULL DEFAULT ''",
    "CREATE INDEX token_caches_key ON token_caches (key_id)",
    "CREATE INDEX outbox_finished ON outbox (updated_at) WHERE status IN ('done', 'failed', 'conflict')",
    "DELETE FROM key_values WHERE item_key LIKE 'signin:%'",
)

_V3 = (
    """CREATE TABLE owed_notices (
        outbox_id {int} PRIMARY KEY,
        owed_at {time} NOT NULL
    )""",
)

# The janitor deletes audit records and digests by age.
_V4 = (
    "CREATE INDEX audit_by_time ON audit_log (at)",
    "CREATE INDEX digests_by_time ON digests (sent_at)",
)

# The reminder sweep's memory of each class between sweeps (bot/reminders/waiting.py): what waits to be graded and
# what it needs to show it, when the class was last read in full and when it was last swept.
_V5 = (
    """CREATE TABLE class_sweeps (
        class_id {text} PRIMARY KEY,
        waiting_set {json} NOT NULL,
        full_at {time} NOT NULL,
        swept_at {time} NOT NULL
    )""",
)

MIGRATIONS: tuple[Migration, ...] = (
    _step(1, "initial schema", _V1),
    _step(2, "expiring sign-in state, token cache key ids", _V2),
    _step(3, "notices owed to teachers whose write outlived its answer", _V3),
    _step(4, "indexes for purging audit records and digests by age", _V4),
    _step(5, "the reminder sweep's waiting set per class", _V5),
)

SCHEMA_VERSION = MIGRATIONS[-1].version
"""The newest schema this code knows: a database at another version is not the one this Gradebot was written for."""


def missing_steps(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The steps after `current`, in order; refuses a database newer than the code and a gapped history."""
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3… without gaps, got {versions}")
    if current > len(versions):
        raise SchemaVersionError(
            f"the database is at schema version {current}, newer than this Gradebot knows ({len(versions)}): "
            "a newer release migrated it, and every instance on it must run that release (or a later one)"
        )
    return list(migrations[current:])
