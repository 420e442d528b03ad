"""Teacher identity end to end with the real msal against the sandbox identity endpoint, the development stand-in
for Teams SSO switched off: SSO tokens on Action.Execute, signin/tokenExchange (deduplicated), loginRequest, 412,
the encrypted token cache reused later, Gradebot's own sign-in page, and sign-out."""

from __future__ import annotations

from typing import Any

import aiohttp

from app import PARTS
from bot.auth import user_key
from sandbox.directory import TENANT_ID, User
from tests.bot import browser
from tests.bot.activities import card_action, invoke, message
from tests.bot.conftest import World, WorldFactory, card_text, cards_of, invoke_card, replies


async def _sso(world: World, user: User, app_id: str | None = None) -> str:
    async with aiohttp.ClientSession() as http:
        body: dict[str, Any] = {"userId": user.id}
        if app_id:
            body["appId"] = app_id
        async with http.post(f"{world.sandbox.base_url}/_sandbox/sso-token", json=body) as response:
            assert response.status == 200
            return str((await response.json())["token"])


def _show_classes(world: World, user: User, **extra: Any) -> dict[str, Any]:
    return card_action(user, "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def test_no_token_answers_401_login_request_with_sso_resource_and_a_sign_in_link(
    make_world: WorldFactory,
) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    status, body = await world.post(_show_classes(world, rosa))
    assert status == 200
    assert body["statusCode"] == 401
    assert body["type"] == "application/vnd.microsoft.activity.loginRequest"
    resource = body["value"]["tokenExchangeResource"]
    assert resource["uri"] == f"api://botid-{world.sandbox.info()['botAppId']}"
    link = body["value"]["buttons"][0]["value"]
    assert link.startswith("http://127.0.0.1:") and "/auth/start?" in link
    # A message gets a sign-in card instead.
    status, body = await world.post(message(rosa, "ungraded", world.sandbox.connector_url))
    assert "Sign in" in card_text(cards_of(replies(body))[0])


async def test_an_sso_token_on_action_execute_is_exchanged_and_the_cache_serves_later_turns(
    make_world: WorldFactory,
) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    token = await _sso(world, rosa)
    authentication = {"id": "exchange-1", "connectionName": "gradebot", "token": token}
    status, body = await world.post(_show_classes(world, rosa, authentication=authentication))
    assert status == 200
    assert "Waiting to be graded" in card_text(invoke_card(body))
    obo_before = world.sandbox.identity.stats.issued.get("urn:ietf:params:oauth:grant-type:jwt-bearer", 0)
    assert obo_before == 1
    # Later: no SSO token (as in a channel) — msal's cache (stored encrypted) is used silently.
    status, body = await world.post(_show_classes(world, rosa))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    assert world.sandbox.identity.stats.issued.get("urn:ietf:params:oauth:grant-type:jwt-bearer", 0) == 1
    blob = await world.client.app[PARTS].store.load_token_cache(user_key(TENANT_ID, rosa.id))
    assert blob is not None and b"access_token" not in blob.lower() and b"refresh" not in blob.lower()


async def test_an_sso_token_that_fails_validation_answers_412(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    foreign = await _sso(world, rosa, app_id="11111111-2222-3333-4444-555555555555")
    authentication = {"id": "exchange-2", "connectionName": "gradebot", "token": foreign}
    status, body = await world.post(_show_classes(world, rosa, authentication=authentication))
    assert status == 200
    assert body["statusCode"] == 412
    assert body["type"] == "application/vnd.microsoft.error.preconditionFailed"
    someone_else = await _sso(world, world.user("david"))
    authentication = {"id": "exchange-3", "connectionName": "gradebot", "token": someone_else}
    status, body = await world.post(_show_classes(world, rosa, authentication=authentication))
    assert body["statusCode"] == 412


async def test_duplicate_token_exchange_invokes_are_exchanged_once(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    token = await _sso(world, rosa)
    value = {"id": "same-exchange", "connectionName": "gradebot", "token": token}
    url = world.sandbox.connector_url
    for _ in range(3):  # one per open Teams client
        status, body = await world.post(invoke(rosa, "signin/tokenExchange", value, url))
        assert status == 200
    assert world.sandbox.identity.stats.issued.get("urn:ietf:params:oauth:grant-type:jwt-bearer", 0) == 1
    bad = {"id": "bad-exchange", "connectionName": "gradebot", "token": "not.a.jwt"}
    status, body = await world.post(invoke(rosa, "signin/tokenExchange", bad, url))
    assert status == 412
    assert body["id"] == "bad-exchange" and "failureDetail" in body


async def test_sign_in_page_then_verify_state_then_sign_out(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    status, body = await world.post(_show_classes(world, rosa))
    page = await browser.sign_in(world, body["value"]["buttons"][0]["value"], "rosa.martinez")
    assert page.status == 200
    assert page.code is not None
    status, body = await world.post(_show_classes(world, rosa, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    # The code works once.
    status, body = await world.post(_show_classes(world, rosa, state=page.code))
    assert "didn't match" in str(body)
    # Sign out deletes the stored sign-in; the next action needs sign-in again.
    status, body = await world.post(message(rosa, "signout", world.sandbox.connector_url))
    assert "signed out" in card_text(cards_of(replies(body))[0])
    status, body = await world.post(_show_classes(world, rosa))
    assert status == 200
    assert body["statusCode"] == 401
