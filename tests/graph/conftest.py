"""Fixtures for graph/ tests: the scripted Graph server, a recording sleep and a counting token provider."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web

from graph.connection import GraphHttp, RetryPolicy
from tests.graph.scripted import ScriptedGraph

ServerFactory = Callable[..., Awaitable[Any]]


class RecordedSleeps(list[float]):
    """A `sleep` seam that records each requested delay instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


class CountingTokens:
    """A TokenProvider handing out `token-1`, `token-2`, … (a new one on every call, like a refresh)."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, refresh: bool = False) -> str:
        self.calls += 1
        return f"token-{self.calls}"


@pytest.fixture
async def scripted(aiohttp_server: ServerFactory) -> ScriptedGraph:
    graph = ScriptedGraph()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", graph.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    graph.base = str(server.make_url("/v1.0"))
    return graph


@pytest.fixture
def sleeps() -> RecordedSleeps:
    return RecordedSleeps()


@pytest.fixture
def tokens() -> CountingTokens:
    return CountingTokens()


@pytest.fixture
def policy() -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.1, max_delay=1.0, max_total_wait=5.0)


@pytest.fixture
async def http(scripted: ScriptedGraph, sleeps: RecordedSleeps, policy: RetryPolicy) -> AsyncIterator[GraphHttp]:
    connection = GraphHttp(
        scripted.base, retry=policy, sleep=sleeps, random=lambda: 1.0, connect_timeout=1.0, read_timeout=0.3
    )
    yield connection
    await connection.aclose()
