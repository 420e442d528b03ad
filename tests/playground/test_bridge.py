"""devtools/playground/bridge.py: HTTP, WebSocket and half-closed streams pass unchanged through tcp → unix → tcp;
it refuses non-loopback addresses, reports a taken port, and stops on a signal or at the end of its stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.playground.launcher import free_loopback_port
from tests.playground.run_in_namespace import REPO_ROOT

BRIDGE = REPO_ROOT / "devtools" / "playground" / "bridge.py"
READY = b"BRIDGE_READY "


async def start_bridge(listen: str, connect: str, *extra: str) -> asyncio.subprocess.Process:
    """Start the bridge and wait for its ready line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BRIDGE),
        "--listen",
        listen,
        "--connect",
        connect,
        *extra,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 10)
    assert line.startswith(READY), line
    return process


async def stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 10)


@contextlib.asynccontextmanager
async def chain(target_port: int, socket_path: Path) -> AsyncIterator[int]:
    """The scripts/bot layout: host tcp port → unix socket → the target's tcp port; yields the host port."""
    inner = await start_bridge(f"unix:{socket_path}", f"tcp:127.0.0.1:{target_port}")
    port = free_loopback_port()
    outer = await start_bridge(f"tcp:127.0.0.1:{port}", f"unix:{socket_path}")
    try:
        yield port
    finally:
        assert await stop(outer) == 0
        assert await stop(inner) == 0


def http_and_websocket_app() -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.query.get('name', '')}" + "x" * 300_000)

    async def echo(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for frame in socket:
            if frame.type == aiohttp.WSMsgType.TEXT:
                await socket.send_str(f"echo {frame.data}")
            elif frame.type == aiohttp.WSMsgType.BINARY:
                await socket.send_bytes(frame.data[::-1])
        return socket

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/ws", echo)
    return app


async def test_http_and_websockets_pass_through_tcp_unix_tcp(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]], tmp_path: Path
) -> None:
    server = await aiohttp_server(http_and_websocket_app())
    assert server.port is not None
    async with chain(server.port, tmp_path / "ui.sock") as port, aiohttp.ClientSession() as http:
        for attempt in range(3):  # a new upstream connection each time
            async with http.get(f"http://127.0.0.1:{port}/hello", params={"name": f"rosa{attempt}"}) as response:
                body = await response.text()
            assert response.status == 200
            assert body.startswith(f"hello rosa{attempt}") and len(body) == len(f"hello rosa{attempt}") + 300_000
        async with http.ws_connect(f"ws://127.0.0.1:{port}/ws") as socket:
            await socket.send_str("ping")
            assert await socket.receive_str(timeout=5) == "echo ping"
            await socket.send_bytes(b"\x00\x01\xff")
            assert await socket.receive_bytes(timeout=5) == b"\xff\x01\x00"
    assert not (tmp_path / "ui.sock").exists(), "the bridge removes its socket when it stops"


async def test_a_half_closed_request_still_gets_its_answer(tmp_path: Path) -> None:
    async def answer_after_end_of_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.read()  # until the client's write side is shut
        writer.write(b"got %d bytes" % len(request))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer_after_end_of_request, "127.0.0.1", 0)
    target_port = server.sockets[0].getsockname()[1]
    try:
        async with chain(target_port, tmp_path / "ui.sock") as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"a" * 100_000)
            await writer.drain()
            writer.write_eof()
            assert await asyncio.wait_for(reader.read(), 10) == b"got 100000 bytes"
            writer.close()
    finally:
        server.close()
        await server.wait_closed()


async def test_while_the_target_is_down_connections_close_and_the_bridge_keeps_serving(tmp_path: Path) -> None:
    socket_path = tmp_path / "ui.sock"
    port = free_loopback_port()
    bridge = await start_bridge(f"tcp:127.0.0.1:{port}", f"unix:{socket_path}")
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 10) == b""  # nothing listens on the socket yet
        writer.close()

        async def hello(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"up")
            await writer.drain()
            writer.close()

        server = await asyncio.start_unix_server(hello, socket_path)
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert await asyncio.wait_for(reader.read(), 10) == b"up"
            writer.close()
        finally:
            server.close()
            await server.wait_closed()
    finally:
        assert await stop(bridge) == 0


async def run_bridge(*arguments: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(BRIDGE), *arguments, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 10)
    assert process.returncode is not None
    return process.returncode, stderr.decode()


async def test_other_hosts_and_malformed_endpoints_are_refused(tmp_path: Path) -> None:
    socket = f"unix:{tmp_path / 's'}"
    for listen, connect, message in [
        ("tcp:0.0.0.0:56150", socket, "only uses loopback"),
        ("tcp:127.0.0.1:56150", "tcp:10.0.0.8:80", "only uses loopback"),
        ("tcp:127.0.0.1:port", socket, "port must be a number"),
        ("http://127.0.0.1:1", socket, "expected tcp:HOST:PORT or unix:PATH"),
    ]:
        status, stderr = await run_bridge("--listen", listen, "--connect", connect)
        assert (status, message in stderr) == (1, True), (listen, connect, stderr)
    status, stderr = await run_bridge("--listen", socket)
    assert status == 2 and "--connect" in stderr


async def test_a_taken_port_is_reported(tmp_path: Path) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        status, stderr = await run_bridge("--listen", f"tcp:127.0.0.1:{port}", "--connect", f"unix:{tmp_path / 's'}")
    finally:
        server.close()
        await server.wait_closed()
    assert status == 1
    assert f"cannot listen on tcp:127.0.0.1:{port}" in stderr


async def test_it_stops_at_the_end_of_its_stdin_with_stop_on_eof(tmp_path: Path) -> None:
    socket_path = tmp_path / "ui.sock"
    bridge = await start_bridge(f"unix:{socket_path}", "tcp:127.0.0.1:9", "--stop-on-eof")
    assert socket_path.is_socket()
    assert socket_path.stat().st_mode & 0o077 == 0, "only this user may connect"
    assert bridge.stdin is not None
    bridge.stdin.close()  # what happens when scripts/bot ends, however it ends
    assert await asyncio.wait_for(bridge.wait(), 10) == 0
    assert not socket_path.exists()


async def test_sigint_stops_it_too(tmp_path: Path) -> None:
    port = free_loopback_port()
    bridge = await start_bridge(f"tcp:127.0.0.1:{port}", f"unix:{tmp_path / 's'}")
    os.kill(bridge.pid, signal.SIGINT)
    assert await asyncio.wait_for(bridge.wait(), 10) == 0
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
