"""Realism and faults: the plan (JSON, CLI flags), latency, Graph's throttling budget, scripted and rate-based
faults over real HTTP, the admin endpoints and the counters."""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sandbox.directory import BOT_APP_ID
from sandbox.faults import (
    FaultConfigError,
    FaultDecision,
    FaultPlan,
    Faults,
    ScriptedFault,
    add_fault_arguments,
    fault_plan_from_args,
)
from sandbox.graph_api import setup_graph
from sandbox.school import POINTS_OUTCOME_ID, PointsOutcome, School
from sandbox.tokens import TokenAuthority
from tests.sandbox.conftest import ROSA, AppClient, FakeMonotonic, GraphCaller, SleepRecorder

ClientFactory = Callable[[web.Application], Awaitable[AppClient]]


def test_the_default_plan_is_a_healthy_graph_with_its_real_budget() -> None:
    plan = FaultPlan()
    assert (plan.throttle_limit, plan.throttle_window_s, plan.throttle_hourly_limit) == (350, 10.0, 10_000)
    assert plan.error_rate == plan.timeout_rate == plan.drop_rate == plan.latency_ms == 0


def test_the_plan_round_trips_through_json() -> None:
    plan = FaultPlan(latency_ms=20, jitter_ms=5, throttle_limit=7, error_rate=0.25, error_statuses=(503,), seed=9)
    data = plan.to_json()
    assert data["latencyMs"] == 20 and data["throttleWindowS"] == 10 and data["errorStatuses"] == [503]
    assert FaultPlan.from_json(data) == plan


@pytest.mark.parametrize(
    "data",
    [
        {"errorRate": 1.5},
        {"dropRate": -0.1},
        {"latencyMs": -1},
        {"throttleLimit": -3},
        {"throttleLimit": 2.5},
        {"errorStatuses": [404]},
        {"throttleRate": 2},
        {"lostRate": -1},
        {"slowRate": -0.5},
        {"slowMs": -1},
        {"throttleRetryAfterS": -1},
        {"latencyMs": "fast"},
        {"bogus": 1},
    ],
)
def test_nonsense_plans_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(FaultConfigError):
        FaultPlan.from_json(data)


@pytest.mark.parametrize(
    "data",
    [{"fault": "explode"}, {"status": 200}, {"count": 0}, {"pathRegex": "("}, {"status": "503"}, {"when": "now"}],
)
def test_nonsense_scripted_faults_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(FaultConfigError):
        ScriptedFault.from_json(data)


def test_cli_flags_build_the_plan() -> None:
    parser = argparse.ArgumentParser()
    add_fault_arguments(parser)
    assert fault_plan_from_args(parser.parse_args([])) == FaultPlan()
    args = parser.parse_args(
        [
            "--latency-ms=40",
            "--jitter-ms=10",
            "--throttle-limit=50",
            "--throttle-window-s=2",
            "--throttle-hourly-limit=0",
            "--error-rate=0.1",
            "--timeout-rate=0.05",
            "--timeout-s=3",
            "--drop-rate=0.02",
            "--fault-seed=42",
            "--action-settle-ms=250",
            "--throttle-rate=0.05",
            "--throttle-retry-after-s=2",
            "--slow-rate=0.04",
            "--slow-ms=2600",
            "--error-statuses=503",
            "--lost-rate=0.03",
        ]
    )
    assert fault_plan_from_args(args) == FaultPlan(
        latency_ms=40,
        jitter_ms=10,
        throttle_limit=50,
        throttle_window_s=2,
        throttle_hourly_limit=0,
        error_rate=0.1,
        timeout_rate=0.05,
        timeout_s=3,
        drop_rate=0.02,
        seed=42,
        action_settle_ms=250,
        throttle_rate=0.05,
        throttle_retry_after_s=2,
        slow_rate=0.04,
        slow_ms=2600,
        error_statuses=(503,),
        lost_rate=0.03,
    )


@pytest.mark.parametrize("flag", ["--error-statuses=404", "--error-statuses=x", "--error-statuses=,"])
def test_error_statuses_must_be_5xx(flag: str) -> None:
    parser = argparse.ArgumentParser()
    add_fault_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args([flag])


def test_the_same_seed_gives_the_same_faults() -> None:
    plan = FaultPlan(error_rate=0.5, drop_rate=0.1, timeout_rate=0.1, jitter_ms=50, seed=11)
    runs = []
    for _ in range(2):
        faults = Faults(plan)
        runs.append([(faults.decide("GET", "/v1.0/x", http=True), faults.latency_s()) for _ in range(40)])
    assert runs[0] == runs[1]
    kinds = {decision.kind if decision else None for decision, _ in runs[0]}
    assert {None, "status"} <= kinds
    other = Faults(FaultPlan(error_rate=0.5, drop_rate=0.1, timeout_rate=0.1, jitter_ms=50, seed=12))
    assert [(other.decide("GET", "/v1.0/x", http=True), other.latency_s()) for _ in range(40)] != runs[0]


async def test_latency_and_jitter_delay_every_graph_request(graph: GraphCaller, sleeps: SleepRecorder) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"latencyMs": 120, "jitterMs": 30, "seed": 3})
    for _ in range(5):
        assert (await graph.get("/education/me", graph.token(ROSA))).status == 200
    assert len(sleeps.delays) == 5
    assert all(0.12 <= delay < 0.15 for delay in sleeps.delays)
    assert len(set(sleeps.delays)) > 1
    await graph.admin("GET", "/_sandbox/graph/stats")
    assert len(sleeps.delays) == 5  # admin endpoints are not Graph: no latency, no faults


async def test_the_throttle_budget_is_per_app_and_tenant_and_slides(
    graph: GraphCaller, monotonic: FakeMonotonic
) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 3, "throttleWindowS": 10})
    work = graph.path("BIO101", "bio-cells")  # the assignment service: 350 / 10 s per app and tenant
    teacher = graph.token(ROSA)
    statuses = []
    for _ in range(3):
        statuses.append((await graph.get(work, teacher)).status)
        monotonic.now += 2
    throttled = await graph.get(work, teacher)
    assert statuses == [200, 200, 200] and throttled.status == 429
    assert throttled.headers["Retry-After"] == "4"  # the oldest request leaves the window in 4 s
    assert throttled.body["error"]["code"] == "TooManyRequests"
    assert throttled.body["error"]["innerError"]["code"] == "429"
    other_app = graph.token(ROSA, azp="11111111-2222-3333-4444-555555555555")
    assert (await graph.get(work, other_app)).status == 200
    monotonic.now += 4
    assert (await graph.get(work, teacher)).status == 200
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["throttled"] == 1 and stats["throttledByApp"] == {BOT_APP_ID: 1}
    assert stats["requestsByApp"][BOT_APP_ID] == 5


async def test_the_hourly_budget(graph: GraphCaller, monotonic: FakeMonotonic) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 0, "throttleHourlyLimit": 2})
    work = graph.path("BIO101", "bio-cells")
    token = graph.app_token()
    assert [(await graph.get(work, token)).status for _ in range(2)] == [200, 200]
    refused = await graph.get(work, token)
    assert refused.status == 429 and refused.headers["Retry-After"] == "3600"
    monotonic.now += 3600
    assert (await graph.get(work, token)).status == 200


async def test_roster_reads_do_not_spend_the_assignment_service_budget(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 1})
    teacher = graph.token(ROSA)
    assert [(await graph.get("/education/me/taughtClasses", teacher)).status for _ in range(4)] == [200] * 4
    assert (await graph.get(graph.path("BIO101", "bio-cells"), teacher)).status == 200
    assert (await graph.get(graph.path("BIO101", "bio-cells"), teacher)).status == 429
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["rosterRequests"] == 4 and stats["throttled"] == 1


async def test_unauthenticated_requests_are_counted_but_not_budgeted(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 1})
    for _ in range(3):
        assert (await graph.get(graph.path("BIO101", "bio-cells"))).status == 401
    assert (await graph.get(graph.path("BIO101", "bio-cells"), graph.token(ROSA))).status == 200
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["unauthenticated"] == 3 and stats["requests"] == 1
    reset = await graph.admin("POST", "/_sandbox/graph/stats/reset")
    assert reset.body["requests"] == 0 and reset.body["unauthenticated"] == 0


@pytest.mark.parametrize(
    ("fault", "status", "code", "retry_after"),
    [
        ({"status": 503, "count": 2}, 503, "serviceNotAvailable", None),
        ({"status": 500}, 500, "generalException", None),
        ({"status": 504}, 504, "GatewayTimeout", None),
        ({"status": 429, "retryAfter": 2.5}, 429, "TooManyRequests", "2.5"),
        ({"status": 429}, 429, "TooManyRequests", "1"),
    ],
)
async def test_scripted_status_faults(
    graph: GraphCaller, fault: dict[str, Any], status: int, code: str, retry_after: str | None
) -> None:
    added = await graph.admin("POST", "/_sandbox/graph/faults/script", {**fault, "method": "GET"})
    assert added.status == 200 and added.body["script"][0]["status"] == status
    token = graph.token(ROSA)
    for _ in range(fault.get("count", 1)):
        reply = await graph.get("/education/me", token)
        assert reply.status == status and reply.error_code == code
        assert reply.headers.get("Retry-After") == retry_after
    assert (await graph.get("/education/me", token)).status == 200
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["status"] == fault.get("count", 1)


async def test_scripted_faults_match_method_and_path(graph: GraphCaller) -> None:
    await graph.admin(
        "POST",
        "/_sandbox/graph/faults/script",
        [{"status": 503, "method": "PATCH"}, {"status": 500, "pathRegex": "/taughtClasses$"}],
    )
    token = graph.token(ROSA)
    assert (await graph.get("/education/me", token)).status == 200
    assert (await graph.get("/education/me/taughtClasses", token)).status == 500
    assert (await graph.get("/education/me/taughtClasses", token)).status == 200
    script = (await graph.admin("GET", "/_sandbox/graph/faults/script")).body["script"]
    assert [entry["method"] for entry in script] == ["PATCH"]
    assert (await graph.admin("DELETE", "/_sandbox/graph/faults/script")).status == 204
    assert (await graph.admin("GET", "/_sandbox/graph/faults/script")).body["script"] == []


async def test_scripted_delay_then_success(graph: GraphCaller, sleeps: SleepRecorder) -> None:
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "delay", "delayMs": 1500})
    reply = await graph.get("/education/me", graph.token(ROSA))
    assert reply.status == 200 and sleeps.delays == [1.5]


async def test_scripted_timeout_hangs_then_answers_504(graph: GraphCaller, sleeps: SleepRecorder) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"timeoutS": 45})
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "timeout"})
    reply = await graph.get("/education/me", graph.token(ROSA))
    assert reply.status == 504 and sleeps.delays == [45]


async def test_scripted_drop_closes_the_connection_without_an_answer(graph: GraphCaller) -> None:
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "drop", "count": 1})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await graph.get("/education/me", graph.token(ROSA))
    assert (await graph.get("/education/me", graph.token(ROSA))).status == 200
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["drop"] == 1


async def test_faults_never_touch_the_admin_endpoints(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"errorRate": 1.0, "dropRate": 1.0})
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"status": 503, "count": 5})
    assert (await graph.admin("GET", "/_sandbox/graph/stats")).status == 200
    assert (await graph.admin("GET", "/_sandbox/graph/faults")).body["errorRate"] == 1.0
    assert len((await graph.admin("GET", "/_sandbox/graph/faults/script")).body["script"]) == 1


async def test_rate_faults_are_reproducible_by_seed(
    aiohttp_client: ClientFactory, authority: TokenAuthority, school: School
) -> None:
    async def run() -> list[int]:
        faults = Faults(FaultPlan(error_rate=0.5, seed=21), sleep=SleepRecorder())
        app = web.Application()
        setup_graph(app, school, authority, faults)
        graph = GraphCaller(await aiohttp_client(app), authority, school)
        token = graph.token(ROSA)
        return [(await graph.get("/education/me", token)).status for _ in range(30)]

    first, second = await run(), await run()
    assert first == second
    assert 200 in first and set(first) - {200} and set(first) <= {200, 500, 503, 504}


@pytest.mark.parametrize(("rate", "statuses"), [("errorRate", {500, 503, 504}), ("timeoutRate", {504})])
async def test_rate_one_hits_every_request(
    graph: GraphCaller, sleeps: SleepRecorder, rate: str, statuses: set[int]
) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {rate: 1.0})
    seen = {(await graph.get("/education/me", graph.token(ROSA))).status for _ in range(6)}
    assert seen <= statuses
    assert (rate == "timeoutRate") == (sleeps.delays == [30.0] * 6)


async def test_drop_rate_one_drops_every_request(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"dropRate": 1.0})
    for _ in range(2):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await graph.get("/education/me", graph.token(ROSA))


async def test_a_hung_request_outlasts_a_client_that_gives_up(
    aiohttp_client: ClientFactory, authority: TokenAuthority, school: School
) -> None:
    faults = Faults(FaultPlan(timeout_rate=1.0, timeout_s=1.0), monotonic=FakeMonotonic(), sleep=asyncio.sleep)
    app = web.Application()
    setup_graph(app, school, authority, faults)
    graph = GraphCaller(await aiohttp_client(app), authority, school)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.1):
            await graph.get("/education/me", graph.token(ROSA))
    assert faults.stats.injected["timeout"] == 1


async def test_admin_plan_endpoints(graph: GraphCaller, faults: Faults) -> None:
    default = await graph.admin("GET", "/_sandbox/graph/faults")
    assert default.body == FaultPlan().to_json()
    changed = await graph.admin("PUT", "/_sandbox/graph/faults", {"latencyMs": 5, "errorStatuses": [503]})
    assert changed.status == 200 and changed.body["latencyMs"] == 5 and changed.body["throttleLimit"] == 350
    assert faults.plan.error_statuses == (503,)
    refused = await graph.admin("PUT", "/_sandbox/graph/faults", {"errorRate": 2})
    assert refused.status == 400 and "error_rate" in refused.body["error"]["message"]
    not_json = await graph.admin("POST", "/_sandbox/graph/faults/script", None)
    assert not_json.status == 400


async def test_throttle_rate_answers_429_with_retry_after_whatever_the_budget(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleRate": 1.0, "throttleRetryAfterS": 2})
    reply = await graph.get("/education/me", graph.token(ROSA))
    assert reply.status == 429 and reply.error_code == "TooManyRequests"
    assert reply.headers["Retry-After"] == "2"
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["throttle"] == 1 and stats["throttled"] == 0  # not the budget's doing


async def test_throttle_rate_applies_to_batch_items_one_by_one(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleRate": 1.0})
    requests = [{"id": str(n), "method": "GET", "url": "/education/me"} for n in range(3)]
    reply = await graph.post("/$batch", graph.token(ROSA), body={"requests": requests})
    assert reply.status == 200
    assert {item["status"] for item in reply.body["responses"]} == {429}
    assert all(item["headers"]["Retry-After"] == "1" for item in reply.body["responses"])


async def test_slow_rate_answers_late_but_answers(graph: GraphCaller, sleeps: SleepRecorder) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"slowRate": 1.0, "slowMs": 2500})
    reply = await graph.get("/education/me", graph.token(ROSA))
    assert reply.status == 200 and sleeps.delays == [2.5]
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["slow"] == 1


def test_mixed_rates_hit_about_their_share() -> None:
    plan = FaultPlan(throttle_rate=0.05, error_rate=0.05, error_statuses=(503,), drop_rate=0.05, slow_rate=0.05)
    faults = Faults(plan)
    decisions = [faults.decide("GET", "/v1.0/x", http=True) for _ in range(4000)]
    faulted = [d for d in decisions if d is not None]
    assert 0.14 < len(faulted) / len(decisions) < 0.24
    kinds = {(d.kind, d.status) for d in faulted if d.kind != "delay"}
    assert kinds == {("drop", 503), ("status", 429), ("status", 503)}
    assert any(d.kind == "delay" for d in faulted)


def test_plans_without_the_throttle_and_slow_rates_draw_as_before_those_existed() -> None:
    """Four draws per decision, so seeds in benchmarks and tests keep giving the same faults."""
    faults = Faults(FaultPlan(error_rate=0.5, seed=21))
    source = random.Random(21)
    for _ in range(30):
        _drop, _timeout, error, status = (source.random() for _ in range(4))
        expected = FaultDecision("status", (500, 503, 504)[int(status * 3) % 3]) if error < 0.5 else None
        assert faults.decide("GET", "/v1.0/x", http=True) == expected


async def test_a_lost_answer_means_the_write_was_applied_but_the_client_never_hears(graph: GraphCaller) -> None:
    submission = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    path = f"{graph.path('BIO101', 'bio-cells', submission)}/outcomes/{POINTS_OUTCOME_ID}"
    body = {"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": {"points": 4.5}}
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "lost", "method": "PATCH"})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await graph.patch(path, graph.token(ROSA), body=body)
    grade = submission.outcomes_of(PointsOutcome)[0].points
    assert grade is not None and grade.points == 4.5
    writes = (await graph.admin("GET", "/_sandbox/graph/writes")).body["writes"]
    assert [(w["kind"], w["value"]) for w in writes] == [("points", 4.5)]
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["lost"] == 1


async def test_a_lost_answer_to_a_batch_item_loses_the_whole_batch_after_every_item_ran(graph: GraphCaller) -> None:
    submission = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    path = f"{graph.path('BIO101', 'bio-cells', submission)}/outcomes/{POINTS_OUTCOME_ID}"
    patch = {
        "id": "1",
        "method": "PATCH",
        "url": path,
        "headers": {"Content-Type": "application/json"},
        "body": {"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": {"points": 2}},
    }
    read = {"id": "2", "method": "GET", "url": "/education/me"}
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "lost", "pathRegex": "/outcomes/"})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await graph.post("/$batch", graph.token(ROSA), body={"requests": [patch, read]})
    writes = (await graph.admin("GET", "/_sandbox/graph/writes")).body["writes"]
    assert [(w["kind"], w["value"]) for w in writes] == [("points", 2)]


async def test_lost_rate_one_serves_and_drops_every_request(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"lostRate": 1.0})
    for _ in range(2):
        with pytest.raises(aiohttp.ServerDisconnectedError):
            await graph.get("/education/me", graph.token(ROSA))
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["injectedFaults"]["lost"] == 2 and stats["rosterRequests"] == 2  # served, then dropped
