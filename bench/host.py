"""A running sandbox for one benchmark school (in this process or a child process) and the admin calls a benchmark
needs: request counters, throttle-window reset, delegated tokens for seeded teachers, and who teaches what."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from bench.school import SchoolShape, district_school
from bench.serve import READY_PREFIX
from bot.settings import Settings
from graph.connection import GraphHttp, RequestBudget
from sandbox.app import Sandbox
from sandbox.faults import FaultPlan

HostMode = Literal["subprocess", "in-process"]
REPOSITORY = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 300.0
"""Generating a big district takes a few seconds; the default school well under one."""


class SandboxHostError(Exception):
    """The benchmark sandbox could not be started or answered its admin calls unexpectedly."""


@dataclass(frozen=True, slots=True)
class GraphStats:
    """The sandbox's Graph counters since the last reset."""

    requests: int
    """Graph requests counted against the budget: plain requests plus `$batch` items, 429s included."""
    batches: int
    batch_items: int
    throttled: int

    @property
    def http_requests(self) -> int:
        """Round trips: plain requests plus `$batch` envelopes."""
        return self.requests - self.batch_items + self.batches

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GraphStats:
        return cls(int(data["requests"]), int(data["batches"]), int(data["batchItems"]), int(data["throttled"]))


@dataclass(frozen=True, slots=True)
class SeededTeacher:
    id: str
    upn: str
    class_ids: tuple[str, ...]


class SandboxHost:
    """Talks to a started sandbox over HTTP on 127.0.0.1, whichever process it runs in."""

    def __init__(self, base_url: str, tenant_id: str, plan: FaultPlan, admin: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.graph_url = f"{self.base_url}/v1.0"
        self.tenant_id = tenant_id
        self.plan = plan
        self._admin = admin

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = await self._admin.request(method, self.base_url + path, json=body)
        if response.status_code >= 400:
            raise SandboxHostError(f"{method} {path} answered {response.status_code}")
        return response.json()

    async def reset(self, plan: FaultPlan | None = None) -> None:
        """Fresh throttle windows (the plan again, or `plan` from now on; either reseeds jitter) and zeroed counters."""
        self.plan = plan or self.plan
        await self._call("PUT", "/_sandbox/graph/faults", self.plan.to_json())
        await self._call("POST", "/_sandbox/graph/stats/reset")

    async def script_faults(self, faults: list[dict[str, Any]]) -> None:
        """Queue scripted Graph faults (`POST /_sandbox/graph/faults/script`), e.g. a few 429s."""
        await self._call("POST", "/_sandbox/graph/faults/script", faults)

    async def stats(self) -> GraphStats:
        return GraphStats.from_json(await self._call("GET", "/_sandbox/graph/stats"))

    async def token(self, user_id: str) -> str:
        """A delegated Graph token for a seeded user, issued to the bot's app (so every teacher shares its budget)."""
        answer = await self._call("POST", "/_sandbox/token", {"userId": user_id})
        return str(answer["access_token"])

    async def teachers(self) -> list[SeededTeacher]:
        """Seeded users who teach at least one class, by UPN."""
        listed = []
        for user in await self._call("GET", "/_sandbox/users"):
            taught = tuple(c["id"] for c in user["classes"] if c["role"] == "teacher")
            if user["role"] == "teacher" and taught:
                listed.append(SeededTeacher(user["id"], user["upn"], taught))
        return sorted(listed, key=lambda teacher: teacher.upn)


@contextlib.asynccontextmanager
async def open_sandbox(
    shape: SchoolShape, plan: FaultPlan, *, mode: HostMode = "subprocess"
) -> AsyncIterator[SandboxHost]:
    """A sandbox serving `district_school(shape)` with `plan`, stopped on exit."""
    async with httpx.AsyncClient(timeout=30.0, trust_env=False) as admin:
        if mode == "in-process":
            async with Sandbox(district_school(shape), faults=plan) as sandbox:
                yield await _connect(sandbox.base_url, plan, admin)
            return
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.serve",
            json.dumps(shape.to_json()),
            json.dumps(plan.to_json()),
            cwd=REPOSITORY,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            base_url = await asyncio.wait_for(_ready(process), START_TIMEOUT_S)
            yield await _connect(base_url, plan, admin)
        finally:
            await stop_process(process)


async def _connect(base_url: str, plan: FaultPlan, admin: httpx.AsyncClient) -> SandboxHost:
    response = await admin.get(f"{base_url}/_sandbox/info")
    if response.status_code != 200:
        raise SandboxHostError(f"GET /_sandbox/info answered {response.status_code}")
    return SandboxHost(base_url, str(response.json()["tenantId"]), plan, admin)


async def _ready(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        text = line.decode().strip()
        if text.startswith(READY_PREFIX):
            return str(json.loads(text.removeprefix(READY_PREFIX))["baseUrl"])
    raise SandboxHostError(f"the benchmark sandbox exited (code {await process.wait()}) before it was ready")


async def stop_process(process: asyncio.subprocess.Process) -> None:
    """Terminate a child, waiting up to 10 s before killing it."""
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10.0)
        except TimeoutError:
            process.kill()
            await process.wait()


def product_http(host: SandboxHost, transport: httpx.AsyncBaseTransport | None = None) -> GraphHttp:
    """Graph access to the sandbox configured as the product's defaults configure it (bot/settings.py)."""
    settings = Settings.from_env({})
    return GraphHttp(
        host.graph_url,
        read_timeout=settings.graph_timeout_s,
        max_concurrency=settings.graph_max_concurrency,
        budget=RequestBudget(settings.graph_request_budget),
        transport=transport,
    )
