"""`python -m bench.server_host ROLE CONFIG_JSON`: one process of the server benchmark on 127.0.0.1 — the stand-ins,
the echo bot, or Gradebot's real app (production settings: JWT validation on, SQLite, JSON logs on standard error,
the default school's sandbox in this process for its Graph reads) — printing its address once it listens."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

READY_PREFIX = "BENCH_SERVER_READY "


@asynccontextmanager
async def _gradebot(config: dict[str, Any]) -> AsyncIterator[web.Application]:
    from app import create_app
    from bot.cli import configure_logging
    from bot.settings import Settings
    from sandbox.app import Sandbox
    from sandbox.link import SandboxLink

    settings = Settings.from_env(
        {},
        app_id=config["appId"],
        app_type="UserAssignedMSI",
        app_tenant_id=config["tenantId"],
        bot_openid_metadata_url=config["metadataUrl"],
        token_encryption_key=b"b" * 32,
        public_base_url="https://gradebot.example",
        database_url=f"sqlite:///{config['directory']}/gradebot.db",
        reminders_enabled=False,
    )
    configure_logging(settings)
    async with Sandbox() as sandbox:  # Graph and the sign-in authority for the teachers (priming `ungraded` only)
        link = await SandboxLink.connect(sandbox.base_url)
        try:
            yield create_app(settings, sandbox=link)
        finally:
            await link.close()


async def serve(role: str, config: dict[str, Any]) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    async with _app(role, config) as app:
        runner = web.AppRunner(app)  # as web.run_app serves it: aiohttp's access log included
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        print(READY_PREFIX + json.dumps({"url": f"http://{host}:{port}"}), flush=True)
        try:
            await stopping.wait()
        finally:
            await runner.cleanup()


@asynccontextmanager
async def _app(role: str, config: dict[str, Any]) -> AsyncIterator[web.Application]:
    if role == "gradebot":
        async with _gradebot(config) as app:
            yield app
    elif role == "echo":
        from bench.echo import echo_app

        yield echo_app(config["appId"], config["tenantId"], config["metadataUrl"])
    else:
        from bench.stand_ins import StandIns

        yield StandIns(config["jwks"]).app()


def main(argv: list[str]) -> int:
    role, config = argv
    asyncio.run(serve(role, json.loads(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
