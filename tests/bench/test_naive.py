"""The naive client p1 compares Gradebot with: on a 429 it waits Retry-After and tries again, finding the same work."""

from __future__ import annotations

import httpx

from bench.host import open_sandbox
from bench.naive import NaiveGraph, naive_ungraded
from bench.school import SchoolShape
from sandbox.faults import FaultPlan

TINY = SchoolShape(teachers=1, classes_per_teacher=1, assignments=3, students=6)


class RecordedSleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_naive_client_waits_retry_after_on_429() -> None:
    async with open_sandbox(TINY, FaultPlan(), mode="in-process") as host:
        teacher = (await host.teachers())[0]
        token = await host.token(teacher.id)
        async with httpx.AsyncClient(trust_env=False) as http:
            calm = await naive_ungraded(NaiveGraph(http, host.graph_url, token))
            await host.script_faults([{"status": 429, "retryAfter": 3, "count": 2, "pathRegex": "/outcomes$"}])
            sleeps = RecordedSleeps()
            throttled = NaiveGraph(http, host.graph_url, token, sleep=sleeps)
            assert calm and await naive_ungraded(throttled) == calm
    assert throttled.throttled == 2
    assert sleeps == [3.0, 3.0]
