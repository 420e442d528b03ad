"""Graceful shutdown of a real `python app.py`: on SIGTERM it stops taking connections, finishes the turn in flight,
gives a grade write in flight a moment to land and otherwise hands it back (pending, no lease: any instance resumes
it), stops its workers and exits 0 within 10 s."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from app import PARTS
from sandbox.app import Sandbox
from sandbox.faults import ScriptedFault
from storage import open_store
from tests.bot.activities import card_action
from tests.bot.conftest import WorldFactory, card_text, invoke_card, start_sandbox
from tests.bot.grading_helpers import action, shown_submission_id
from tests.bot.relay import TcpRelay
from tests.soak.processes import ROOT, free_port
from tests.storage.conftest import POSTGRES_URL, drop_schema, new_schema_name, require_postgres

EXIT_WITHIN_S = 10.0
HELD_MS = 100_000.0
"""A scripted delay this long is held until the test lets it go (the sandbox's sleep seam), not slept."""


class HeldSleep:
    """The sandbox's sleep: delays of HELD_MS wait for `release()`, every other one sleeps as usual."""

    def __init__(self) -> None:
        self.holding = asyncio.Event()
        self._released = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        if seconds * 1000 < HELD_MS:
            await asyncio.sleep(seconds)
            return
        self.holding.set()
        await self._released.wait()

    def release(self) -> None:
        self._released.set()


async def _refused(url: str) -> bool:
    """Whether a new connection to Gradebot is refused within a few seconds (each try on a new connection)."""
    for _ in range(100):
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as fresh:
            try:
                await fresh.get(f"{url}/healthz")
            except httpx.ConnectError:
                return True
        await asyncio.sleep(0.05)
    return False


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    running = start_sandbox()
    await running.start()
    yield running
    await running.stop()


async def _start_gradebot(sandbox: Sandbox, database_url: str, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}  # noqa: TID251 - the child's environment
    env.update(
        SANDBOX_URL=sandbox.base_url,
        DATABASE_URL=database_url,
        PORT=str(port),
        REMINDERS="off",
        GRAPH_TIMEOUT_S="30",  # a slow Graph may take this long: shutting down must not wait for it
        TOKEN_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
    )
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "app.py", cwd=ROOT, env=env, stdout=output, stderr=asyncio.subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
        for _ in range(600):
            assert process.returncode is None, f"Gradebot exited with {process.returncode}: {_tail(log)}"
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return process, url
            await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError(f"Gradebot never answered /healthz: {_tail(log)}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gradebot.db'}"
        return
    require_postgres()
    schema = new_schema_name()
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        drop_schema(schema)


async def test_sigterm_finishes_the_turn_hands_back_the_write_in_flight_and_exits_0_within_10_s(
    sandbox: Sandbox, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "gradebot.log"
    process, url = await _start_gradebot(sandbox, database_url, log)
    held = HeldSleep()
    sandbox.faults.sleep = held
    rosa = next(u for u in sandbox.directory.users.values() if u.user_principal_name.startswith("rosa"))
    bio = next(c for c in sandbox.directory.classes.values() if c.class_code == "BIO101")
    worksheet = next(a for a in sandbox.school.assignments_of(bio.id) if a.display_name == "Cell structure worksheet")
    try:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:

            async def post(activity: dict[str, Any]) -> tuple[int, Any]:
                response = await client.post(f"{url}/api/messages", json=activity)
                return response.status_code, response.json()

            data = {"classId": bio.id, "assignmentId": worksheet.id}
            status, body = await post(card_action(rosa, "showGrading", data, sandbox.connector_url))
            assert status == 200, body
            card = invoke_card(body)
            target = shown_submission_id(card)
            # The grade's $batch reaches Graph and is held there: a write in flight when SIGTERM comes.
            sandbox.faults.add_script(
                [ScriptedFault(kind="delay", delay_ms=HELD_MS, count=1, method="POST", path_regex=r"/\$batch$")]
            )
            save = {**action(card, "grade")["data"], "points": "7", "feedback": "Held at shutdown"}
            turn = asyncio.ensure_future(post(card_action(rosa, "grade", save, sandbox.connector_url)))
            await asyncio.wait_for(held.holding.wait(), 30)

            signalled = datetime.now(UTC)
            process.send_signal(signal.SIGTERM)
            assert await _refused(url), "a new connection is refused once SIGTERM came"
            status, body = await turn
            assert status == 200, "the turn in flight was finished"
            assert "Saving" in card_text(invoke_card(body))
            try:
                code = await asyncio.wait_for(process.wait(), EXIT_WITHIN_S)
            except TimeoutError:
                raise AssertionError(f"Gradebot did not exit within 10 s: {_tail(log)}") from None
            assert code == 0, _tail(log)
    finally:
        held.release()
        if process.returncode is None:
            process.kill()
            await process.wait()

    async with await open_store(database_url) as store:
        [entry] = await store.pending_outbox_for(rosa.id)
        assert entry.submission_id == target
        # Handed back: the lease cut to Graph's read timeout (GRAPH_TIMEOUT_S), for the held request may land until
        # then, instead of the 90 s a crash leaves.
        assert entry.status == "inflight" and entry.lease_until is not None
        cut_to = signalled + timedelta(seconds=30)
        assert cut_to <= entry.lease_until <= cut_to + timedelta(seconds=EXIT_WITHIN_S), entry.lease_until
        assert await store.owed_notices(10) == [entry.id], "the teacher told 'Saving…' is still owed the end"
    assert "handed back 1" in _tail(log)


async def test_a_gradebot_whose_database_went_away_still_stops_every_worker_and_closes(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """The outbox cannot hand its writes back (their leases run out instead) and the reminder lease cannot be given
    up: each is logged, bounded in time, and keeps nothing else from stopping."""
    require_postgres()
    server = urlsplit(POSTGRES_URL)
    relay = TcpRelay(server.hostname or "127.0.0.1", server.port or 5432)
    await relay.restore()
    schema = new_schema_name()
    url = server._replace(netloc=f"{server.username}@127.0.0.1:{relay.port}", query=f"schema={schema}").geturl()
    try:
        world = await make_world(database_url=url, reminders_enabled=True)
        parts = world.client.app[PARTS]
        assert sorted(parts.workers.running) == ["janitor", "outbox", "reminders"]
        await relay.cut()

        await world.client.close()

        assert parts.workers.running == []
        assert "outbox did not stop within" in caplog.text
    finally:
        await relay.cut()
        drop_schema(schema)


async def test_what_startup_made_is_left_out_of_garbage_collection_until_the_app_closes(
    make_world: WorldFactory,
) -> None:
    world = await make_world()
    assert gc.get_freeze_count() > 0  # a full collection walks only what turns made since startup
    await world.client.close()
    assert gc.get_freeze_count() == 0
