"""GraphHttp over real HTTP: headers, retries with Retry-After and backoff, drops, hangs, 401 refresh, concurrency."""

from __future__ import annotations

import asyncio
import logging
import socket
from contextlib import aclosing

import pytest

from graph.connection import GraphHttp, RetryPolicy, beta_url_for
from graph.errors import GraphAuthError, GraphError, GraphThrottledError, GraphUnavailableError
from tests.graph.conftest import CountingTokens, RecordedSleeps
from tests.graph.scripted import ScriptedGraph, drop, graph_error, hang, reply, slow_ok

OK = reply(200, {"id": "me"})


async def test_every_request_carries_graph_headers(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens
) -> None:
    scripted.then(OK)
    assert await http.request("GET", http.url("/education/me"), tokens) == {"id": "me"}
    headers = scripted.seen[0].headers
    assert headers["Authorization"] == "Bearer token-1"
    assert headers["Accept"] == "application/json"
    assert headers["Prefer"] == "include-unknown-enum-members"
    assert headers["client-request-id"]
    assert scripted.seen[0].path == "/v1.0/education/me"


async def test_429_then_503_then_ok_honours_retry_after(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(
        graph_error(429, "TooManyRequests", "429", retry_after="0.01"),
        graph_error(503, "serviceNotAvailable"),
        OK,
    )
    response = await http.request("GET", http.url("/education/me"), tokens)
    assert response == {"id": "me"}
    assert len(scripted.seen) == 3
    # First wait is Graph's Retry-After; the second (no header) is backoff: base 0.1 doubled once, full jitter at 1.0.
    assert list(sleeps) == pytest.approx([0.01, 0.2])
    assert tokens.calls == 1
    ids = {seen.headers["client-request-id"] for seen in scripted.seen}
    assert len(ids) == 1  # one logical request, one id across retries


async def test_gives_up_after_max_attempts(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.default = graph_error(503, "serviceNotAvailable", retry_after="0.5")
    with pytest.raises(GraphUnavailableError) as caught:
        await http.request("GET", http.url("/education/me"), tokens)
    assert caught.value.status == 503
    assert caught.value.retry_after == 0.5
    assert len(scripted.seen) == 4
    assert sleeps == [0.5, 0.5, 0.5]


async def test_retry_after_beyond_budget_is_returned_to_the_caller(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(graph_error(429, "TooManyRequests", retry_after="60"))
    with pytest.raises(GraphThrottledError) as caught:
        await http.request("GET", http.url("/education/me"), tokens)
    assert caught.value.retry_after == 60.0
    assert len(scripted.seen) == 1
    assert sleeps == []


async def test_total_wait_budget_caps_retries(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.default = graph_error(429, "TooManyRequests", retry_after="2")
    with pytest.raises(GraphThrottledError):
        await http.request("GET", http.url("/education/me"), tokens)
    assert sleeps == [2.0, 2.0]  # a third 2 s wait would pass the 5 s budget
    assert len(scripted.seen) == 3


async def test_client_errors_are_not_retried(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(graph_error(404, "20241"))
    with pytest.raises(GraphError) as caught:
        await http.request("GET", http.url("/education/x"), tokens)
    assert caught.value.code == "20241"
    assert len(scripted.seen) == 1
    assert sleeps == []


async def test_post_action_retried_on_429_and_503(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(graph_error(429, "TooManyRequests", retry_after="0"), graph_error(503, "x"), reply(204))
    assert await http.request("POST", http.url("/education/a/return"), tokens) is None  # 204 No Content
    assert len(scripted.seen) == 3


async def test_post_action_not_retried_on_504(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(graph_error(504, "gatewayTimeout"), OK)
    with pytest.raises(GraphUnavailableError) as caught:
        await http.request("POST", http.url("/education/a/return"), tokens)
    assert caught.value.status == 504
    assert len(scripted.seen) == 1


async def test_get_retried_on_504(scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens) -> None:
    scripted.then(graph_error(504, "gatewayTimeout"), OK)
    assert await http.request("GET", http.url("/education/me"), tokens) == {"id": "me"}


async def test_dropped_connection_retried_for_get(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(drop(), OK)
    response = await http.request("GET", http.url("/education/me"), tokens)
    assert response == {"id": "me"}
    assert len(scripted.seen) == 2
    assert len(sleeps) == 1


async def test_dropped_connection_surfaces_for_post(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(drop(), OK)
    with pytest.raises(GraphUnavailableError) as caught:
        await http.request("POST", http.url("/education/a/return"), tokens)
    assert caught.value.status is None
    assert caught.value.code == "connectionLost"
    assert len(scripted.seen) == 1
    assert sleeps == []


async def test_hang_past_read_timeout_becomes_unavailable(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(hang(), OK)
    response = await http.request("GET", http.url("/education/me"), tokens)
    assert response == {"id": "me"}
    assert len(sleeps) == 1

    scripted.then(hang())
    with pytest.raises(GraphUnavailableError) as caught:
        await http.request("POST", http.url("/education/a/return"), tokens)
    assert (caught.value.status, caught.value.code) == (None, "timeout")


async def test_patch_is_idempotent_and_retried_after_timeout(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens
) -> None:
    scripted.then(hang(), reply(200, {"id": "o"}))
    response = await http.request("PATCH", http.url("/education/o"), tokens, json_body={"a": 1})
    assert response == {"id": "o"}
    assert [seen.body for seen in scripted.seen] == [{"a": 1}, {"a": 1}]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_refused_connection_retried_even_for_post(
    sleeps: RecordedSleeps, tokens: CountingTokens, policy: RetryPolicy
) -> None:
    async with aclosing(GraphHttp(f"http://127.0.0.1:{closed_port()}/v1.0", retry=policy, sleep=sleeps)) as http:
        with pytest.raises(GraphUnavailableError) as caught:
            await http.request("POST", http.url("/education/a/return"), tokens)
    assert (caught.value.status, caught.value.code) == (None, "connectError")
    assert len(sleeps) == policy.max_attempts - 1  # never sent, so safe to repeat


async def test_401_asks_the_token_provider_again_once(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, sleeps: RecordedSleeps
) -> None:
    scripted.then(graph_error(401, "InvalidAuthenticationToken"), OK)
    assert await http.request("GET", http.url("/education/me"), tokens) == {"id": "me"}
    assert tokens.calls == 2
    assert [seen.headers["Authorization"] for seen in scripted.seen] == ["Bearer token-1", "Bearer token-2"]
    assert sleeps == []


async def test_second_401_raises_auth_error(scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens) -> None:
    scripted.default = graph_error(401, "InvalidAuthenticationToken")
    with pytest.raises(GraphAuthError):
        await http.request("GET", http.url("/education/me"), tokens)
    assert len(scripted.seen) == 2
    assert tokens.calls == 2


async def test_concurrency_limit_holds(scripted: ScriptedGraph, sleeps: RecordedSleeps, tokens: CountingTokens) -> None:
    scripted.default = slow_ok(0.02, {"ok": True})
    async with aclosing(GraphHttp(scripted.base, max_concurrency=2, sleep=sleeps)) as http:
        await asyncio.gather(*(http.request("GET", http.url(f"/education/{n}"), tokens) for n in range(6)))
    assert len(scripted.seen) == 6
    assert scripted.max_in_flight == 2


async def test_foreign_url_never_gets_the_token(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens
) -> None:
    with pytest.raises(GraphError) as caught:
        await http.request("GET", "http://127.0.0.2:1/v1.0/education/me", tokens)
    assert caught.value.code == "foreignUrl"
    assert tokens.calls == 0
    assert scripted.seen == []


async def test_non_json_success_is_an_error(scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens) -> None:
    scripted.then(reply(200, None, {"Content-Type": "text/html"}))
    assert await http.request("GET", http.url("/education/me"), tokens) is None
    scripted.then(reply(200, ["not", "an", "object"]))
    with pytest.raises(GraphError) as caught:
        await http.request("GET", http.url("/education/me"), tokens)
    assert caught.value.code == "invalidResponse"


async def test_logs_carry_ids_not_tokens_or_bodies(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="graph")
    scripted.then(graph_error(503, "x"), reply(200, {"feedback": "Secret feedback for Ada"}))
    await http.request("PATCH", http.url("/education/classes/c-1/o"), tokens, json_body={"text": "Ada did well"})
    text = caplog.text
    assert "/v1.0/education/classes/c-1/o" in text
    assert "attempt=2" in text
    assert "token-1" not in text
    assert "Ada" not in text


def test_beta_url_is_derived_or_required() -> None:
    assert beta_url_for("http://127.0.0.1:9/v1.0/") == "http://127.0.0.1:9/beta"
    assert beta_url_for("https://graph.microsoft.com/v1.0") == "https://graph.microsoft.com/beta"
    with pytest.raises(ValueError):
        beta_url_for("https://example.test/graph")


def test_retry_policy_full_jitter_and_limits() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=1.0, max_delay=3.0, max_total_wait=10.0)
    assert [policy.delay(n, None, lambda: 1.0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 3.0, 3.0]
    assert policy.delay(3, None, lambda: 0.25) == 0.75
    assert policy.delay(1, 7.5, lambda: 0.0) == 7.5
    assert policy.allows(2, 0.0, 1.0)
    assert not policy.allows(3, 0.0, 1.0)
    assert not policy.allows(1, 9.5, 1.0)
