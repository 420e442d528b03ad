"""A district on these machines: the sandbox and Gradebot instances as real processes (tests/soak's plumbing) on one
PostgreSQL schema of the run's own, and plain SQL beside them to see what the instances wrote (leases, outbox rows,
migrations) and what a waiting migrator queues on (PostgreSQL's advisory locks)."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import pytest
from psycopg import sql

from storage.postgres import _lock_key
from tests.soak.databases import POSTGRES_URL, REQUIRE_POSTGRES, postgres_unreachable
from tests.soak.processes import ROOT, BotProcess, SandboxProcess, free_port

HEALTHY_GRAPH = {"throttleLimit": 0, "throttleHourlyLimit": 0}
"""A Graph without faults or throttling (the district tests script the faults they need)."""
COMMAND_TIMEOUT_S = 60.0


def require_postgres() -> None:
    """Skip without the test server (fail instead under GRADEBOT_REQUIRE_POSTGRES=1, as CI runs)."""
    reason = postgres_unreachable()
    if reason is None:
        return
    if REQUIRE_POSTGRES:
        pytest.fail(f"GRADEBOT_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(reason)


def schema_of(database_url: str) -> str:
    return parse_qs(urlsplit(database_url).query)["schema"][0]


def run_sql(database_url: str, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One statement in the URL's schema, on a connection of the test's own."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(schema_of(database_url))))
        cursor = connection.execute(statement, params)
        return list(cursor.fetchall()) if cursor.description else []


def schema_exists(database_url: str) -> bool:
    return bool(run_sql(database_url, "SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema_of(database_url),)))


def migrators_waiting(database_url: str) -> int:
    """How many sessions wait for the schema's migration lock (the advisory lock every opener takes to migrate)."""
    key = _lock_key(schema_of(database_url))
    rows = run_sql(
        database_url,
        """SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
           AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1""",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    )
    return int(rows[0][0])


@contextmanager
def migration_lock_held(database_url: str) -> Iterator[None]:
    """Hold the schema's migration lock from outside, as a migrator that is slow to finish would."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute("SELECT pg_advisory_lock(%s)", (_lock_key(schema_of(database_url)),))
        yield


async def wait_for(what: str, check: Any, timeout_s: float = COMMAND_TIMEOUT_S) -> Any:
    """Poll `check()` (sync or async) until it is truthy; fail naming `what` at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@dataclass
class Command:
    """What one `python app.py …` run printed and how it ended."""

    returncode: int
    stdout: str
    stderr: str


async def app_command(env: dict[str, str], *args: str) -> Command:
    """`python app.py ARGS` to completion (a server that starts is stopped at the timeout: a failed run)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "app.py",
        *args,
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), COMMAND_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    assert process.returncode is not None
    return Command(process.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))


@dataclass
class District:
    """One sandbox and Gradebot instances on one PostgreSQL schema; `first` and `second` are the running two."""

    root: Path
    sandbox: SandboxProcess
    database_url: str
    token_key: str
    first: BotProcess = field(init=False)
    second: BotProcess = field(init=False)

    def instance(self, name: str, database_url: str | None = None, **settings: str) -> BotProcess:
        """A Gradebot instance of this district (not started): same sandbox and key, its own port and logs."""
        run_dir = self.root / name
        run_dir.mkdir(parents=True, exist_ok=True)
        return BotProcess(
            run_dir,
            self.sandbox.base_url,
            database_url or self.database_url,
            free_port(),
            {"TOKEN_ENCRYPTION_KEY": self.token_key, **settings},
        )

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        """The sandbox's control endpoints (faults, write journal, connector record)."""
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as http:
            response = await http.request(method, f"{self.sandbox.base_url}{path}", json=body)
            response.raise_for_status()
            return response.json() if response.content else None

    def lease_holder(self, name: str = "reminders") -> str | None:
        rows = run_sql(self.database_url, "SELECT holder FROM leases WHERE name = %s AND expires_at > now()", (name,))
        return str(rows[0][0]) if rows else None


def new_token_key() -> str:
    """One TOKEN_ENCRYPTION_KEY for every instance: each must open the sign-ins another stored."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()
