"""`scripts/bot` as a developer uses it: by default the Playground answers on the host's 127.0.0.1 through the bridge, a
chat round trip works from outside the namespace, and Ctrl-C leaves no process behind and frees the port;
`--no-playground` runs the bot alone, and Ctrl-C stops it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import pytest

from tests.playground.driver import Playground
from tests.playground.launcher import free_loopback_port
from tests.playground.run_in_namespace import (
    REPO_ROOT,
    missing_prerequisites,
    namespace_unavailable_reason,
)
from tests.playground.run_in_namespace import (
    cannot_run as shared_cannot_run,
)

SCRIPT = REPO_ROOT / "scripts" / "bot"
HINTS_END = "Press Ctrl-C to stop everything."
STOPPED_WITHIN_S = 15
"""Generous: scripts/bot kills what has not stopped 4 s after Ctrl-C (measured: 1–2 s on a busy 2-core machine). Not
exiting within this means something waits that nothing bounds, as when a Ctrl-C once took more than 30 s."""


def as_in_a_terminal() -> None:
    """Run in the child before exec: SIGINT handled by default, as for a job a terminal starts. A test run started
    in the background (`cmd &` in a script) passes SIGINT ignored, and bash cannot trap a signal ignored on entry."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cannot_run(reason: str) -> NoReturn:
    shared_cannot_run("scripts/bot (with the Playground)", reason)


def processes_mentioning(marker: str) -> list[str]:
    """Command lines of running processes that contain marker (this run's unique port or folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in command:
            found.append(command)
    return found


async def read_until(stream: asyncio.StreamReader, end: str) -> list[str]:
    """Lines up to and including the first that contains end (or all of them, if the stream ends first)."""
    lines: list[str] = []
    while raw := await stream.readline():
        lines.append(raw.decode(errors="replace").rstrip("\n"))
        if end in lines[-1]:
            break
    return lines


@contextlib.asynccontextmanager
async def scripts_bot(work: str, pg_port: int) -> AsyncIterator[list[str]]:
    """`scripts/bot` on the database in `work`, until its hints end; then Ctrl-C, which must stop everything."""
    log = Path(work) / "bot.log"
    with log.open("a") as stderr:
        process = await asyncio.create_subprocess_exec(
            "env",
            "-u",
            "MicrosoftAppId",
            f"PLAYGROUND_PORT={pg_port}",
            f"DATABASE_URL=sqlite:///{work}/gradebot.db",
            "REMINDERS=off",
            str(SCRIPT),
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,  # its own process group, like a job in a terminal
            preexec_fn=as_in_a_terminal,
        )
    try:
        assert process.stdout is not None
        hints = await asyncio.wait_for(read_until(process.stdout, HINTS_END), 120)
        assert process.returncode is None, f"scripts/bot ended:\n{log.read_text()[-3000:]}"
        yield hints
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
        try:
            status = await asyncio.wait_for(process.wait(), STOPPED_WITHIN_S)
        except TimeoutError:
            # Python 3.11 answers wait() only once the process ended and its stdout closed: say which did not.
            ended, left = process.returncode, processes_mentioning(str(pg_port)) + processes_mentioning(work)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its control pipe closes: the namespace stops too
            raise AssertionError(
                f"not stopped {STOPPED_WITHIN_S} s after Ctrl-C (scripts/bot exit status {ended}); still running:"
                f" {left}\n{log.read_text()[-3000:]}"
            ) from None
    assert status == 130
    assert processes_mentioning(f"127.0.0.1:{pg_port}") == []  # both ends of the bridge
    assert processes_mentioning(f"-p {pg_port} ") == []  # the Playground (and with it the namespace)
    with pytest.raises(aiohttp.ClientConnectionError):
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{pg_port}/_debug/ping"):
            pass


async def first_card(pg_port: int, text: str) -> dict[str, Any]:
    """Type `text` in the personal chat; the first card Gradebot answers with."""
    async with Playground(f"http://127.0.0.1:{pg_port}") as playground:
        config = await playground.config()
        assert config["currentUser"]["name"] == "Rosa Martinez"
        await playground.connect()  # the event stream is a WebSocket: it passes the bridge too
        chat = config["personalChat"]["id"]
        await playground.send(chat, text)
        reply = await playground.wait_for_bot_message(chat, lambda event: bool(Playground.cards(event)), timeout=30)
    return Playground.cards(reply)[0]


@pytest.mark.playground
@pytest.mark.timeout(300)  # two starts of the sandbox, Gradebot and the Playground on a busy machine
async def test_scripts_bot_opens_the_playground_chat_ctrl_c_stops_everything_and_a_restart_carries_on() -> None:
    reason = missing_prerequisites() or namespace_unavailable_reason()
    if reason:
        cannot_run(reason)
    pg_port = free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="gradebot-scripts-bot-") as work:
        async with scripts_bot(work, pg_port) as hints:
            assert f"Open the chat in your browser:  http://127.0.0.1:{pg_port}" in "\n".join(hints)
            assert any("ungraded" in line for line in hints)
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{pg_port}/_debug/ping") as ping:
                assert (ping.status, await ping.text()) == (200, "pong")
            assert (await first_card(pg_port, "help"))["body"][0]["text"] == "Gradebot"
            assert "Chemistry 201" in json.dumps(await first_card(pg_port, "classes"))  # Rosa's sign-in is stored
            assert processes_mentioning(f"-p {pg_port} "), "the Playground runs with this run's port"

        # Started again on the same data/ (the sandbox has new keys): Rosa is still signed in and sees her work.
        async with scripts_bot(work, pg_port):
            shown = json.dumps(await first_card(pg_port, "ungraded"))
            assert "Sign in" not in shown and "Chemistry 201" in shown, shown[:500]


def free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


async def test_scripts_bot_no_playground_runs_the_bot_alone_and_ctrl_c_stops_it() -> None:
    port = free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="gradebot-scripts-bot-") as work:
        process = await asyncio.create_subprocess_exec(
            "env",
            "-u",
            "MicrosoftAppId",
            f"PORT={port}",
            f"DATABASE_URL=sqlite:///{work}/gradebot.db",
            "REMINDERS=off",
            str(SCRIPT),
            "--no-playground",
            cwd=REPO_ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
            preexec_fn=as_in_a_terminal,
        )
        try:
            assert process.stderr is not None
            said = await asyncio.wait_for(read_until(process.stderr, "starting Gradebot in sandbox mode"), 90)
            assert any(f"http://127.0.0.1:{port}/api/messages" in line and "Ctrl-C" in line for line in said), said
            async with aiohttp.ClientSession() as http:
                for _ in range(300):
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"http://127.0.0.1:{port}/healthz") as health:
                            if health.status == 200:
                                break
                    await asyncio.sleep(0.1)
                else:
                    pytest.fail("Gradebot did not answer /healthz")
        finally:
            os.killpg(process.pid, signal.SIGINT)
            try:
                await asyncio.wait_for(process.communicate(), STOPPED_WITHIN_S)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)
                raise
        assert process.returncode == 0, "a clean shutdown"
        assert free(port)


def test_scripts_bot_help_names_both_ways_and_refuses_unknown_options() -> None:
    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, check=True).stdout
    assert "scripts/bot --no-playground" in shown and "Ctrl-C stops everything" in shown
    refused = subprocess.run([str(SCRIPT), "--headless"], capture_output=True, text=True)
    assert refused.returncode == 2 and "--no-playground" in refused.stderr
