"""A tiny scripted Graph: a real aiohttp server on 127.0.0.1 that answers a queue of steps and records requests.

Used for the client behaviours the sandbox should not be asked to fake: drops, hangs, exact retry sequences.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

Step = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    method: str
    path_qs: str
    headers: Mapping[str, str]
    body: Any

    @property
    def path(self) -> str:
        return self.path_qs.split("?", 1)[0]


class ScriptedGraph:
    """Answers each request with the next queued step (or `default` when the queue is empty)."""

    def __init__(self) -> None:
        self.steps: deque[Step] = deque()
        self.seen: list[Seen] = []
        self.default: Step | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.base = ""

    def then(self, *steps: Step) -> ScriptedGraph:
        self.steps.extend(steps)
        return self

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.steps:
                step = self.steps.popleft()
            elif self.default is not None:
                step = self.default
            else:
                return web.json_response({"error": {"code": "scriptExhausted", "message": "no step"}}, status=599)
            return await step(request)
        finally:
            self.in_flight -= 1


def reply(status: int = 200, body: Any = None, headers: Mapping[str, str] | None = None) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        if body is None:
            return web.Response(status=status, headers=headers)
        return web.json_response(body, status=status, headers=headers)

    return step


def graph_error(status: int, code: str, inner: str | None = None, retry_after: str | None = None) -> Step:
    error: dict[str, Any] = {"code": code, "message": "scripted failure"}
    if inner is not None:
        error["innerError"] = {"code": inner, "request-id": "req-inner"}
    return reply(status, {"error": error}, {"Retry-After": retry_after} if retry_after is not None else None)


def drop() -> Step:
    """Close the connection without answering (a dropped connection)."""

    async def step(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        raise asyncio.CancelledError

    return step


def hang(seconds: float = 5.0) -> Step:
    """Answer only after `seconds` (longer than the client's read timeout)."""

    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response({})

    return step


def slow_ok(seconds: float, body: Any) -> Step:
    async def step(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return web.json_response(body)

    return step


def batch_answer(answer: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Step:
    """A `$batch` step: `answer(item)` gives `{status, headers?, body?}` for each request item (sent back reversed)."""

    async def step(request: web.Request) -> web.StreamResponse:
        payload = await request.json()
        responses = [{"id": item["id"], **answer(item)} for item in payload["requests"]]
        return web.json_response({"responses": list(reversed(responses))})

    return step
