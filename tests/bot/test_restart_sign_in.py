"""A restart keeps teachers signed in or lets them sign in again: the sandbox restarted with new keys (scripts/bot
stopped and started; the SQLite file and token key stay) and, in production, a refresh token Entra revoked."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from app import PARTS, create_app
from bot.identity.accounts import user_key
from bot.settings import Settings
from sandbox.app import Sandbox
from sandbox.directory import TENANT_ID
from sandbox.seed import default_school
from tests.bot import browser
from tests.bot.activities import card_action, message
from tests.bot.conftest import Clock, World, WorldFactory, card_text, cards_of, invoke_card, replies
from tests.bot.privacy import PrivacyScan

OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"


class Runs:
    """Sandboxes and Gradebots started one after the other on one database, as `scripts/bot` run twice does."""

    def __init__(self, aiohttp_client: Any, database: Path, privacy: PrivacyScan) -> None:
        self._client = aiohttp_client
        self._database = database
        self._privacy = privacy
        self.running: list[tuple[Sandbox, TestClient[Any, Any]]] = []

    async def start(self, *, dev_sso: bool) -> World:
        """A fresh sandbox (new signing key, new ports, no refresh tokens) and a Gradebot on the same SQLite file;
        no TOKEN_ENCRYPTION_KEY, so the development key beside the file is reused."""
        await self.stop()
        sandbox = Sandbox(default_school(), signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048))
        await sandbox.start()
        self._privacy.watch(sandbox)
        settings = Settings.from_env(
            {}, sandbox_url=sandbox.base_url, database_url=f"sqlite:///{self._database}", reminders_enabled=False
        )
        clock = Clock()
        client = await self._client(create_app(settings, clock=clock, dev_sso=dev_sso))
        self.running.append((sandbox, client))
        return World(sandbox, client, clock, settings.database_url, posted=self._privacy.posted)

    async def stop(self) -> None:
        while self.running:
            sandbox, client = self.running.pop()
            await client.close()
            await sandbox.stop()


@pytest.fixture
async def runs(aiohttp_client: Any, tmp_path: Path, privacy_scan: PrivacyScan) -> AsyncIterator[Runs]:
    started = Runs(aiohttp_client, tmp_path / "gradebot.db", privacy_scan)
    yield started
    await started.stop()


def _ungraded(world: World, **extra: Any) -> dict[str, Any]:
    return card_action(world.user("rosa"), "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def test_sandbox_mode_after_a_restart_with_new_keys_the_teacher_still_grades_without_signing_in(
    runs: Runs,
) -> None:
    first = await runs.start(dev_sso=True)
    _, body = await first.post(message(first.user("rosa"), "ungraded", first.sandbox.connector_url))
    assert "Waiting to be graded" in card_text(cards_of(replies(body))[0])

    again = await runs.start(dev_sso=True)  # scripts/bot stopped and started: the sandbox has new keys
    _, body = await again.post(message(again.user("rosa"), "ungraded", again.sandbox.connector_url))
    assert "Waiting to be graded" in card_text(cards_of(replies(body))[0])
    _, body = await again.post(_ungraded(again))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    assert again.sandbox.identity.stats.issued.get(OBO, 0) == 1, "the development SSO path signed Rosa in again"


async def test_a_refresh_token_entra_no_longer_honours_leads_to_a_sign_in_that_works_and_a_log_line(
    runs: Runs, caplog: pytest.LogCaptureFixture
) -> None:
    first = await runs.start(dev_sso=False)
    _, body = await first.post(_ungraded(first))
    page = await browser.sign_in(first, body["value"]["buttons"][0]["value"], "rosa")
    _, body = await first.post(_ungraded(first, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))

    # Production's equivalent: the stored refresh token is refused (invalid_grant) by the authority.
    again = await runs.start(dev_sso=False)
    rosa = again.user("rosa")
    with caplog.at_level(logging.INFO):
        status, body = await again.post(_ungraded(again))
    assert status == 200 and body["statusCode"] == 401, "no usable token: a loginRequest"
    reasons = [r.getMessage() for r in caplog.records if "refused the stored sign-in" in r.getMessage()]
    assert reasons and rosa.id in reasons[0] and "invalid_grant" in reasons[0]
    store = again.client.app[PARTS].store
    assert await store.load_token_cache(user_key(TENANT_ID, rosa.id)) is None, "the stale sign-in is dropped"

    page = await browser.sign_in(again, body["value"]["buttons"][0]["value"], "rosa")
    assert page.code is not None
    _, body = await again.post(_ungraded(again, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    _, body = await again.post(_ungraded(again))  # and the next turn, silently from the fresh sign-in
    assert "Waiting to be graded" in card_text(invoke_card(body))


async def test_a_revoked_refresh_token_is_dropped_and_the_next_sign_in_works(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    # Access tokens that live 60 s: msal refreshes any token within 5 minutes of expiry, so every turn refreshes.
    world = await make_world(dev_sso=False, sandbox_options={"access_token_lifetime_s": 60})
    rosa = world.user("rosa")
    _, body = await world.post(_ungraded(world))
    page = await browser.sign_in(world, body["value"]["buttons"][0]["value"], "rosa")
    _, body = await world.post(_ungraded(world, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))

    assert world.sandbox.identity.revoke_refresh_tokens(rosa.id) >= 1  # an admin revoked Rosa's sessions
    with caplog.at_level(logging.INFO):  # (the ungraded list is cached briefly: `classes` asks Graph)
        _, body = await world.post(message(rosa, "classes", world.sandbox.connector_url))
    assert "Sign in" in card_text(cards_of(replies(body))[0])
    (reason,) = [r.getMessage() for r in caplog.records if "refused the stored sign-in" in r.getMessage()]
    assert rosa.id in reason and "bad_token" in reason and "50173" in reason
    assert await world.client.app[PARTS].store.load_token_cache(user_key(TENANT_ID, rosa.id)) is None

    signing_in = card_action(rosa, "signIn", {}, world.sandbox.connector_url)  # the card's Sign in button
    _, body = await world.post(signing_in)
    assert body["statusCode"] == 401, "a loginRequest with a fresh sign-in link"
    page = await browser.sign_in(world, body["value"]["buttons"][0]["value"], "rosa")
    _, body = await world.post(_ungraded(world, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    _, body = await world.post(message(rosa, "classes", world.sandbox.connector_url))
    assert "Chemistry 201" in card_text(cards_of(replies(body))[0])
