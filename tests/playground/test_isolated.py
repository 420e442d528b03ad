"""devtools/playground/isolated.sh: loopback only inside, exit status passed through, exit 3 when it cannot isolate."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.playground.run_in_namespace import (
    ISOLATED_SCRIPT,
    NAMESPACE_UNAVAILABLE,
    cannot_run,
    namespace_unavailable_reason,
)


def run_isolated(*command: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(ISOLATED_SCRIPT), *command], capture_output=True, text=True, timeout=30, env=env, check=False
    )


def require_namespace() -> None:
    reason = namespace_unavailable_reason()
    if reason:
        cannot_run("a loopback-only network namespace", reason)


def test_refuses_with_exit_3_and_a_clear_message_when_unshare_is_not_permitted(tmp_path: Path) -> None:
    # A stand-in `unshare` that fails the way it does without CAP_SYS_ADMIN or user namespaces.
    fake = tmp_path / "unshare"
    fake.write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    marker = tmp_path / "ran"
    completed = run_isolated("touch", str(marker), env={"PATH": f"{tmp_path}:/usr/sbin:/usr/bin:/sbin:/bin"})
    assert completed.returncode == NAMESPACE_UNAVAILABLE
    assert "cannot create a loopback-only network namespace" in completed.stderr
    assert "unshare -n" in completed.stderr
    assert not marker.exists(), "the command must not run without isolation"


def test_without_a_command_prints_usage() -> None:
    completed = run_isolated()
    assert completed.returncode == 2
    assert "usage:" in completed.stderr


def test_inside_only_loopback_exists_and_the_telemetry_switches_are_set() -> None:
    require_namespace()
    script = (
        "tail -n +3 /proc/net/dev | cut -d: -f1; echo ---; ip -o link show up | cut -d: -f2; echo ---;"
        ' echo "browser=$TEAMSAPPTESTER_BROWSER statsbeat=$APPLICATION_INSIGHTS_NO_STATSBEAT"'
    )
    completed = run_isolated("sh", "-c", script)
    assert completed.returncode == 0, completed.stderr
    devices, links_up, switches = (part.split() for part in completed.stdout.split("---"))
    assert devices == ["lo"]
    assert links_up == ["lo"]
    assert switches == ["browser=none", "statsbeat=1"]


def test_the_command_exit_status_is_passed_through() -> None:
    require_namespace()
    assert run_isolated("sh", "-c", "exit 7").returncode == 7
