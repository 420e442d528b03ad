"""Logs never carry secrets: with LOG_LEVEL=DEBUG and every logger at the level main() gives it, a whole sign-in —
the authorization-code page with PKCE, the one-time code, on-behalf-of exchanges — leaves no authorization code,
PKCE verifier, access/refresh/id token, SSO token or one-time code in any log record."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import PARTS
from bot.cli import configure_logging
from bot.identity.accounts import user_key
from bot.identity.cipher import TokenCipher
from bot.settings import Settings
from sandbox.directory import TENANT_ID, User
from tests.bot import browser
from tests.bot.activities import card_action, invoke
from tests.bot.conftest import World, WorldFactory, card_text, invoke_card

Configure = Callable[[dict[str, str]], list[logging.LogRecord]]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.NOTSET)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def main_logging() -> Iterator[Configure]:
    """Set logging up exactly as main() does for an environment (pytest's own handlers set aside meanwhile, as
    main() finds none), capture every record that gets through, and put everything back afterwards."""
    root = logging.getLogger()
    saved_level = root.level
    saved_levels = {
        name: logger.level
        for name, logger in logging.root.manager.loggerDict.items()
        if isinstance(logger, logging.Logger)
    }
    capture = _Capture()
    installed: list[logging.Handler] = []

    def configure(env: dict[str, str]) -> list[logging.LogRecord]:
        pytest_handlers = root.handlers[:]
        for handler in pytest_handlers:
            root.removeHandler(handler)
        configure_logging(Settings.from_env(env))
        installed.extend(root.handlers)
        for handler in (capture, *pytest_handlers):
            root.addHandler(handler)
        return capture.records

    try:
        yield configure
    finally:
        for handler in (*installed, capture):
            root.removeHandler(handler)
            handler.close()
        root.setLevel(saved_level)
        for name, logger in logging.root.manager.loggerDict.items():
            if isinstance(logger, logging.Logger):
                logger.setLevel(saved_levels.get(name, logging.NOTSET))


def _show(world: World, user: User, **extra: Any) -> dict[str, Any]:
    return card_action(user, "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def _sso_token(world: World, user: User) -> str:
    async with world.client.session.post(
        f"{world.sandbox.base_url}/_sandbox/sso-token", json={"userId": user.id}
    ) as response:
        return str((await response.json())["token"])


def _cache_secrets(key: bytes, blob: bytes, user: str) -> list[str]:
    cache = json.loads(TokenCipher(key).open(blob, user) or b"{}")
    return [
        str(entry["secret"])
        for section in ("AccessToken", "RefreshToken", "IdToken")
        for entry in cache.get(section, {}).values()
    ]


async def test_a_whole_sign_in_at_debug_level_logs_no_secret(
    make_world: WorldFactory, main_logging: Configure, tmp_path: Path
) -> None:
    records = main_logging({"LOG_LEVEL": "DEBUG"})
    world = await make_world(dev_sso=False)
    rosa, david = world.user("rosa"), world.user("david")
    secrets: dict[str, str] = {}

    # Authorization code + PKCE on Gradebot's own page, then the one-time code through Teams.
    status, body = await world.post(_show(world, rosa))
    assert status == 200 and body["statusCode"] == 401
    status, location, _ = await browser.start(world, body["value"]["buttons"][0]["value"])
    assert status == 302
    state = browser.state_of(location)
    with sqlite3.connect(world.database_url.removeprefix("sqlite:///")) as db:
        (sealed_flow,) = db.execute("SELECT flow FROM sign_in_flows WHERE state = ?", (state,)).fetchone()
    dev_key = (tmp_path / "gradebot.db.token-key").read_bytes()
    flow = json.loads(TokenCipher(dev_key).open(sealed_flow, f"signin:{state}") or b"{}")
    secrets["PKCE code_verifier"] = flow["code_verifier"]
    path, fields = await browser.authority_answer(world, location, "rosa.martinez")
    secrets["authorization code"] = fields["code"]
    page = await browser.callback(world, path, fields)
    assert page.code is not None, page.text
    secrets["one-time sign-in code"] = page.code
    _, body = await world.post(_show(world, rosa, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))

    # On-behalf-of: an SSO token on Action.Execute, and signin/tokenExchange.
    secrets["SSO token (Action.Execute)"] = sso = await _sso_token(world, david)
    _, body = await world.post(_show(world, david, authentication={"id": "x1", "token": sso}))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    secrets["SSO token (tokenExchange)"] = sso = await _sso_token(world, david)
    status, _ = await world.post(invoke(david, "signin/tokenExchange", {"id": "x2", "token": sso}, "http://x"))
    assert status == 200

    store = world.client.app[PARTS].store
    for user in (rosa, david):
        key = user_key(TENANT_ID, user.id)
        blob = await store.load_token_cache(key)
        assert blob is not None
        for n, secret in enumerate(_cache_secrets(dev_key, blob, key)):
            secrets[f"{user.user_principal_name} cache secret {n}"] = secret
    assert len(secrets) >= 5 + 6, "access, refresh and id tokens of both teachers"

    assert any(r.levelno == logging.DEBUG and r.name.startswith("graph") for r in records), "DEBUG is on for us"
    formatter = logging.Formatter("%(name)s %(message)s")
    logged = [(r.name, formatter.format(r) + repr(r.__dict__)) for r in records]
    for what, secret in secrets.items():
        pattern = re.compile(rf"(?<![0-9A-Za-z]){re.escape(secret)}(?![0-9A-Za-z])")
        leaks = sorted({name for name, text in logged if pattern.search(text)})
        assert not leaks, f"the {what} was logged by {', '.join(leaks)}"


def test_library_loggers_stay_at_info_unless_asked(main_logging: Configure) -> None:
    main_logging({"LOG_LEVEL": "DEBUG"})
    assert logging.getLogger("bot.auth").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("graph.connection").isEnabledFor(logging.DEBUG)
    for library in ("msal.token_cache", "urllib3.connectionpool", "requests", "httpcore", "botbuilder", "aiohttp"):
        assert not logging.getLogger(library).isEnabledFor(logging.DEBUG), library
        assert logging.getLogger(library).isEnabledFor(logging.INFO), library
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO), "httpx repeats full URLs"
    exports = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    assert not exports.isEnabledFor(logging.INFO), "Azure Monitor's exporter would log every export's headers"


def test_library_loggers_follow_log_level_libraries_when_set(main_logging: Configure) -> None:
    main_logging({"LOG_LEVEL": "WARNING", "LOG_LEVEL_LIBRARIES": "DEBUG"})
    assert logging.getLogger("msal.token_cache").isEnabledFor(logging.DEBUG)
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("bot.auth").isEnabledFor(logging.INFO)
