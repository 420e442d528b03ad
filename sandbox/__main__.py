"""`python -m sandbox`: serve the local Microsoft cloud until SIGINT/SIGTERM; `users` lists the seeded people;
`token --user UPN` asks a running sandbox for a delegated Graph token (development helper).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from sandbox.app import Sandbox, SandboxError, seeded_users
from sandbox.faults import FaultConfigError, add_fault_arguments, fault_plan_from_args
from sandbox.school import School
from sandbox.seed import default_school, generate_school

DEFAULT_PORT = 8765
READY_PREFIX = "SANDBOX_READY "
USAGE_ERROR_EXIT = 2


class CommandError(Exception):
    """A CLI failure worth one line on stderr and exit code 2 (no traceback)."""


def _big_school_shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    try:
        classes, assignments, students = (int(p) for p in parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("use CLASSESxASSIGNMENTSxSTUDENTS, e.g. 20x30x40") from exc
    if min(classes, assignments, students) < 1:
        raise argparse.ArgumentTypeError("every number in CLASSESxASSIGNMENTSxSTUDENTS must be at least 1")
    return classes, assignments, students


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox",
        description="Gradebot's local Microsoft cloud: Graph education emulator, Entra stand-in, Bot Connector.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="http port on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--tls-port", type=int, default=0, help="https port for the authority (0 = any free port)")
    parser.add_argument("--page-size", type=int, default=10, help="Graph page size before @odata.nextLink")
    parser.add_argument(
        "--big",
        type=_big_school_shape,
        metavar="CxAxS",
        help="serve a generated school of C classes, A assignments per class and S students per class",
    )
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when standard input closes (a parent process that starts the sandbox passes a pipe, so the "
        "sandbox ends with it even if the parent is killed)",
    )
    add_fault_arguments(parser)
    commands = parser.add_subparsers(dest="command", metavar="{users,token}")
    commands.add_parser("users", help="print the seeded users as JSON (no server needed)")
    token = commands.add_parser("token", help="print a delegated Graph access token from a running sandbox")
    token.add_argument("--user", required=True, help="the seeded user's UPN (or object id)")
    token.add_argument("--url", default=f"http://127.0.0.1:{DEFAULT_PORT}", help="the running sandbox's base URL")
    token.add_argument("--scope", action="append", dest="scopes", help="a Graph scope (repeatable; default: all)")
    return parser


def school_from_args(args: argparse.Namespace) -> School:
    if args.big is None:
        return default_school()
    classes, assignments, students = args.big
    try:
        return generate_school(classes=classes, assignments_per_class=assignments, students_per_class=students)
    except ValueError as exc:
        raise CommandError(f"--big: {exc}") from exc


def ready_lines(sandbox: Sandbox) -> list[str]:
    """What `serve` prints once listening; the last line is the machine-readable `SANDBOX_READY {json}`."""
    info = sandbox.info()
    ready = {key: value for key, value in info.items() if key != "caPem"}
    ready["infoUrl"] = f"{sandbox.base_url}/_sandbox/info"
    return [
        f"Sandbox tenant   {info['tenantId']}",
        f"Graph            {sandbox.graph_url}",
        f"Graph beta       {sandbox.beta_url}",
        f"Authority        {sandbox.authority_url}  (https; CA at {sandbox.base_url}/_sandbox/ca.pem)",
        f"Bot Connector    {sandbox.connector_url}",
        f"Info             {ready['infoUrl']}",
        READY_PREFIX + json.dumps(ready, separators=(",", ":")),
    ]


async def serve(args: argparse.Namespace) -> None:
    sandbox = Sandbox(
        school_from_args(args),
        faults=fault_plan_from_args(args),
        page_size=args.page_size,
        port=args.port,
        tls_port=args.tls_port,
    )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    watcher = loop.create_task(_stop_at_end_of_input(stopping)) if args.exit_with_parent else None
    try:
        await sandbox.start()
    except OSError as exc:
        raise CommandError(f"cannot listen on 127.0.0.1: {exc.strerror or exc}") from exc
    try:
        print("\n".join(ready_lines(sandbox)), flush=True)
        await stopping.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await sandbox.stop()


async def _stop_at_end_of_input(stopping: asyncio.Event) -> None:
    """Set `stopping` once standard input reaches end of file (the parent holding the pipe has gone)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass
    stopping.set()


def request_token(url: str, user: str, scopes: Sequence[str] | None = None) -> str:
    """POST `/_sandbox/token` on a running sandbox and return the access token."""
    body: dict[str, Any] = {"upn": user}
    if scopes:
        body["scopes"] = list(scopes)
    request = urllib.request.Request(
        f"{url.rstrip('/')}/_sandbox/token",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            raise CommandError(f"the sandbox at {url} has no user {user!r}") from exc
        raise CommandError(f"the sandbox at {url} answered HTTP {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CommandError(f"no sandbox answers at {url} ({reason})") from exc
    except ValueError as exc:
        raise CommandError(f"the server at {url} did not answer like a sandbox") from exc
    return str(answer["access_token"])


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "users":
            print(json.dumps(seeded_users(default_school().directory), indent=2))
        elif args.command == "token":
            print(request_token(args.url, args.user, args.scopes))
        else:
            asyncio.run(serve(args))
    except (CommandError, SandboxError, FaultConfigError) as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return USAGE_ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
