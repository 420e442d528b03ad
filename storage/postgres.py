"""PostgresStore: the shared backend for several Gradebot instances, on psycopg 3 (async) and a connection pool, in
autocommit with the session time zone at UTC and `search_path` at the chosen schema. Every decision that must hold
across instances is one atomic statement (INSERT … ON CONFLICT …, UPDATE … WHERE … RETURNING)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Sequence
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
from storage.records import Row, dump_json, utc
from storage.store import CURRENT_VERSION, RECORD_VERSION, Store, StoreClosedError, StoreError, positive

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _native(statement: str) -> str:
    """A shared statement (`?` marks each parameter) in psycopg's own `%s` style."""
    return statement.replace("?", "%s")


def _param(value: object) -> object:
    """Times as timestamptz (sessions run at UTC), JSON objects as json, frozensets as sorted arrays."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, dict):
        return Json(value, dumps=dump_json)
    return sorted(value) if isinstance(value, frozenset) else value


def session_conninfo(conninfo: str, schema: str | None) -> str:
    """`conninfo` (URL or key=value) plus UTC and, when given, the schema as search_path: a lowercase identifier, so
    it needs no quoting anywhere (connection options included)."""
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ValueError(f"schema must be a lowercase identifier (a-z, 0-9, _), got {schema!r}")
    given = conninfo_to_dict(conninfo)
    extra = "-c TimeZone=UTC" + ("" if schema is None else f" -c search_path={schema}")
    options = f"{given['options']} {extra}" if given.get("options") else extra
    return make_conninfo(conninfo, options=options, application_name=given.get("application_name", "gradebot"))


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
        await cursor.execute(CURRENT_VERSION)
        current = await cursor.fetchone()
        for step in missing_steps(migrations, int(current["version"]) if current else 0):
            for statement in step.postgres:
                await cursor.execute(statement)
            await cursor.execute(_native(RECORD_VERSION), (step.version, step.name))


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
        connect_timeout: timedelta = timedelta(seconds=10),
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> PostgresStore:
        """Open a pool on `conninfo` (URL or key=value), create `schema` if missing, apply missing migrations."""
        if max_connections < 1:
            raise ValueError(f"max_connections must be at least 1, got {max_connections}")
        timeout = positive(connect_timeout, "connect_timeout").total_seconds()
        pool = AsyncConnectionPool(
            session_conninfo(conninfo, schema),
            min_size=1,
            max_size=max_connections,
            kwargs={"autocommit": True},
            check=AsyncConnectionPool.check_connection,
            timeout=timeout,
            name="gradebot-store",
            open=False,
        )
        store = cls(pool)
        try:
            await pool.open(wait=True, timeout=timeout)
            async with store._connection() as connection:
                await _migrate(connection, schema, migrations)
        except BaseException as error:
            await store.close()
            if isinstance(error, psycopg.Error):
                raise _store_error("cannot open the PostgreSQL store", error) from _safe_cause(error)
            raise
        return store

    async def close(self) -> None:
        if not self._closed:
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

    async def _sql(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement on its own (autocommit, so a write is atomic)."""
        async with self._connection() as connection, connection.cursor(row_factory=dict_row) as cursor:
            await cursor.execute(_native(statement), [_param(value) for value in params])
            return list(await cursor.fetchall()) if cursor.description else []
