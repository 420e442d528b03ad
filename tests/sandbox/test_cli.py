"""`python -m sandbox` as a real subprocess: serve + ready line + SIGTERM, `users`, `token`, and their failures."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sandbox.__main__ import READY_PREFIX, CommandError, build_parser, main, school_from_args
from sandbox.app import Sandbox
from tests.sandbox.identity_fixtures import claims_of, running_sandbox, teacher

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        *args,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running:
        yield running


async def read_ready(process: asyncio.subprocess.Process) -> tuple[list[str], dict[str, Any]]:
    assert process.stdout is not None
    lines: list[str] = []
    while True:
        raw = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT_S)
        assert raw, f"the sandbox exited before it was ready: {lines}"
        line = raw.decode().rstrip("\n")
        lines.append(line)
        if line.startswith(READY_PREFIX):
            return lines, json.loads(line[len(READY_PREFIX) :])


async def test_serve_prints_ready_line_serves_graph_and_stops_on_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        lines, ready = await read_ready(process)
        base_url = ready["baseUrl"]
        assert base_url.startswith("http://127.0.0.1:") and not base_url.endswith(":0")
        assert any(line.endswith(f"{base_url}/v1.0") for line in lines)
        assert ready["graphUrl"] == f"{base_url}/v1.0" and ready["connectorUrl"] == f"{base_url}/connector"
        assert ready["authorityUrl"].startswith("https://127.0.0.1:")

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base_url}/_sandbox/info") as response:
                info = await response.json()
            assert info["authorityUrl"] == ready["authorityUrl"] and "BEGIN CERTIFICATE" in info["caPem"]
            async with http.get(f"{base_url}/_sandbox/users") as response:
                users = await response.json()
            teacher_upn = next(u["upn"] for u in users if u["role"] == "teacher")

            async with http.get(f"{base_url}/v1.0/education/classes") as response:
                assert response.status == 401
            status, token, _ = await run_cli("token", "--user", teacher_upn, "--url", base_url)
            assert status == 0
            token = token.strip()
            assert claims_of(token)["upn"] == teacher_upn
            headers = {"Authorization": f"Bearer {token}"}
            async with http.get(f"{base_url}/v1.0/education/classes", headers=headers) as response:
                assert response.status == 200
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    assert process.returncode == 0


async def test_exit_with_parent_stops_when_standard_input_closes() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sandbox",
        "--port",
        "0",
        "--exit-with-parent",
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, ready = await read_ready(process)
    assert ready["baseUrl"].startswith("http://127.0.0.1:")
    assert process.stdin is not None
    process.stdin.close()  # what happens when the parent dies, however it dies
    await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    assert process.returncode == 0


async def test_users_prints_the_seeded_users_as_json() -> None:
    status, stdout, _ = await run_cli("users")
    assert status == 0
    users = json.loads(stdout)
    assert users and {"id", "upn", "displayName", "role", "classes"} <= users[0].keys()
    teachers = [u for u in users if u["role"] == "teacher"]
    assert teachers and all(c["role"] == "teacher" for c in teachers[0]["classes"])
    assert {"id", "displayName", "role"} == set(teachers[0]["classes"][0])


async def test_token_for_an_unknown_user_is_a_one_line_error(sandbox: Sandbox) -> None:
    status, stdout, stderr = await run_cli("token", "--user", "nobody@nowhere.example", "--url", sandbox.base_url)
    assert status == 2 and stdout == ""
    assert stderr.count("\n") == 1 and "nobody@nowhere.example" in stderr and "Traceback" not in stderr


async def test_token_without_a_running_sandbox_is_a_one_line_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    status, _, stderr = await run_cli("token", "--user", "x@y.example", "--url", f"http://127.0.0.1:{closed_port}")
    assert status == 2
    assert stderr.startswith("sandbox: no sandbox answers at") and stderr.count("\n") == 1
    assert "Traceback" not in stderr


async def test_token_helper_used_in_process(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    rosa = teacher(sandbox)
    assert await asyncio.to_thread(main, ["token", "--user", rosa.user_principal_name, "--url", sandbox.base_url]) == 0
    assert claims_of(capsys.readouterr().out.strip())["oid"] == rosa.id


def test_big_school_flag_builds_a_generated_school() -> None:
    args = build_parser().parse_args(["--port", "0", "--big", "2x3x4"])
    assert args.big == (2, 3, 4) and args.port == 0 and args.command is None
    school = school_from_args(args)
    assert len(school.directory.classes) == 2
    assert all(len(c.student_ids) == 4 for c in school.directory.classes.values())
    with pytest.raises(CommandError):
        school_from_args(build_parser().parse_args(["--big", "2x3x1"]))  # the generator needs 3 students a class
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["--big", "2x3"])
    assert exited.value.code == 2
