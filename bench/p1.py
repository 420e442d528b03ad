"""p1: `ungraded` for one teacher with one class of 40 assignments × 35 students at 100 ms per round trip, Gradebot
(`EducationService.ungraded`, product settings) against the naive N+1 client, checked to find the same work.

Gradebot runs cold (a fresh service, so no cache helps, on one long-lived GraphHttp as in the product) three times
after a warm-up, and its median time counts. The naive client is measured at 100 ms. `--quick` runs both on a class
of 8 assignments × 35 students, the naive client at 0 ms: it is strictly sequential, so its time is taken as its HTTP
calls × 100 ms, the least it could take (the quick ratio is a floor)."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from bench.figures import Figure
from bench.host import GraphStats, SandboxHost, SeededTeacher, open_sandbox, product_http
from bench.naive import NaiveGraph, naive_ungraded
from bench.school import SchoolShape
from bench.timeline import Timeline
from bot.kernel.turn import Teacher
from bot.school.service import EducationService
from graph.batch import MAX_BATCH_SIZE
from sandbox.faults import FaultPlan

TITLE = "p1: ungraded, 1 teacher, 1 class of 40 assignments × 35 students (--quick: 8 × 35), 100 ms per round trip"
SHAPE = SchoolShape(teachers=1, classes_per_teacher=1, assignments=40, students=35)
QUICK_SHAPE = SchoolShape(teachers=1, classes_per_teacher=1, assignments=8, students=35)
ROUND_TRIP_S = 0.1
GRADEBOT_RUNS = 3
TARGET_ROUND_TRIPS = 4
TARGET_RATIO = 200
T = TypeVar("T")
Found = set[tuple[str, str]]
"""(submission id, student name) of every submission waiting for a grade."""


async def _counted(host: SandboxHost, plan: FaultPlan, work: Callable[[], Awaitable[T]]) -> tuple[float, GraphStats, T]:
    """`work` from fresh throttle windows and zeroed counters: its wall time, the sandbox's counts, its result."""
    await host.reset(plan)
    started = time.perf_counter()
    result = await work()
    return time.perf_counter() - started, await host.stats(), result


async def _gradebot(host: SandboxHost, seeded: SeededTeacher, token: str) -> list[tuple[float, GraphStats, Found, int]]:
    """A warm-up, then GRADEBOT_RUNS cold turns: a fresh service (no cache) on the one long-lived GraphHttp, as in
    the product; each with its wall time, counts, findings and critical path."""

    async def provide(refresh: bool = False) -> str:
        return token

    timeline = Timeline()
    teacher = Teacher(host.tenant_id, seeded.id, provide)
    plan = FaultPlan(latency_ms=ROUND_TRIP_S * 1000)
    runs = []
    async with contextlib.aclosing(product_http(host, timeline)) as http:

        async def ungraded() -> Found:
            items = await EducationService(http).ungraded(teacher, None)
            return {(item.submission.id, item.student_name) for item in items}

        for _ in range(1 + GRADEBOT_RUNS):
            timeline.spans.clear()
            seconds, stats, found = await _counted(host, plan, ungraded)
            runs.append((seconds, stats, found, timeline.critical_path()))
    return runs[1:]


async def _naive(host: SandboxHost, token: str, latency_s: float) -> tuple[float, GraphStats, Found]:
    async def ungraded() -> Found:
        async with httpx.AsyncClient(timeout=30.0, trust_env=False) as client:
            found = await naive_ungraded(NaiveGraph(client, host.graph_url, token))
        return {(item.submission_id, item.student_name) for item in found}

    return await _counted(host, FaultPlan(latency_ms=latency_s * 1000), ungraded)


async def measure(quick: bool) -> list[Figure]:
    shape = QUICK_SHAPE if quick else SHAPE
    # taughtClasses, the assignments page and the roster page, then one `$batch` per 20 submission lists.
    most_http_calls = 3 + math.ceil(shape.assignments / MAX_BATCH_SIZE)
    most_graph_requests = 3 + shape.assignments
    async with open_sandbox(shape, FaultPlan()) as host:
        seeded = (await host.teachers())[0]
        token = await host.token(seeded.id)
        runs = await _gradebot(host, seeded, token)
        naive_seconds, naive, naive_found = await _naive(host, token, 0.0 if quick else ROUND_TRIP_S)
    if quick:
        naive_seconds = naive.http_requests * ROUND_TRIP_S
    seconds = statistics.median(run[0] for run in runs)
    stats, found = runs[-1][1], runs[-1][2]
    assert found and all(run[2] == naive_found for run in runs), "Gradebot and the naive client disagree"
    assert all(run[1] == stats for run in runs), "Gradebot's requests differ from run to run"
    assert stats.throttled == 0 and naive.throttled == 0, "throttled"
    assert stats.http_requests <= most_http_calls, f"{stats.http_requests} HTTP calls > {most_http_calls}"
    assert stats.requests <= most_graph_requests, f"{stats.requests} Graph requests > {most_graph_requests}"
    round_trips = seconds / ROUND_TRIP_S
    critical = max(run[3] for run in runs)
    assert critical <= 3, f"{critical} round trips one after another > 3"
    ratio = naive_seconds / seconds
    return [
        Figure(
            "p1_round_trips",
            round(round_trips, 1),
            "rtt",
            f"<= {TARGET_ROUND_TRIPS}",
            round_trips <= TARGET_ROUND_TRIPS,
        ),
        Figure("p1_sequential_round_trips", critical, "rtt", "<= 3", True),
        Figure("p1_http_calls", stats.http_requests, "req", f"<= {most_http_calls}", True),
        Figure("p1_seconds", round(seconds, 2), "s", "<= 0.45", seconds <= 0.45),
        Figure("p1_graph_requests", stats.requests, "req", f"<= {most_graph_requests}", True),
        Figure("p1_naive_seconds", round(naive_seconds, 1), "s", "floor: calls × 100 ms" if quick else ""),
        Figure("p1_naive_http_calls", naive.http_requests, "req"),
        Figure("p1_ratio_vs_naive", round(ratio), "x", f">= {TARGET_RATIO}", ratio >= TARGET_RATIO),
    ]
