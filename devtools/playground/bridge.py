"""A byte forwarder between a loopback TCP port and a Unix socket (stdlib only): it carries the Agents Playground's web
UI out of its loopback-only network namespace, since Unix sockets live in the filesystem that both namespaces share.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CHUNK_BYTES = 64 * 1024
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
READY_PREFIX = "BRIDGE_READY "


class BridgeError(Exception):
    """The bridge cannot start: a bad endpoint, or nothing can listen there."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """`tcp:HOST:PORT` (loopback only) or `unix:PATH`."""

    kind: Literal["tcp", "unix"]
    host: str = ""
    port: int = 0
    path: str = ""

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        kind, _, rest = text.partition(":")
        if kind == "unix" and rest:
            return cls("unix", path=rest)
        if kind == "tcp":
            host, _, port = rest.rpartition(":")
            host = host.strip("[]")
            if host not in LOOPBACK_HOSTS:
                raise BridgeError(f"{text}: the bridge only uses loopback addresses (127.0.0.1, ::1, localhost)")
            if not port.isdigit() or not 0 < int(port) < 65536:
                raise BridgeError(f"{text}: the port must be a number from 1 to 65535")
            return cls("tcp", host=host, port=int(port))
        raise BridgeError(f"{text}: expected tcp:HOST:PORT or unix:PATH")

    def __str__(self) -> str:
        return f"unix:{self.path}" if self.kind == "unix" else f"tcp:{self.host}:{self.port}"

    async def open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.kind == "unix":
            return await asyncio.open_unix_connection(self.path, limit=CHUNK_BYTES)
        return await asyncio.open_connection(self.host, self.port, limit=CHUNK_BYTES)


async def _copy(source: asyncio.StreamReader, destination: asyncio.StreamWriter) -> None:
    """Copy until end of stream, then pass the half-close on; a broken side aborts the other one."""
    try:
        while chunk := await source.read(CHUNK_BYTES):
            destination.write(chunk)
            await destination.drain()
        if destination.can_write_eof():
            destination.write_eof()
    except OSError:  # the peer reset or vanished: nothing more can pass in either direction
        destination.transport.abort()


def _remove_socket(path: Path) -> None:
    with contextlib.suppress(OSError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


class Bridge:
    """Listens on one endpoint and forwards every connection to the other."""

    def __init__(self, listen: Endpoint, target: Endpoint) -> None:
        self.listen = listen
        self.target = target
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._target_state: bool | None = None
        """None until the first attempt succeeds: refusals while the other side starts up are not worth a line."""

    async def start(self) -> None:
        try:
            if self.listen.kind == "unix":
                # asyncio replaces a stale socket left by a run that was killed.
                previous = os.umask(0o077)  # only this user may connect
                try:
                    self._server = await asyncio.start_unix_server(self._serve, self.listen.path, limit=CHUNK_BYTES)
                finally:
                    os.umask(previous)
            else:
                self._server = await asyncio.start_server(
                    self._serve, self.listen.host, self.listen.port, limit=CHUNK_BYTES
                )
        except OSError as error:
            raise BridgeError(f"cannot listen on {self.listen}: {error.strerror or error}") from error

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
        if self.listen.kind == "unix":
            _remove_socket(Path(self.listen.path))

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            try:
                target_reader, target_writer = await self.target.open()
            except OSError as error:
                self._note_target(reachable=False, reason=error.strerror or str(error))
                await _close(client_writer)
                return
            self._note_target(reachable=True)
            try:
                await asyncio.gather(_copy(client_reader, target_writer), _copy(target_reader, client_writer))
            finally:
                await asyncio.gather(_close(target_writer), _close(client_writer))
        finally:
            self._connections.discard(task)

    def _note_target(self, *, reachable: bool, reason: str = "") -> None:
        """One line when the other side stops or starts answering again (not one per refused connection)."""
        previous, self._target_state = self._target_state, reachable
        if previous is None and not reachable:
            self._target_state = None  # still starting up
            return
        if previous is None or previous == reachable:
            return
        message = f"{self.target} answers again" if reachable else f"cannot reach {self.target} ({reason})"
        print(f"bridge: {message}", file=sys.stderr, flush=True)


async def _until_end_of_input(stopping: asyncio.Event) -> None:
    """Set `stopping` when stdin reaches end of file (its writer, e.g. scripts/bot, closed it or ended)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(CHUNK_BYTES):
        pass
    stopping.set()


async def run(listen: Endpoint, target: Endpoint, *, stop_on_end_of_input: bool = False) -> None:
    """Serve until SIGINT, SIGTERM or SIGHUP (or, if asked, until stdin reaches end of file)."""
    bridge = Bridge(listen, target)
    await bridge.start()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(number, stopping.set)
    watcher = asyncio.create_task(_until_end_of_input(stopping)) if stop_on_end_of_input else None
    print(f"{READY_PREFIX}{listen}", flush=True)
    try:
        await stopping.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        await bridge.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bridge.py",
        description=(
            "Forward connections between a loopback TCP port and a Unix socket. Each accepted connection gets its own "
            "connection to the other side and bytes pass both ways unchanged, so HTTP and WebSocket upgrades work. "
            "Prints 'BRIDGE_READY <listen>' once listening; SIGINT, SIGTERM and SIGHUP stop it (exit 0). Exit 1 when "
            "it cannot listen or an endpoint is wrong; TCP addresses must be loopback."
        ),
        epilog=(
            "host:   bridge.py --listen tcp:127.0.0.1:56150 --connect unix:/tmp/x/ui.sock  |  "
            "inside: bridge.py --listen unix:/tmp/x/ui.sock --connect tcp:127.0.0.1:56150"
        ),
    )
    parser.add_argument("--listen", required=True, help="tcp:127.0.0.1:PORT or unix:PATH")
    parser.add_argument("--connect", required=True, help="tcp:127.0.0.1:PORT or unix:PATH")
    parser.add_argument(
        "--stop-on-eof", action="store_true", help="also stop when stdin reaches end of file (a control pipe closed)"
    )
    args = parser.parse_args(argv)
    try:
        listen, target = Endpoint.parse(args.listen), Endpoint.parse(args.connect)
        asyncio.run(run(listen, target, stop_on_end_of_input=args.stop_on_eof))
    except BridgeError as error:
        print(f"bridge: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
