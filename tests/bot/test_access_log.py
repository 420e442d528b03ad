"""The HTTP access log names paths, never query strings: a sign-in link carries a signed token in its query."""

from __future__ import annotations

from tests.bot import browser
from tests.bot.activities import card_action
from tests.bot.conftest import WorldFactory
from tests.bot.privacy import PrivacyScan


async def test_a_sign_in_link_is_logged_without_its_token(make_world: WorldFactory, privacy_scan: PrivacyScan) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    status, body = await world.post(card_action(rosa, "showUngraded", {"page": 0}, world.sandbox.connector_url))
    assert status == 200 and body["statusCode"] == 401
    link = body["value"]["buttons"][0]["value"]
    assert "link=" in link
    status, _, _ = await browser.start(world, link)
    assert status == 302

    requests = [line for name, line in privacy_scan.logs.lines if name == "aiohttp.access" and "/auth/start" in line]
    assert requests, "the request to /auth/start is in the access log"
    assert all('"GET /auth/start HTTP/' in line for line in requests), "a query string is in the access log"
