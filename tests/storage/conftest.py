"""Fixtures for the Store contract suite: `database` is parametrized over every backend, `store` is opened on it.

SQLite gets a new file per test. PostgreSQL gets a fresh schema per test module, emptied before each test and dropped
afterwards (`fresh_database` gives a brand-new schema to tests that need one). Without a reachable server the
PostgreSQL tests are skipped, unless GRADEBOT_REQUIRE_POSTGRES=1 (CI), where they fail instead.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from storage import Store, open_store

POSTGRES_URL = os.environ.get("GRADEBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")  # noqa: TID251 - the test harness's own switches and child environments
REQUIRE_POSTGRES = os.environ.get("GRADEBOT_REQUIRE_POSTGRES") == "1"  # noqa: TID251 - the test harness's own switches and child environments


@dataclass(frozen=True)
class Database:
    """One empty database a test may open any number of Store objects on (each one stands for a process)."""

    backend: str
    url: str
    schema: str | None = None

    async def open(self, **options: Any) -> Store:
        if self.schema is None:
            return await open_store(self.url, **options)
        separator = "&" if "?" in self.url else "?"
        return await open_store(f"{self.url}{separator}schema={self.schema}", **options)

    def execute(self, statement: str) -> list[tuple[Any, ...]]:
        """Run raw SQL beside the store (to inspect or tamper with what it wrote)."""
        if self.backend == "sqlite":
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as connection:
                return connection.execute(statement).fetchall()
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema or "public")))
            cursor = connection.execute(statement)
            return cursor.fetchall() if cursor.description else []


def stored_time(value: str | datetime) -> datetime:
    """A time column as `Database.execute` returns it: ISO 8601 text from SQLite, a datetime from PostgreSQL."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


@functools.cache
def postgres_unreachable() -> str | None:
    """Why the test PostgreSQL server cannot be used, or None when it can."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(error).__name__}: {error})".strip()
    return None


def require_postgres() -> None:
    reason = postgres_unreachable()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"GRADEBOT_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def new_schema_name() -> str:
    return f"gradebot_test_{uuid.uuid4().hex[:12]}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def empty_schema(schema: str) -> None:
    """Delete every row a previous test left, keeping the migrated tables."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        tables = connection.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'schema_version'", (schema,)
        ).fetchall()
        for (table,) in tables:
            connection.execute(sql.SQL("DELETE FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))


@pytest.fixture(scope="module")
def module_schema() -> Iterator[str]:
    require_postgres()
    schema = new_schema_name()
    try:
        yield schema
    finally:
        drop_schema(schema)


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """An empty database (new SQLite file, or this module's PostgreSQL schema emptied)."""
    if request.param == "sqlite":
        return Database("sqlite", f"sqlite:///{tmp_path / 'gradebot.db'}")
    require_postgres()
    schema: str = request.getfixturevalue("module_schema")
    empty_schema(schema)
    return Database("postgres", POSTGRES_URL, schema)


@pytest.fixture(params=BACKENDS)
def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database nobody has opened yet: no file, or no schema."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'fresh' / 'gradebot.db'}")
        return
    require_postgres()
    schema = new_schema_name()
    try:
        yield Database("postgres", POSTGRES_URL, schema)
    finally:
        drop_schema(schema)


@pytest.fixture
async def store(database: Database) -> AsyncIterator[Store]:
    async with await database.open() as opened:
        yield opened
