"""The soak's two real processes: `python -m sandbox` (Graph, Entra and the Bot Connector, with fault flags) and
`python app.py` (Gradebot in sandbox mode on a database of the run's own), which the soak kills with SIGKILL and
starts again on the same database and port."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
READY_PREFIX = "SANDBOX_READY "
START_TIMEOUT_S = 60.0
_KEEP_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


class ProcessError(RuntimeError):
    """A process of the soak did not start or stopped answering."""


def free_port() -> int:
    """A port nobody listens on right now (the bot needs the same one across restarts, so it is chosen up front)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _clean_env(**values: str) -> dict[str, str]:
    """Only what a Python process needs, plus the given settings: nothing of the caller's Gradebot settings leaks in."""
    env = {name: os.environ[name] for name in _KEEP_ENV if name in os.environ}  # noqa: TID251 - the child's environment
    env.update(values)
    return env


class SandboxProcess:
    """`python -m sandbox --port 0 --exit-with-parent …`: started once, it outlives every bot restart."""

    def __init__(self, log_path: Path, fault_flags: list[str]) -> None:
        self.log_path = log_path
        self.fault_flags = fault_flags
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--exit-with-parent",
            *self.fault_flags,
            cwd=ROOT,
            env=_clean_env(),
            stdin=asyncio.subprocess.PIPE,  # the sandbox ends with this process, however it ends
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        log = self.log_path.open("ab")
        try:
            ready = await asyncio.wait_for(self._ready(log), START_TIMEOUT_S)
        except (TimeoutError, ProcessError):
            log.close()
            await self.stop()
            raise ProcessError(f"the sandbox did not start (see {self.log_path})") from None
        self.base_url = str(ready["baseUrl"])
        self._pump = asyncio.get_running_loop().create_task(self._copy(log))

    async def _ready(self, log: Any) -> dict[str, Any]:
        assert self._process is not None and self._process.stdout is not None
        while True:
            line = await self._process.stdout.readline()
            if not line:
                raise ProcessError("the sandbox exited before it was ready")
            log.write(line)
            text = line.decode("utf-8", "replace").strip()
            if text.startswith(READY_PREFIX):
                ready: dict[str, Any] = json.loads(text[len(READY_PREFIX) :])
                return ready

    async def _copy(self, log: Any) -> None:
        assert self._process is not None and self._process.stdout is not None
        try:
            while line := await self._process.stdout.readline():
                log.write(line)
        finally:
            log.close()

    async def stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._pump is not None:
            await asyncio.gather(self._pump, return_exceptions=True)


class BotProcess:
    """`python app.py` in sandbox mode; `kill()` is SIGKILL (no cleanup runs), `start()` again resumes on the same
    database, port and token-encryption key."""

    def __init__(
        self, run_dir: Path, sandbox_url: str, database_url: str, port: int, settings: Mapping[str, str] | None = None
    ) -> None:
        """`settings` add to or replace the soak's own (several instances of a district share one key, and run
        their reminder loops)."""
        self.run_dir = run_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.starts = 0
        self.kills = 0
        self._env = _clean_env(
            SANDBOX_URL=sandbox_url,
            DATABASE_URL=database_url,
            PORT=str(port),
            HOST="127.0.0.1",
            REMINDERS="off",
            LOG_LEVEL="INFO",
            # The soak is about faults and restarts, not Gradebot's own pacing under Graph's budget.
            GRAPH_REQUEST_BUDGET="5000",
            TOKEN_ENCRYPTION_KEY=base64.urlsafe_b64encode(os.urandom(32)).decode(),
        )
        self._env.update(settings or {})
        self._process: asyncio.subprocess.Process | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment this Gradebot runs with (for another `python app.py` command on the same settings)."""
        return dict(self._env)

    @property
    def log_path(self) -> Path:
        return self.run_dir / f"bot-{self.starts}.log"

    async def start(self) -> None:
        self.starts += 1
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "app.py",
                cwd=ROOT,
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        await self._wait_healthy()

    async def _wait_healthy(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_TIMEOUT_S
        async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
            while loop.time() < deadline:
                if self._process is not None and self._process.returncode is not None:
                    raise ProcessError(f"Gradebot exited with {self._process.returncode} (see {self.log_path})")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{self.url}/healthz")).status_code == 200:
                        return
                await asyncio.sleep(0.1)
        raise ProcessError(f"Gradebot did not answer /healthz (see {self.log_path})")

    async def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, in-flight Graph writes and outbox leases are left as they are."""
        process = self._process
        if process is None or process.returncode is not None:
            raise ProcessError("Gradebot is not running")
        process.send_signal(signal.SIGKILL)
        await process.wait()
        self.kills += 1

    async def stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
