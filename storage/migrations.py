"""The versioned schema history, SQLite and PostgreSQL side by side, and which steps a database still needs.

Each backend applies the missing steps at open, inside one transaction that also records them in `schema_version`,
while holding a lock that serialises concurrent openers. Never edit a released step: append a new one.
"""

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


SQLITE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
)"""

POSTGRES_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version integer PRIMARY KEY,
    name text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)"""

# SQLite keeps datetimes as fixed-width ISO 8601 UTC text (so text order is time order) and JSON as text.
_SQLITE_V1 = (
    """CREATE TABLE conversations (
        conversation_id TEXT PRIMARY KEY,
        kind TEXT NOT NULL CHECK (kind IN ('personal', 'channel', 'groupChat')),
        tenant_id TEXT NOT NULL,
        service_url TEXT NOT NULL,
        bot_id TEXT NOT NULL,
        user_aad_id TEXT,
        team_id TEXT,
        class_id TEXT,
        reference TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    "CREATE INDEX conversations_personal ON conversations (user_aad_id, updated_at) WHERE kind = 'personal'",
    "CREATE INDEX conversations_channel ON conversations (class_id, updated_at) WHERE kind = 'channel'",
    """CREATE TABLE class_choices (
        conversation_id TEXT PRIMARY KEY,
        class_id TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE token_caches (
        user_key TEXT PRIMARY KEY,
        blob BLOB NOT NULL,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE user_profiles (
        user_aad_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        upn TEXT,
        timezone TEXT,
        teams_id TEXT,
        service_url TEXT,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE claims (
        namespace TEXT NOT NULL,
        claim_key TEXT NOT NULL,
        claimed_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        PRIMARY KEY (namespace, claim_key)
    )""",
    "CREATE INDEX claims_expiry ON claims (expires_at)",
    """CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        idempotency_key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        teacher_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        class_id TEXT NOT NULL,
        assignment_id TEXT NOT NULL,
        submission_id TEXT NOT NULL,
        payload TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'inflight', 'done', 'failed', 'conflict')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT NOT NULL,
        last_error TEXT,
        result TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        lease_owner TEXT,
        lease_until TEXT
    )""",
    "CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX outbox_inflight ON outbox (lease_until) WHERE status = 'inflight'",
    "CREATE INDEX outbox_unfinished ON outbox (teacher_id, id) WHERE status IN ('pending', 'inflight')",
    """CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        teacher_id TEXT NOT NULL,
        tenant_id TEXT NOT NULL,
        class_id TEXT NOT NULL,
        assignment_id TEXT NOT NULL,
        submission_id TEXT NOT NULL,
        action TEXT NOT NULL,
        before_state TEXT NOT NULL,
        after_state TEXT NOT NULL,
        outbox_key TEXT,
        undone_at TEXT
    )""",
    "CREATE INDEX audit_by_teacher ON audit_log (teacher_id, at)",
    "CREATE INDEX audit_by_submission ON audit_log (submission_id, at)",
    """CREATE TABLE reminder_schedules (
        teacher_id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
        days TEXT NOT NULL,
        local_time TEXT NOT NULL,
        timezone TEXT NOT NULL,
        quiet_start TEXT,
        quiet_end TEXT,
        class_ids TEXT NOT NULL,
        min_waiting INTEGER NOT NULL,
        min_age_days INTEGER NOT NULL,
        snoozed_until TEXT,
        paused_reason TEXT,
        paused_at TEXT,
        updated_at TEXT NOT NULL
    )""",
    """CREATE TABLE digests (
        teacher_id TEXT NOT NULL,
        slot_key TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        PRIMARY KEY (teacher_id, slot_key)
    )""",
    "CREATE INDEX digests_latest ON digests (teacher_id, sent_at)",
    """CREATE TABLE leases (
        name TEXT PRIMARY KEY,
        holder TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    """CREATE TABLE key_values (
        item_key TEXT PRIMARY KEY,
        item_value TEXT NOT NULL,
        updated_at TEXT NOT NULL
    )""",
)

_POSTGRES_V1 = (
    """CREATE TABLE conversations (
        conversation_id text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('personal', 'channel', 'groupChat')),
        tenant_id text NOT NULL,
        service_url text NOT NULL,
        bot_id text NOT NULL,
        user_aad_id text,
        team_id text,
        class_id text,
        reference json NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    "CREATE INDEX conversations_personal ON conversations (user_aad_id, updated_at) WHERE kind = 'personal'",
    "CREATE INDEX conversations_channel ON conversations (class_id, updated_at) WHERE kind = 'channel'",
    """CREATE TABLE class_choices (
        conversation_id text PRIMARY KEY,
        class_id text NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE token_caches (
        user_key text PRIMARY KEY,
        blob bytea NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE user_profiles (
        user_aad_id text PRIMARY KEY,
        tenant_id text NOT NULL,
        upn text,
        timezone text,
        teams_id text,
        service_url text,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE claims (
        namespace text NOT NULL,
        claim_key text NOT NULL,
        claimed_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, claim_key)
    )""",
    "CREATE INDEX claims_expiry ON claims (expires_at)",
    """CREATE TABLE outbox (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        idempotency_key text NOT NULL UNIQUE,
        kind text NOT NULL,
        teacher_id text NOT NULL,
        tenant_id text NOT NULL,
        class_id text NOT NULL,
        assignment_id text NOT NULL,
        submission_id text NOT NULL,
        payload json NOT NULL,
        status text NOT NULL CHECK (status IN ('pending', 'inflight', 'done', 'failed', 'conflict')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL,
        last_error text,
        result json,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        lease_owner text,
        lease_until timestamptz
    )""",
    "CREATE INDEX outbox_pending ON outbox (next_attempt_at) WHERE status = 'pending'",
    "CREATE INDEX outbox_inflight ON outbox (lease_until) WHERE status = 'inflight'",
    "CREATE INDEX outbox_unfinished ON outbox (teacher_id, id) WHERE status IN ('pending', 'inflight')",
    """CREATE TABLE audit_log (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at timestamptz NOT NULL,
        teacher_id text NOT NULL,
        tenant_id text NOT NULL,
        class_id text NOT NULL,
        assignment_id text NOT NULL,
        submission_id text NOT NULL,
        action text NOT NULL,
        before_state json NOT NULL,
        after_state json NOT NULL,
        outbox_key text,
        undone_at timestamptz
    )""",
    "CREATE INDEX audit_by_teacher ON audit_log (teacher_id, at)",
    "CREATE INDEX audit_by_submission ON audit_log (submission_id, at)",
    """CREATE TABLE reminder_schedules (
        teacher_id text PRIMARY KEY,
        tenant_id text NOT NULL,
        enabled boolean NOT NULL,
        days integer[] NOT NULL,
        local_time text NOT NULL,
        timezone text NOT NULL,
        quiet_start text,
        quiet_end text,
        class_ids text[] NOT NULL,
        min_waiting integer NOT NULL,
        min_age_days integer NOT NULL,
        snoozed_until timestamptz,
        paused_reason text,
        paused_at timestamptz,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE digests (
        teacher_id text NOT NULL,
        slot_key text NOT NULL,
        sent_at timestamptz NOT NULL,
        PRIMARY KEY (teacher_id, slot_key)
    )""",
    "CREATE INDEX digests_latest ON digests (teacher_id, sent_at)",
    """CREATE TABLE leases (
        name text PRIMARY KEY,
        holder text NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
    """CREATE TABLE key_values (
        item_key text PRIMARY KEY,
        item_value text NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
)

# Sign-in state that expires (flows, one-time codes), the id of the key that sealed each token cache, an index for
# purging finished outbox entries, and the removal of v1's sign-in flows, which were kept in key_values forever.
_SQLITE_V2 = (
    """CREATE TABLE sign_in_flows (
        state TEXT PRIMARY KEY,
        user_key TEXT NOT NULL,
        flow BLOB NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE INDEX sign_in_flows_expiry ON sign_in_flows (expires_at)",
    """CREATE TABLE sign_in_codes (
        user_key TEXT PRIMARY KEY,
        digest TEXT NOT NULL,
        wrong_guesses INTEGER NOT NULL DEFAULT 0,
        issued_at TEXT NOT NULL,
        expires_at TEXT NOT NULL
    )""",
    "CREATE INDEX sign_in_codes_expiry ON sign_in_codes (expires_at)",
    "ALTER TABLE token_caches ADD COLUMN key_id TEXT NOT NULL DEFAULT ''",
    "CREATE INDEX token_caches_key ON token_caches (key_id)",
    "CREATE INDEX outbox_finished ON outbox (updated_at) WHERE status IN ('done', 'failed', 'conflict')",
    "DELETE FROM key_values WHERE item_key LIKE 'signin:%'",
)

_POSTGRES_V2 = (
    """CREATE TABLE sign_in_flows (
        state text PRIMARY KEY,
        user_key text NOT NULL,
        flow bytea NOT NULL,
        created_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
    "CREATE INDEX sign_in_flows_expiry ON sign_in_flows (expires_at)",
    """CREATE TABLE sign_in_codes (
        user_key text PRIMARY KEY,
        digest text NOT NULL,
        wrong_guesses integer NOT NULL DEFAULT 0,
        issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL
    )""",
    "CREATE INDEX sign_in_codes_expiry ON sign_in_codes (expires_at)",
    "ALTER TABLE token_caches ADD COLUMN key_id text NOT NULL DEFAULT ''",
    "CREATE INDEX token_caches_key ON token_caches (key_id)",
    "CREATE INDEX outbox_finished ON outbox (updated_at) WHERE status IN ('done', 'failed', 'conflict')",
    "DELETE FROM key_values WHERE item_key LIKE 'signin:%'",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", sqlite=_SQLITE_V1, postgres=_POSTGRES_V1),
    Migration(2, "expiring sign-in state, token cache key ids", sqlite=_SQLITE_V2, postgres=_POSTGRES_V2),
)


def missing_steps(migrations: Sequence[Migration], current: int) -> list[Migration]:
    """The steps after `current`, in order; refuses a database newer than the code and a gapped history."""
    versions = [step.version for step in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must run 1, 2, 3… without gaps, got {versions}")
    if current > len(versions):
        raise SchemaVersionError(
            f"the database is at schema version {current}, newer than this Gradebot knows ({len(versions)})"
        )
    return list(migrations[current:])
