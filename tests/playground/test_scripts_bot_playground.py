"""`scripts/bot --playground` as a developer uses it: the Playground answers on the host's 127.0.0.1 through the bridge,
a chat round trip works from outside the namespace, and Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
from pathlib import Path
from typing import NoReturn

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


def cannot_run(reason: str) -> NoReturn:
    shared_cannot_run("scripts/bot --playground", reason)


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


@pytest.mark.playground
async def test_the_playground_is_reachable_from_the_host_and_ctrl_c_stops_everything() -> None:
    reason = missing_prerequisites() or namespace_unavailable_reason()
    if reason:
        cannot_run(reason)
    pg_port = free_loopback_port()
    with tempfile.TemporaryDirectory(prefix="gradebot-scripts-bot-") as work:
        log = Path(work) / "bot.log"
        with log.open("w") as stderr:
            process = await asyncio.create_subprocess_exec(
                "env",
                "-u",
                "MicrosoftAppId",
                f"PLAYGROUND_PORT={pg_port}",
                f"DATABASE_URL=sqlite:///{work}/gradebot.db",
                "REMINDERS=off",
                str(SCRIPT),
                "--playground",
                cwd=REPO_ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,  # its own process group, like a job in a terminal
            )
        try:
            assert process.stdout is not None
            hints = await asyncio.wait_for(read_until(process.stdout, HINTS_END), 90)
            assert process.returncode is None, f"scripts/bot ended:\n{log.read_text()[-3000:]}"
            assert f"http://127.0.0.1:{pg_port}" in "\n".join(hints)
            assert any("ungraded" in line for line in hints)

            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{pg_port}/_debug/ping") as ping:
                assert (ping.status, await ping.text()) == (200, "pong")
            async with Playground(f"http://127.0.0.1:{pg_port}") as playground:
                config = await playground.config()
                assert config["currentUser"]["name"] == "Rosa Martinez"
                await playground.connect()  # the event stream is a WebSocket: it passes the bridge too
                chat = config["personalChat"]["id"]
                await playground.send(chat, "help")
                reply = await playground.wait_for_bot_message(chat, lambda event: bool(Playground.cards(event)))
            assert Playground.cards(reply)[0]["body"][0]["text"] == "Gradebot"
            assert processes_mentioning(f"-p {pg_port} "), "the Playground runs with this run's port"
        finally:
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C in the terminal
            try:
                status = await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                os.killpg(process.pid, signal.SIGKILL)  # its control pipe closes: the namespace stops too
                raise
        assert status == 130
        assert processes_mentioning(f"127.0.0.1:{pg_port}") == []  # both ends of the bridge
        assert processes_mentioning(f"-p {pg_port} ") == []  # the Playground (and with it the namespace)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{pg_port}/_debug/ping"):
                pass
