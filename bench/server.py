"""The server's own speed: POST /api/messages with JWT validation on, `help` and a cached `ungraded` at 16 and 100
concurrent conversations — requests/s, p50, p99 — against a bare botbuilder echo bot, each bot in its own process and
every reply posted to a stand-in Bot Connector (bench/stand_ins.py) in a third; this process only generates load."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.figures import Figure
from bench.host import stop_process
from bench.server_host import READY_PREFIX
from bench.stand_ins import IDENTITY_HEADER, ISSUER
from sandbox.directory import TENANT_ID, User, default_directory

TITLE = "The server: POST /api/messages (JWT validation on) — Gradebot against a bare botbuilder echo bot"

APP_ID = str(uuid.UUID(int=0xBE4C4))
KEY_ID = "bench-key"
REPOSITORY = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60.0
WARM_UP_S, MEASURE_S = 1.0, 5.0
"""A full run's phase: answers in the first second are not counted, then five seconds' answers are."""
QUICK_ROUNDS = 2
"""A quick run's phase: each conversation sends this many messages, one after the other."""
CONCURRENCY = (16, 100)
RATIO_TARGET, P99_TARGET_MS = 10.0, 50.0


class ServerBenchError(AssertionError):
    """A bot answered wrongly: a status other than 201, or not exactly one right reply per message."""


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured phase: how many messages were answered and how long each took."""

    requests: int
    elapsed_s: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        return self.requests / self.elapsed_s

    def percentile(self, share: int) -> float:
        return percentile(self.latencies_ms, share)


def percentile(values: list[float], share: int) -> float:
    """The `share`th percentile (1–99), interpolated; the one value itself for a single sample."""
    return statistics.quantiles(values, n=100, method="inclusive")[share - 1] if len(values) > 1 else values[0]


@dataclass(frozen=True, slots=True)
class Talk:
    """What each conversation says, and the reply summary (bench/stand_ins.summary) every message must get."""

    text: str
    expected: str


HELP = Talk("help", "card:Gradebot")
UNGRADED = Talk("ungraded", "card:Waiting to be graded: all your classes")
ECHO = Talk("hello", "text:echo: hello")


class Load:
    """Closed-loop load: each conversation sends its next message when the previous one was answered."""

    def __init__(self, http: aiohttp.ClientSession, key: rsa.RSAPrivateKey, connector_url: str) -> None:
        self._http = http
        self._key = key
        self._connector_url = connector_url
        self._teachers = sorted(
            (user for user in default_directory().users.values() if user.role == "teacher"),
            key=lambda user: user.user_principal_name,
        )

    def _authorization(self) -> str:
        """The Bot Framework's token for this bot: signed by the stand-in's key, valid for the hour (the channel
        reuses one token for many activities, as here)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "aud": APP_ID,
            "serviceurl": self._connector_url,
            "nbf": now - 10,
            "iat": now - 10,
            "exp": now + 3600,
        }
        return "Bearer " + jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})

    def _activity(self, conversation: int, talk: Talk) -> dict[str, Any]:
        teacher: User = self._teachers[conversation % len(self._teachers)]
        return {
            "type": "message",
            "id": uuid.uuid4().hex,
            "channelId": "msteams",
            "serviceUrl": self._connector_url,
            "from": {"id": f"29:{teacher.id}", "name": teacher.display_name, "aadObjectId": teacher.id},
            "recipient": {"id": f"28:{APP_ID}", "name": "Gradebot"},
            "conversation": {"id": f"a:bench-{conversation}", "conversationType": "personal", "tenantId": TENANT_ID},
            "channelData": {"tenant": {"id": TENANT_ID}},
            "text": talk.text,
            "locale": "en-US",
            "localTimezone": "Europe/Berlin",
        }

    async def prime(self, bot_url: str) -> None:
        """Each teacher's `ungraded` once (Graph is read now; the measured phase is served from Gradebot's cache)."""
        await self.run(bot_url, UNGRADED, len(self._teachers), quick=True, rounds=1)

    async def run(
        self, bot_url: str, talk: Talk, concurrency: int, *, quick: bool, rounds: int = QUICK_ROUNDS
    ) -> Phase:
        """One phase; afterwards every message must have been answered 201 and got exactly the expected reply."""
        await self._http.post(f"{self._connector_url}/_replies/reset")
        authorization = self._authorization()
        sent: list[str] = []
        counted: list[float] = []
        clock = time.perf_counter
        started = clock()
        counting_from, deadline = started + (0.0 if quick else WARM_UP_S), started + WARM_UP_S + MEASURE_S

        async def conversation(number: int) -> None:
            for round_number in itertools.count():
                if (quick and round_number >= rounds) or (not quick and clock() >= deadline):
                    return
                activity = self._activity(number, talk)
                began = clock()
                async with self._http.post(
                    f"{bot_url}/api/messages", json=activity, headers={"Authorization": authorization}
                ) as response:
                    await response.read()
                    if response.status != 201:
                        raise ServerBenchError(f"{talk.text!r} answered {response.status}, not 201")
                ended = clock()
                sent.append(activity["id"])
                if quick or counting_from <= ended <= deadline:
                    counted.append((ended - began) * 1000)

        await asyncio.gather(*(conversation(number) for number in range(concurrency)))
        elapsed = (clock() - started) if quick else MEASURE_S
        await self._check_replies(sent, talk)
        return Phase(len(counted), elapsed, counted)

    async def _check_replies(self, sent: Iterable[str], talk: Talk) -> None:
        async with self._http.get(f"{self._connector_url}/_replies") as response:
            replies: dict[str, list[dict[str, Any]]] = (await response.json())["replies"]
        wrong = [
            activity_id
            for activity_id in sent
            if [(reply["summary"], reply["authorized"]) for reply in replies.get(activity_id, [])]
            != [(talk.expected, True)]
        ]
        if wrong or len(replies) != len(list(sent)):
            example = replies.get(wrong[0]) if wrong else None
            raise ServerBenchError(
                f"{talk.text!r}: {len(wrong)} of {len(list(sent))} messages without exactly one right, authorized "
                f"reply ({len(replies)} replied to); e.g. {example}"
            )


def _jwks(key: rsa.RSAPrivateKey) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def b64(value: int) -> str:
        return base64.urlsafe_b64encode(value.to_bytes((value.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    key_json = {"kty": "RSA", "use": "sig", "kid": KEY_ID, "n": b64(numbers.n), "e": b64(numbers.e)}
    return {"keys": [{**key_json, "endorsements": ["msteams"]}]}


@contextlib.asynccontextmanager
async def _process(
    role: str, config: dict[str, Any], directory: Path, env: dict[str, str]
) -> AsyncIterator[asyncio.Task[str]]:
    """`python -m bench.server_host ROLE` started in a child process (its standard error to `directory/ROLE.log`);
    yields a task that ends with the URL it listens on, so several processes can start at once."""
    profile = os.environ.get("BENCH_PROFILE", "")
    profiler = ["-m", "cProfile", "-o", f"{profile}/{role}.prof"] if profile and role != "stand-ins" else []
    with (directory / f"{role}.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            *profiler,
            "-m",
            "bench.server_host",
            role,
            json.dumps(config),
            cwd=REPOSITORY,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        ready = asyncio.create_task(asyncio.wait_for(_ready(process, role), START_TIMEOUT_S))
        try:
            yield ready
        finally:
            ready.cancel()
            await stop_process(process)


async def _ready(process: asyncio.subprocess.Process, role: str) -> str:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        text = line.decode().strip()
        if text.startswith(READY_PREFIX):
            return str(json.loads(text.removeprefix(READY_PREFIX))["url"])
    raise ServerBenchError(f"the {role} process exited (code {await process.wait()}) before it listened")


async def measure(quick: bool) -> list[Figure]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with tempfile.TemporaryDirectory(prefix="bench-server-") as temporary:
        directory = Path(temporary)
        async with (
            _process("stand-ins", {"jwks": _jwks(key)}, directory, {}) as stand_ins_ready,
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http,
        ):
            stand_ins = await stand_ins_ready
            # The bots' outbound token comes from the managed identity, as on App Service (MicrosoftAppType=
            # UserAssignedMSI), so neither bot needs a network beyond 127.0.0.1.
            env = {"IDENTITY_ENDPOINT": f"{stand_ins}/msi/token", "IDENTITY_HEADER": IDENTITY_HEADER}
            bot = {"appId": APP_ID, "tenantId": TENANT_ID, "metadataUrl": f"{stand_ins}/openid"}
            load = Load(http, key, stand_ins)
            async with (  # both start at once; each is measured while the other waits idle
                _process("echo", bot, directory, env) as echo_ready,
                _process("gradebot", {**bot, "directory": str(directory)}, directory, env) as gradebot_ready,
            ):
                echo_url, gradebot_url = await asyncio.gather(echo_ready, gradebot_ready)
                echo = await load.run(echo_url, ECHO, CONCURRENCY[0], quick=quick)
                phases: dict[tuple[str, int], Phase] = {}
                for concurrency in CONCURRENCY:
                    phases["help", concurrency] = await load.run(gradebot_url, HELP, concurrency, quick=quick)
                    await load.prime(gradebot_url)
                    phases["ungraded", concurrency] = await load.run(gradebot_url, UNGRADED, concurrency, quick=quick)
    return figures(phases, echo)


def figures(phases: dict[tuple[str, int], Phase], echo: Phase) -> list[Figure]:
    listed: list[Figure] = []
    for concurrency in CONCURRENCY:
        help_phase, ungraded = phases["help", concurrency], phases["ungraded", concurrency]
        both = help_phase.latencies_ms + ungraded.latencies_ms
        p99 = percentile(both, 99)
        p99_target = f"< {P99_TARGET_MS:.0f}" if concurrency == CONCURRENCY[0] else ""
        p99_met = p99 < P99_TARGET_MS if p99_target else None
        listed += [
            Figure(f"server_rps_help_{concurrency}", round(help_phase.rate), "rps"),
            Figure(f"server_rps_ungraded_{concurrency}", round(ungraded.rate), "rps"),
            Figure(f"server_p50_ms_{concurrency}", round(percentile(both, 50), 1), "ms"),
            Figure(f"server_p99_ms_{concurrency}", round(p99, 1), "ms", p99_target, p99_met),
        ]
    slowest = min(phases["help", CONCURRENCY[0]].rate, phases["ungraded", CONCURRENCY[0]].rate)
    ratio = slowest / echo.rate
    listed += [
        Figure(f"server_echo_rps_{CONCURRENCY[0]}", round(echo.rate), "rps"),
        Figure("server_rps_ratio_vs_echo", round(ratio, 1), "x", f">= {RATIO_TARGET:.0f}", ratio >= RATIO_TARGET),
    ]
    return listed


if __name__ == "__main__":  # a convenience until `python -m bench server` runs it
    for figure in asyncio.run(measure("--quick" in sys.argv)):
        print(figure.line())
