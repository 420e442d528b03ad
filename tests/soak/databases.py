"""A database of the soak run's own: a new SQLite file, or a new schema in the test PostgreSQL server (dropped
afterwards), so runs never see each other's rows."""

from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

Engine = Literal["sqlite", "postgres"]
POSTGRES_URL = os.environ.get("GRADEBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")  # noqa: TID251 - the harness's own switch
REQUIRE_POSTGRES = os.environ.get("GRADEBOT_REQUIRE_POSTGRES") == "1"  # noqa: TID251 - the harness's own switch


def postgres_unreachable() -> str | None:
    """Why the test PostgreSQL server cannot be used, or None when it can."""
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {POSTGRES_URL} is not reachable ({type(error).__name__})"
    return None


@contextmanager
def soak_database(engine: Engine, run_dir: Path) -> Iterator[str]:
    """The DATABASE_URL for one run (the caller checks `postgres_unreachable()` first)."""
    if engine == "sqlite":
        yield f"sqlite:///{run_dir / 'gradebot.db'}"
        return
    schema = f"gradebot_soak_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{separator}schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def outbox_rows(database_url: str) -> list[dict[str, Any]]:
    """Every outbox row (id, idempotency_key, status, attempts, payload) read with plain SQL: the soak matches its
    presses to Gradebot's entries by key prefix and typed values, without knowing how Gradebot builds its keys."""
    query = "SELECT id, idempotency_key, status, attempts, payload FROM outbox ORDER BY id"
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            rows = connection.execute(query).fetchall()
    else:
        schema = parse_qs(urlsplit(database_url).query)["schema"][0]
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema)))
            rows = connection.execute(query).fetchall()
    return [
        {
            "id": row[0],
            "key": row[1],
            "status": row[2],
            "attempts": row[3],
            "payload": row[4] if isinstance(row[4], dict) else json.loads(row[4]),
        }
        for row in rows
    ]
