"""The Playground harness works end to end: echo bot + Agents Playground + driver, inside a loopback-only namespace."""

from __future__ import annotations

from typing import NoReturn

import pytest

from sandbox.directory import default_directory
from tests.playground.run_in_namespace import (
    REPO_ROOT,
    NamespaceUnavailableError,
    missing_prerequisites,
    namespace_unavailable_reason,
    run_in_namespace,
)
from tests.playground.run_in_namespace import (
    cannot_run as shared_cannot_run,
)

SMOKE_SCRIPT = REPO_ROOT / "tests" / "playground" / "echo_smoke.py"


def cannot_run(reason: str) -> NoReturn:
    shared_cannot_run("Agents Playground smoke test", reason)


@pytest.mark.playground
def test_echo_round_trip_through_the_playground_in_a_loopback_only_namespace() -> None:
    reason = missing_prerequisites() or namespace_unavailable_reason()
    if reason:
        cannot_run(reason)
    try:
        run = run_in_namespace(SMOKE_SCRIPT, timeout=90)
    except NamespaceUnavailableError as error:
        cannot_run(str(error))
    assert run.result is not None, f"no result from the script (exit {run.returncode}):\n{run.stderr[-4000:]}"
    assert "error" not in run.result, f"{run.result['error']}\n{run.stderr[-4000:]}"
    assert run.returncode == 0
    result = run.result

    # Nothing but loopback exists, and reaching the outside fails at once instead of leaving the machine.
    assert result["namespace"]["interfaces"] == ["lo"]
    assert result["namespace"]["outside_connect_errno"] == result["namespace"]["enetunreach"]

    # The Playground read our config file: the sandbox school's Chemistry 201, as Rosa Martinez.
    directory = default_directory()
    chemistry = next(c for c in directory.classes.values() if c.display_name == "Chemistry 201")
    rosa = directory.user_by_upn("rosa.martinez@contoso-high.example")
    assert rosa is not None
    config = result["config"]
    assert config["tenantId"] == directory.tenant_id
    assert config["bot"] == {"id": "28:gradebot", "name": "Gradebot"}
    assert config["currentUser"] == f"29:{rosa.id}"
    assert len(config["users"]) == 5
    assert config["team"] == {"id": chemistry.team_id, "name": "Chemistry 201", "aadGroupId": chemistry.id}
    assert config["channels"] == ["General", "Assignments"]

    # Every driver call got the bot's answer.
    assert result["echo"] == "Echo: hello from the namespace"
    assert result["channel_echo"] == "Echo: hello channel"  # the @mention was stripped by the bot
    assert result["channel_echo_conversation"].startswith(f"{chemistry.team_id};messageid=")
    assert result["card"][0]["actions"][0]["verb"] == "press"
    assert result["invoke"]["type"] == "application/vnd.microsoft.card.adaptive"
    assert result["invoke"]["value"]["body"][0]["text"] == "pressed verb=press data=[('points', '9')]"
    assert (
        result["pressed"]["value"]["body"][0]["text"] == "pressed verb=press data=[('kind', 'echo'), ('points', '7')]"
    )
    assert result["welcome"] == f"Welcome 29:{rosa.id} to Chemistry 201"
