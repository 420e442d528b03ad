"""End-to-end fixtures: the real sandbox over HTTP on 127.0.0.1, and Gradebot's real aiohttp app (CloudAdapter,
SQLite, msal against the sandbox identity endpoint) driven through POST /api/messages — and the privacy scan that
checks every test here: nothing in shared conversations or in DEBUG logs names a student, repeats a typed grade or
feedback, or holds a token, authorization code or PKCE verifier (tests/bot/privacy.py)."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from app import create_app
from bot.cli import configure_logging
from bot.settings import Settings
from bot.telemetry.context import JsonFormatter
from sandbox.app import Sandbox
from sandbox.directory import SchoolClass, User
from sandbox.school import School
from sandbox.seed import default_school
from sandbox.tls import TlsMaterial, generate_tls_material
from tests.bot.privacy import Posted, PrivacyScan
from tests.bot.telemetry_memory import Recorded, in_memory_telemetry

AppClient = TestClient[web.Request, web.Application]


@functools.cache
def _keys() -> tuple[rsa.RSAPrivateKey, TlsMaterial]:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), generate_tls_material()


class Clock:
    """Gradebot's clock seam: real time unless a test pins it."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def __call__(self) -> datetime:
        return self.fixed or datetime.now(UTC)


@dataclass
class World:
    """One running sandbox and one running Gradebot talking to it."""

    sandbox: Sandbox
    client: AppClient
    clock: Clock
    database_url: str
    posted: list[Posted] = field(default_factory=list)
    """Every activity posted with `post` and Gradebot's HTTP answer (the privacy scan reads them)."""

    @property
    def school(self) -> School:
        return self.sandbox.school

    def user(self, upn_prefix: str) -> User:
        return next(u for u in self.school.directory.users.values() if u.user_principal_name.startswith(upn_prefix))

    def school_class(self, code: str) -> SchoolClass:
        return next(c for c in self.school.directory.classes.values() if c.class_code == code)

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        response = await self.client.post("/api/messages", json=activity)
        body = await response.json() if response.content_type == "application/json" else None
        self.posted.append(Posted(activity, response.status, body))
        return response.status, body


def start_sandbox(school: School | None = None, **options: Any) -> Sandbox:
    key, tls = _keys()
    return Sandbox(school or default_school(), signing_key=key, tls=tls, **options)


PRIVACY_SCAN = pytest.StashKey[PrivacyScan]()


@pytest.fixture(scope="session")
def telemetry_memory() -> Recorded:
    return in_memory_telemetry()


@pytest.fixture
def telemetry(telemetry_memory: Recorded) -> Recorded:
    """Spans and metrics Gradebot's telemetry recorded during this test (in memory; nothing leaves the machine)."""
    return telemetry_memory


@pytest.fixture(autouse=True)
def privacy_scan(request: pytest.FixtureRequest, telemetry_memory: Recorded) -> Iterator[PrivacyScan]:
    """Logging as a LOG_LEVEL=DEBUG production server runs it (JSON lines), captured, and telemetry on (in memory);
    after the test (see `pytest_runtest_call`) the log lines, the spans, the activities Gradebot posted in channels
    and group chats, and its answers there are scanned for leaks."""
    telemetry_memory.begin()
    scan = PrivacyScan(spans=telemetry_memory.spans)
    root = logging.getLogger()
    levels = {name: item.level for name, item in root.manager.loggerDict.items() if isinstance(item, logging.Logger)}
    root_level, root_handlers = root.level, list(root.handlers)
    # What app.main does for LOG_LEVEL=DEBUG LOG_FORMAT=json; the scan reads the lines as that handler writes them.
    configure_logging(Settings.from_env({}, log_level="DEBUG", log_format="json"))
    scan.logs.setFormatter(JsonFormatter())
    root.addHandler(scan.logs)
    request.node.stash[PRIVACY_SCAN] = scan
    try:
        yield scan
    finally:
        for handler in [h for h in root.handlers if h not in root_handlers]:
            root.removeHandler(handler)
        root.setLevel(root_level)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """The privacy scan's verdict is part of the test: a leak fails it, naming where (data replaced by «kind»)."""
    result = yield
    scan = item.stash.get(PRIVACY_SCAN, None)
    if scan is not None:
        findings = scan.findings()
        if findings:
            shown = "\n".join(f"- {finding}" for finding in findings[:10])
            more = f"\n… and {len(findings) - 10} more" if len(findings) > 10 else ""
            pytest.fail(f"privacy scan: {len(findings)} leak(s)\n{shown}{more}", pytrace=False)
    return result


@pytest.fixture
def gradebot_settings(tmp_path: Path) -> Callable[[Sandbox], Settings]:
    def make(sandbox: Sandbox, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "sandbox_url": sandbox.base_url,
            "database_url": f"sqlite:///{tmp_path / 'gradebot.db'}",
            "reminders_enabled": False,
        }
        values.update(overrides)
        return Settings.from_env({}, **values)

    return make


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def make_world(
    aiohttp_client: Any, gradebot_settings: Callable[..., Settings], privacy_scan: PrivacyScan
) -> AsyncIterator[WorldFactory]:
    """Start a sandbox (optionally with a given school and options) and a Gradebot attached to it (`app_options`
    go to `create_app`)."""
    started: list[tuple[Sandbox, AppClient]] = []

    async def make(
        school: School | None = None,
        *,
        sandbox_options: dict[str, Any] | None = None,
        dev_sso: bool = True,
        app_options: dict[str, Any] | None = None,
        **settings: Any,
    ) -> World:
        sandbox = start_sandbox(school, **(sandbox_options or {}))
        await sandbox.start()
        privacy_scan.watch(sandbox)
        clock = Clock()
        config = gradebot_settings(sandbox, **settings)
        client = await aiohttp_client(create_app(config, clock=clock, dev_sso=dev_sso, **(app_options or {})))
        started.append((sandbox, client))
        world = World(sandbox, client, clock, config.database_url, posted=privacy_scan.posted)
        return world

    yield make
    for sandbox, client in reversed(started):
        await client.close()
        await sandbox.stop()


@pytest.fixture
async def world(make_world: WorldFactory) -> World:
    return await make_world()


def replies(body: Any) -> list[dict[str, Any]]:
    """The activities an expectReplies answer carries."""
    assert isinstance(body, dict), body
    return list(body.get("activities") or [])


def cards_of(activities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        attachment["content"]
        for activity in activities
        for attachment in activity.get("attachments") or []
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive"
    ]


def invoke_card(body: Any) -> dict[str, Any]:
    """The card an Action.Execute invoke answered with (HTTP 200, statusCode 200, card type)."""
    assert body["statusCode"] == 200, body
    assert body["type"] == "application/vnd.microsoft.card.adaptive", body
    return dict(body["value"])


def card_text(card: Any) -> str:
    """Every string in a card, joined (for "does it mention X" checks)."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        elif isinstance(node, str):
            parts.append(node)

    walk(card)
    return "\n".join(parts)


def elements_of(card: Any) -> list[dict[str, Any]]:
    """Every typed element and action in a card, nested ones (ShowCards, ActionSets, containers) included."""
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "type" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(card)
    return found


def actions_of(card: Any) -> list[dict[str, Any]]:
    """Every Action.Execute in a card (nested ShowCards and ActionSets included)."""
    return [element for element in elements_of(card) if element.get("type") == "Action.Execute"]
