"""Run a Python test script inside the loopback-only network namespace (devtools/playground/isolated.sh).

The script runs as a module of this repository (`python -m tests.playground.x`) and reports back by printing one
line `GRADEBOT-RESULT {json}` (use emit_result). Tests call run_in_namespace and assert on that JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
ISOLATED_SCRIPT = REPO_ROOT / "devtools" / "playground" / "isolated.sh"
PLAYGROUND_CLI = REPO_ROOT / "devtools" / "node_modules" / "@microsoft" / "m365agentsplayground" / "cli.js"
RESULT_MARKER = "GRADEBOT-RESULT "
NAMESPACE_UNAVAILABLE = 3  # isolated.sh's exit status when it cannot create the namespace
REQUIRE_PLAYGROUND_VARIABLE = "GRADEBOT_REQUIRE_PLAYGROUND"


class NamespaceUnavailableError(RuntimeError):
    """This machine cannot create a loopback-only network namespace (unshare -n not permitted)."""


@dataclass(frozen=True, slots=True)
class NamespaceRun:
    returncode: int
    result: dict[str, Any] | None
    stdout: str
    stderr: str


def playground_required() -> bool:
    """True in CI, where GRADEBOT_REQUIRE_PLAYGROUND=1 turns 'cannot run the Playground here' into a failure.

    Test-harness switch, read here and nowhere else in the tests (the product reads settings only in bot/settings.py).
    """
    return os.environ.get(REQUIRE_PLAYGROUND_VARIABLE) == "1"  # noqa: TID251 - the test harness's own switches and child environments


def cannot_run(what: str, reason: str) -> NoReturn:
    """Skip with the reason, except in CI (GRADEBOT_REQUIRE_PLAYGROUND=1), where not running it is a failure."""
    message = f"{what} cannot run here: {reason}"
    if playground_required():
        pytest.fail(message + " (GRADEBOT_REQUIRE_PLAYGROUND=1 requires it)")
    pytest.skip(message)


def missing_prerequisites() -> str | None:
    """Why the Playground cannot run on this machine, or None when node, the npm package, unshare and ip exist."""
    for program in ("node", "unshare", "ip", "bash"):
        if shutil.which(program) is None:
            return f"`{program}` is not on PATH" + (
                " (install Node.js 20+ and run scripts/setup)" if program == "node" else ""
            )
    if not PLAYGROUND_CLI.is_file():
        return f"the Agents Playground is not installed ({PLAYGROUND_CLI} missing): run scripts/setup"
    return None


def namespace_unavailable_reason() -> str | None:
    """None when isolated.sh can create the namespace here, else its explanation."""
    probe = subprocess.run(
        ["bash", str(ISOLATED_SCRIPT), "true"], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode == 0:
        return None
    return probe.stderr.strip() or f"isolated.sh exited with {probe.returncode}"


def _module_name(script: Path) -> str:
    relative = script.resolve().relative_to(REPO_ROOT)
    if relative.suffix != ".py":
        raise ValueError(f"{script} is not a Python file")
    return ".".join(relative.with_suffix("").parts)


def run_in_namespace(script: Path, *arguments: str, timeout: float = 60.0) -> NamespaceRun:
    """Run a script of this repository inside the namespace with this interpreter; collect its GRADEBOT-RESULT.

    Raises NamespaceUnavailableError when isolated.sh cannot isolate; on timeout, ends the whole process group
    (isolated.sh's PID namespace then ends everything the script started) and raises subprocess.TimeoutExpired.
    """
    command = ["bash", str(ISOLATED_SCRIPT), sys.executable, "-m", _module_name(script), *arguments]
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    if process.returncode == NAMESPACE_UNAVAILABLE and "isolated.sh: cannot" in stderr:
        raise NamespaceUnavailableError(stderr.strip())
    result: dict[str, Any] | None = None
    for line in stdout.splitlines():
        if line.startswith(RESULT_MARKER):
            result = json.loads(line[len(RESULT_MARKER) :])
    return NamespaceRun(returncode=process.returncode, result=result, stdout=stdout, stderr=stderr)


def emit_result(result: Mapping[str, Any]) -> None:
    """Called by the script inside the namespace: hand its JSON result to run_in_namespace."""
    print(RESULT_MARKER + json.dumps(result), flush=True)
