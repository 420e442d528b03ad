"""Start and stop Microsoft 365 Agents Playground from async Python, via devtools/playground/start_playground.sh.

Meant to run inside the loopback-only namespace (see run_in_namespace.py); the script owns the command line and
the telemetry switches, this module only waits for its READY line and ends the process group it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
START_SCRIPT = REPO_ROOT / "devtools" / "playground" / "start_playground.sh"
DEFAULT_CONFIG = REPO_ROOT / "devtools" / "playground" / ".m365agentsplayground.yml"


class PlaygroundStartError(RuntimeError):
    """The Playground did not come up; the message carries the script's output."""


@dataclass(frozen=True, slots=True)
class RunningPlayground:
    base_url: str
    log_file: Path


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now (fine inside a private namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _stop(process: asyncio.subprocess.Process, grace: float) -> None:
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)  # the group this module created: the script and its node child
    try:
        await asyncio.wait_for(process.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()


@contextlib.asynccontextmanager
async def running_playground(
    bot_port: int,
    playground_port: int,
    log_dir: Path,
    *,
    config: Path = DEFAULT_CONFIG,
    ready_timeout: float = 30.0,
) -> AsyncIterator[RunningPlayground]:
    """Run the Playground for a bot at http://127.0.0.1:bot_port/api/messages until the block ends."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        str(START_SCRIPT),
        "--config",
        str(config),
        "--log-dir",
        str(log_dir),
        str(bot_port),
        str(playground_port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output: list[str] = []
    try:
        async with asyncio.timeout(ready_timeout):
            while True:
                raw = await process.stdout.readline()
                if not raw:
                    raise PlaygroundStartError("start_playground.sh ended early:\n" + "".join(output))
                line = raw.decode(errors="replace")
                output.append(line)
                if line.startswith("READY "):
                    _, url, log_file = line.split()
                    break
    except TimeoutError:
        await _stop(process, grace=5.0)
        raise PlaygroundStartError(f"no READY line within {ready_timeout} s:\n" + "".join(output)) from None
    except BaseException:
        await _stop(process, grace=5.0)
        raise
    try:
        yield RunningPlayground(base_url=url, log_file=Path(log_file))
    finally:
        await _stop(process, grace=5.0)
