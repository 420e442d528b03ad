"""/healthz (the process is alive) and /readyz (fit to take turns): the store answers at the schema version this
Gradebot knows, and Graph and the identity authority answered lately or answer a bounded probe now. The real server
is made to lose its SQLite file, its PostgreSQL server, its schema and its sandbox, and to get them back."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from bot.identity.accounts import AuthorityHttp
from bot.kernel.health import ReadinessLimits
from storage.migrations import SCHEMA_VERSION
from tests.bot.activities import message
from tests.bot.conftest import AppClient, World, WorldFactory
from tests.bot.relay import TcpRelay
from tests.storage.conftest import POSTGRES_URL, Database, drop_schema, new_schema_name, require_postgres

ALL_OK = {"store": "ok", "migrations": "ok", "graph": "ok", "identity": "ok"}
ALWAYS_PROBE = {"readiness": ReadinessLimits(fresh_s=0, reprobe_s=0)}
"""Probe Graph and the authority on every /readyz, instead of trusting an answer of the last minute."""


async def ready(client: AppClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = await response.json()
    return response.status, body


async def ready_again(client: AppClient, attempts: int = 150) -> dict[str, Any]:
    """/readyz until it answers 200 (a reconnecting pool takes a moment); fails if it never does."""
    body: dict[str, Any] = {}
    for _ in range(attempts):
        status, body = await ready(client)
        if status == 200:
            return body
        await asyncio.sleep(0.2)
    raise AssertionError(f"/readyz never became ready: {body}")


async def test_healthz_and_readyz_answer_200_when_everything_answers(world: World) -> None:
    response = await world.client.get("/healthz")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})


async def test_readyz_is_503_while_the_sqlite_file_is_gone_and_200_once_it_is_back(
    make_world: WorldFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "data"
    world = await make_world(database_url=f"sqlite:///{folder / 'gradebot.db'}")
    assert (await ready(world.client))[0] == 200

    folder.rename(tmp_path / "unmounted")
    status, body = await ready(world.client)
    assert status == 503
    assert body["status"] == "not ready" and body["failing"] == ["store", "migrations"]
    assert body["checks"]["store"] == "the database cannot be reached"
    assert body["checks"]["graph"] == "ok"
    assert str(tmp_path) not in json.dumps(body), "no paths, hosts or other details in a public answer"
    response = await world.client.get("/healthz")
    assert response.status == 200, "alive all the same: restarting would not bring the file back"

    (tmp_path / "unmounted").rename(folder)
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})


async def test_readyz_is_503_while_postgres_is_unreachable_and_200_once_it_is_back(make_world: WorldFactory) -> None:
    require_postgres()
    server = urlsplit(POSTGRES_URL)
    relay = TcpRelay(server.hostname or "127.0.0.1", server.port or 5432)
    await relay.restore()
    schema = new_schema_name()
    url = server._replace(netloc=f"{server.username}@127.0.0.1:{relay.port}", query=f"schema={schema}").geturl()
    world: World | None = None
    try:
        world = await make_world(database_url=url)
        assert (await ready(world.client))[0] == 200

        await relay.cut()
        status, body = await ready(world.client)
        assert status == 503 and "store" in body["failing"]
        assert body["checks"]["store"] in ("the database cannot be reached", "the database did not answer within 2 s")
        assert str(relay.port) not in json.dumps(body) and "postgres" not in json.dumps(body)

        await relay.restore()
        assert (await ready_again(world.client))["checks"] == ALL_OK
    finally:
        if world is not None:
            await world.client.close()
        await relay.cut()
        drop_schema(schema)


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_readyz_is_503_while_the_database_schema_is_not_the_one_this_gradebot_knows(
    make_world: WorldFactory, tmp_path: Path, backend: str
) -> None:
    """A newer Gradebot of a rolling deployment migrated the shared database: this one was not written for it."""
    if backend == "sqlite":
        database = Database("sqlite", f"sqlite:///{tmp_path / 'gradebot.db'}")
        world = await make_world(database_url=database.url)
    else:
        require_postgres()
        database = Database("postgres", POSTGRES_URL, new_schema_name())
        world = await make_world(database_url=f"{POSTGRES_URL}?schema={database.schema}")
    try:
        newer = SCHEMA_VERSION + 1
        database.execute(f"INSERT INTO schema_version (version, name) VALUES ({newer}, 'a newer Gradebot')")
        status, body = await ready(world.client)
        assert status == 503 and body["failing"] == ["migrations"]
        assert body["checks"]["migrations"] == (
            f"the database is at schema version {newer}, newer than this Gradebot knows ({SCHEMA_VERSION})"
        )
        database.execute(f"DELETE FROM schema_version WHERE version = {newer}")
        assert (await ready(world.client))[0] == 200
    finally:
        if database.schema is not None:
            await world.client.close()
            drop_schema(database.schema)


async def test_readyz_is_503_while_graph_and_the_authority_are_unreachable_and_200_once_they_answer(
    make_world: WorldFactory,
) -> None:
    world = await make_world(app_options=ALWAYS_PROBE)
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})

    await world.sandbox.stop()
    status, body = await ready(world.client)
    assert status == 503 and body["failing"] == ["graph", "identity"]
    assert body["checks"]["graph"].startswith("Microsoft Graph did not answer (connectError)")
    assert body["checks"]["identity"].startswith("the sign-in authority did not answer")
    assert body["checks"]["store"] == "ok"
    assert "127.0.0.1" not in json.dumps(body)

    await world.sandbox.start()  # the same ports again
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})


async def test_an_answer_of_the_last_minute_is_last_known_good_so_readyz_probes_nothing(world: World) -> None:
    assert (await ready(world.client))[0] == 200  # nothing had answered yet: both were probed, and answered

    await world.sandbox.stop()
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})


async def test_a_probes_result_is_reused_for_a_while_instead_of_probing_on_every_request(
    make_world: WorldFactory,
) -> None:
    world = await make_world(app_options={"readiness": ReadinessLimits(fresh_s=0, reprobe_s=3600)})
    assert (await ready(world.client))[0] == 200
    await world.sandbox.stop()
    assert (await ready(world.client))[0] == 200, "the probe of a moment ago answered"


async def test_the_answers_a_turn_gets_from_graph_and_the_authority_are_what_readyz_trusts(world: World) -> None:
    """The clients that talk to Graph and the authority remember their last answer: no /readyz probed here."""
    status, _ = await world.post(message(world.user("rosa"), "classes", world.sandbox.connector_url))
    assert status == 200
    await world.sandbox.stop()
    assert await ready(world.client) == (200, {"status": "ready", "failing": [], "checks": ALL_OK})


async def test_the_authoritys_client_bounds_every_request_and_remembers_only_answers() -> None:
    """msal applies its timeout only to a client it builds itself; Gradebot's own is bounded too (a silent authority
    would otherwise hold a worker thread, and a shutdown, for ever)."""
    with socket.socket() as silent:  # accepts connections (the kernel's backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        client = AuthorityHttp(None, timeout_s=0.2)
        with pytest.raises(requests.RequestException, match="timed out"):
            await asyncio.to_thread(client.get, f"http://127.0.0.1:{silent.getsockname()[1]}/")
    assert client.last_answer is None
