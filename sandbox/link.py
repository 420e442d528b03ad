"""A client's link to the sandbox: start `python -m sandbox` as a child (or attach to one already running), read
its addresses and CA, and ask it for the SSO token Teams would hand a bot — Gradebot's sandbox mode uses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger(__name__)

READY_PREFIX = "SANDBOX_READY "
START_TIMEOUT_S = 30.0


class SandboxUnavailableError(Exception):
    """The sandbox could not be started or reached."""


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    base_url: str
    graph_url: str
    authority_url: str
    connector_url: str
    tenant_id: str
    bot_app_id: str
    bot_app_secret: str
    ca_file: str

    @property
    def authority_base(self) -> str:
        """The authority without its tenant segment (what msal's authority is built from)."""
        return self.authority_url.rstrip("/").rsplit("/", 1)[0]


class SandboxLink:
    """A connection to a running sandbox, optionally owning the `python -m sandbox` process behind it."""

    def __init__(self, info: SandboxInfo, http: httpx.AsyncClient, process: asyncio.subprocess.Process | None) -> None:
        self.info = info
        self._http = http
        self._process = process

    @classmethod
    async def connect(cls, url: str) -> SandboxLink:
        """Attach to a sandbox already running at `url`."""
        http = httpx.AsyncClient(timeout=10.0, trust_env=False)
        try:
            info = await _fetch_info(http, url)
        except SandboxUnavailableError:
            await http.aclose()
            raise
        return cls(info, http, None)

    @classmethod
    async def start(cls, extra_args: tuple[str, ...] = ()) -> SandboxLink:
        """Start `python -m sandbox --port 0` as a child process and wait until it says it is ready."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            "0",
            "--exit-with-parent",
            *extra_args,
            stdin=asyncio.subprocess.PIPE,  # closes when this process ends, however it ends: the sandbox follows
            stdout=asyncio.subprocess.PIPE,
            stderr=None,
        )
        try:
            base_url = await asyncio.wait_for(_ready_url(process), START_TIMEOUT_S)
        except (TimeoutError, SandboxUnavailableError) as exc:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise SandboxUnavailableError(f"The sandbox did not start: {exc}") from exc
        link = await cls.connect(base_url)
        link._process = process
        asyncio.get_running_loop().create_task(_drain(process))
        return link

    async def sso_token(self, aad_object_id: str) -> str | None:
        """The token Teams would hand the bot for this seeded user (audience api://botid-{appId}); None for a user
        the sandbox does not know (a forged or foreign aadObjectId: they would have to sign in)."""
        response = await self._http.post(
            f"{self.info.base_url}/_sandbox/sso-token",
            json={"userId": aad_object_id, "appId": self.info.bot_app_id},
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise SandboxUnavailableError(f"The sandbox refused an SSO token ({response.status_code}).")
        return str(response.json()["token"])

    async def close(self) -> None:
        await self._http.aclose()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), 10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()


async def _ready_url(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    while True:
        line = await process.stdout.readline()
        if not line:
            raise SandboxUnavailableError("the process exited before it was ready")
        text = line.decode("utf-8", "replace").strip()
        if text.startswith(READY_PREFIX):
            ready: dict[str, Any] = json.loads(text[len(READY_PREFIX) :])
            return str(ready["baseUrl"])


async def _drain(process: asyncio.subprocess.Process) -> None:
    """Keep reading the child's stdout so it never blocks on a full pipe."""
    if process.stdout is not None:
        while await process.stdout.readline():
            pass


async def _fetch_info(http: httpx.AsyncClient, url: str) -> SandboxInfo:
    try:
        response = await http.get(f"{url.rstrip('/')}/_sandbox/info")
        response.raise_for_status()
        data = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SandboxUnavailableError(f"No sandbox answers at {url}: {type(exc).__name__}") from exc
    ca_dir = Path(tempfile.mkdtemp(prefix="gradebot-sandbox-ca-"))
    ca_file = ca_dir / "ca.pem"
    ca_file.write_text(str(data["caPem"]), encoding="ascii")
    return SandboxInfo(
        base_url=url.rstrip("/"),
        graph_url=str(data["graphUrl"]),
        authority_url=str(data["authorityUrl"]),
        connector_url=str(data["connectorUrl"]),
        tenant_id=str(data["tenantId"]),
        bot_app_id=str(data["botAppId"]),
        bot_app_secret=str(data["botAppSecret"]),
        ca_file=str(ca_file),
    )
