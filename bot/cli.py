"""Gradebot's command line (`python app.py [serve | remind-once --at …]`): the settings, logging (JSON lines or text,
secrets kept out of DEBUG output), telemetry (on only when configured) and exit codes; app.py hands it what to run."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import re
import sys
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from bot.kernel.errors import StartupRefusedError
from bot.reminders.sweep import SweepReport
from bot.settings import Settings, SettingsError
from bot.telemetry import export
from bot.telemetry.context import TEXT_FORMAT, JsonFormatter
from storage import SchemaVersionError

log = logging.getLogger("gradebot")

GRADEBOT_LOGGERS = ("gradebot", "bot", "graph", "storage", "cards")
"""Gradebot's own loggers: they follow LOG_LEVEL. Every other logger follows the root's level."""
CONSOLE = "gradebot-console"
"""The name of Gradebot's one handler on the root logger: standard error, one line per record (JSON or text)."""
_QUERY = re.compile(r'("[A-Z]+ [^ ?"]*)\?[^ "]*')


def _paths_only(record: logging.LogRecord) -> bool:
    """Access log lines keep each request's path and drop its query string: a sign-in link carries a signed token
    there (and a `response_mode=query` callback would carry an authorization code)."""
    if isinstance(record.msg, str):
        record.msg = _QUERY.sub(r"\1", record.msg)
    return True


def configure_logging(settings: Settings) -> None:
    """One line per record on standard error, a JSON object or text (`settings.json_logs`); Gradebot's loggers at
    LOG_LEVEL, every other package's (msal, urllib3, httpx, botbuilder, aiohttp…) at `settings.library_log_level`."""
    root = logging.getLogger()
    console = next((handler for handler in root.handlers if handler.name == CONSOLE), None)
    if console is None:
        console = logging.StreamHandler(sys.stderr)
        console.name = CONSOLE
        root.addHandler(console)
    console.setFormatter(JsonFormatter() if settings.json_logs else logging.Formatter(TEXT_FORMAT))
    root.setLevel(settings.library_log_level)
    for name in GRADEBOT_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level or "INFO")
    # One line per Graph request already comes from graph/ (ids only, at DEBUG); httpx would repeat full URLs.
    quiet = settings.library_log_level if settings.log_level_libraries else logging.WARNING
    logging.getLogger("httpx").setLevel(quiet)
    # Azure Monitor's exporter (azure-core) logs every export's request and headers at INFO: noise every few seconds.
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(quiet)
    logging.getLogger("aiohttp.access").addFilter(_paths_only)  # once: addFilter skips a filter already there
    for warning in settings.warnings:
        log.warning("%s", warning)


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give an offset or Z, e.g. 2026-11-30T07:00+01:00")
    return value


def run(
    argv: list[str] | None,
    *,
    serve: Callable[[Settings], None],
    remind_once: Callable[[Settings, datetime], Coroutine[Any, Any, SweepReport]],
) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Run Gradebot.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the bot (default)")
    once = sub.add_parser("remind-once", help="run one reminder sweep as if at --at, print what it did, exit")
    once.add_argument(
        "--at", required=True, type=_instant, help="ISO 8601 instant with offset, e.g. 2026-11-30T07:00+01:00"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings)
        export.start(settings)
        if args.command == "remind-once":
            report = asyncio.run(remind_once(settings, args.at))
            print(json.dumps(dataclasses.asdict(report), indent=2))
            return 0 if not report.failed else 1
        mode = "sandbox" if settings.sandbox_mode else "production"
        log.info("starting Gradebot in %s mode on %s:%s", mode, settings.host, settings.port)
        serve(settings)
    except (SettingsError, StartupRefusedError, SchemaVersionError) as exc:  # a newer release's database isn't ours
        print(f"Gradebot cannot start: {exc}", file=sys.stderr)
        return 2
    finally:
        export.stop()
    return 0
