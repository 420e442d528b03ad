"""Smoke test of the benchmark code on a tiny school with no latency: both approaches agree, Gradebot sends fewer
requests (counts only — timings are the benchmark's business, never a test's)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bench.host import open_sandbox
from bench.measure import Comparison, Measurement, budget_floor_s
from bench.naive import NaiveGraph, naive_ungraded
from bench.recording import Exchange, peak_in_window
from bench.report import results_json, table, write_json
from bench.scenarios import BenchOptions, TeacherTokens, run_all
from bench.school import SchoolShape, district_school
from sandbox.faults import FaultPlan

NO_LATENCY = FaultPlan(latency_ms=0.0, jitter_ms=0.0)
TINY = SchoolShape(teachers=2, classes_per_teacher=1, assignments=3, students=6)


class RecordedSleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


async def test_both_approaches_agree_and_gradebot_sends_fewer_requests(tmp_path: Path) -> None:
    comparisons = {c.key: c for c in await run_all(BenchOptions(TINY, NO_LATENCY, mode="in-process"))}
    assert set(comparisons) == {"ungraded", "returnAll", "sweep"}

    ungraded = comparisons["ungraded"]
    assert ungraded.details["ungraded"] > 0  # run_all raised BenchMismatchError had the two lists differed
    assert ungraded.gradebot.graph_requests < ungraded.naive.graph_requests
    assert ungraded.gradebot.http_requests < ungraded.naive.http_requests
    assert ungraded.gradebot.batch_items > 0 and ungraded.naive.batch_items == 0

    returned = comparisons["returnAll"]
    assert returned.details["returned"] > 1
    assert returned.gradebot.http_requests == 1  # one $batch for up to 20 returns
    assert returned.naive.http_requests == returned.details["returned"]
    assert returned.gradebot.graph_requests == returned.naive.graph_requests  # each batch item counts for Graph

    sweep = comparisons["sweep"]
    assert sweep.details["digestsSent"] == TINY.teachers and sweep.details["failedTeachers"] == 0
    assert sweep.gradebot.graph_requests < sweep.naive.graph_requests
    assert sweep.gradebot.throttled == 0 and sweep.gradebot.peak_window_requests == sweep.gradebot.graph_requests
    assert sweep.details["budget"]["gradebot"]["requestsPerTeacher"] == ungraded.gradebot.graph_requests

    rendered = table(list(comparisons.values()))
    assert all(c.title in rendered for c in comparisons.values())
    output = tmp_path / "latest.json"
    write_json(output, results_json(list(comparisons.values()), {"shape": TINY.to_json()}, "python -m bench.run"))
    written = json.loads(output.read_text())
    assert [s["key"] for s in written["scenarios"]] == ["ungraded", "returnAll", "sweep"]
    assert written["scenarios"][0]["ratios"]["graphRequests"] > 1


async def test_naive_client_waits_retry_after_on_429() -> None:
    async with open_sandbox(TINY, NO_LATENCY, mode="in-process") as host:
        tokens = TeacherTokens(host)
        teacher = (await host.teachers())[0]
        token = await tokens.get(teacher.id)
        async with httpx.AsyncClient(trust_env=False) as http:
            calm = await naive_ungraded(NaiveGraph(http, host.graph_url, token))
            fault = {"status": 429, "retryAfter": 3, "count": 2, "pathRegex": "/outcomes$"}
            await host.script_faults([fault])
            sleeps = RecordedSleeps()
            throttled = NaiveGraph(http, host.graph_url, token, sleep=sleeps)
            assert await naive_ungraded(throttled) == calm
    assert throttled.throttled == 2
    assert sleeps == [3.0, 3.0]


def test_district_gives_each_teacher_the_same_number_of_classes() -> None:
    school = district_school(SchoolShape(teachers=3, classes_per_teacher=1, assignments=1, students=3))
    directory = school.directory
    teaching = [u for u in directory.users.values() if u.role == "teacher" and directory.taught_by(u.id)]
    assert len(teaching) == 3
    assert all(len(directory.taught_by(u.id)) == 1 for u in teaching)


def test_peak_window_and_budget_arithmetic() -> None:
    exchanges = [Exchange(0.0, 20, 0), Exchange(5.0, 1, 0), Exchange(9.9, 20, 2), Exchange(10.0, 5, 0)]
    assert peak_in_window(exchanges, 10.0) == 41  # 0.0–9.9; at 10.0 the first one has left the window
    assert budget_floor_s(350) == 0.0
    assert budget_floor_s(351) == 10.0
    assert budget_floor_s(20_050) == 7200.0  # the hourly 10,000 binds before the 10-second windows


def test_ratios_are_naive_over_gradebot() -> None:
    gradebot = Measurement(0.5, 4, 10, 8, 0, 10)
    naive = Measurement(2.0, 40, 40, 0, 1, 30)
    assert Comparison("k", "t", gradebot, naive).ratios() == {"time": 4.0, "httpRequests": 10.0, "graphRequests": 4.0}
