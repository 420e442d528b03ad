"""The server benchmark in quick mode: both bots answer every message 201 with exactly one right, authorized reply
at the stand-in Bot Connector (measure raises otherwise), and the figures come out named as the issue asks. Counts
and names only — timings are the benchmark's business."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.server import CONCURRENCY, ECHO, HELP, QUICK_ROUNDS, Load, ServerBenchError, measure
from bench.stand_ins import StandIns

FIGURES = [
    "server_rps_help_16",
    "server_rps_ungraded_16",
    "server_p50_ms_16",
    "server_p99_ms_16",
    "server_rps_help_100",
    "server_rps_ungraded_100",
    "server_p50_ms_100",
    "server_p99_ms_100",
    "server_echo_rps_16",
    "server_rps_ratio_vs_echo",
]


async def test_quick_run_answers_every_message_and_names_every_figure() -> None:
    figures = {figure.name: figure for figure in await measure(quick=True)}
    assert list(figures) == FIGURES
    assert all(figures[name].value > 0 for name in FIGURES)
    for concurrency in CONCURRENCY:
        assert figures[f"server_p50_ms_{concurrency}"].value <= figures[f"server_p99_ms_{concurrency}"].value
    assert figures["server_rps_ratio_vs_echo"].target == ">= 10" and figures["server_p99_ms_16"].target == "< 50"
    assert QUICK_ROUNDS * CONCURRENCY[-1] > 100  # the quick run still drives 100 conversations at once


async def test_a_wrong_or_unauthorized_reply_fails_the_run(aiohttp_client: Any) -> None:
    stand_ins = StandIns({"keys": []})
    connector = await aiohttp_client(stand_ins.app())
    url = str(connector.make_url("")).rstrip("/")
    load = Load(connector.session, rsa.generate_private_key(public_exponent=65537, key_size=2048), url)
    authorized = {"Authorization": f"Bearer {stand_ins.access_token}"}

    await connector.post("/v3/conversations/a/activities/1", json={"text": "echo: hello"}, headers=authorized)
    await load._check_replies(["1"], ECHO)  # exactly one right, authorized reply: accepted

    await connector.post("/v3/conversations/a/activities/1", json={"text": "echo: hello"}, headers=authorized)
    with pytest.raises(ServerBenchError, match="1 of 1"):
        await load._check_replies(["1"], ECHO)  # two replies to one message
    await connector.post("/_replies/reset")
    await connector.post("/v3/conversations/a/activities/1", json={"text": "echo: hello"})
    with pytest.raises(ServerBenchError):
        await load._check_replies(["1"], ECHO)  # no bearer token from the managed identity
    await connector.post("/_replies/reset")
    await connector.post("/v3/conversations/a/activities/1", json={"text": "echo: hello"}, headers=authorized)
    with pytest.raises(ServerBenchError):
        await load._check_replies(["1"], HELP)  # not the help card
