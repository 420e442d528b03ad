"""GraphHttp remembers when Graph last answered (any status below 500: it is there) and can probe it without a token,
within a bound — what /readyz reads instead of calling Graph on every poll."""

from __future__ import annotations

import pytest

from graph.connection import GraphHttp
from graph.errors import GraphError, GraphUnavailableError
from tests.graph.conftest import CountingTokens
from tests.graph.scripted import ScriptedGraph, drop, graph_error, hang, reply


async def test_an_answer_below_500_is_remembered_and_a_5xx_is_not(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens
) -> None:
    assert http.last_answer is None
    scripted.then(graph_error(503, "serviceNotAvailable"))
    with pytest.raises(GraphUnavailableError):
        await http.request("GET", http.url("/education/me"), tokens, retry=False)
    assert http.last_answer is None, "a 503 is Graph saying it is not there"

    scripted.then(graph_error(404, "itemNotFound"))
    with pytest.raises(GraphError):
        await http.request("GET", http.url("/education/me"), tokens)
    assert http.last_answer is not None, "a 404 is an answer"


async def test_a_probe_asks_the_base_url_without_a_token_and_says_why_it_failed(
    scripted: ScriptedGraph, http: GraphHttp
) -> None:
    scripted.then(reply(401, {"error": {"code": "InvalidAuthenticationToken"}}))
    assert await http.probe(2.0) is None
    assert scripted.seen[-1].path == "/v1.0/" and "Authorization" not in scripted.seen[-1].headers
    assert http.last_answer is not None

    scripted.then(graph_error(503, "serviceNotAvailable"), drop(), hang(5.0))
    assert await http.probe(2.0) == "status 503"
    assert await http.probe(2.0) == "connectionLost"
    assert await http.probe(0.2) == "timeout"
