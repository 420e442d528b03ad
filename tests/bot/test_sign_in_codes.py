"""The one-time code the sign-in page hands back through Teams, and repeated `signin/tokenExchange` invokes: a
guess never signs anyone in, a code is void after a few wrong guesses, and a repeat answers what really happened."""

from __future__ import annotations

from typing import Any

from sandbox.directory import User
from tests.bot import browser
from tests.bot.activities import card_action, invoke
from tests.bot.conftest import World, WorldFactory, card_text, invoke_card

OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _show(world: World, user: User, **extra: Any) -> dict[str, Any]:
    return card_action(user, "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def _code_for(world: World, user: User, upn_prefix: str) -> str:
    """Sign `user` in on the page; returns the code the page shows (not yet entered in Teams)."""
    status, body = await world.post(_show(world, user))
    assert status == 200 and body["statusCode"] == 401, body
    page = await browser.sign_in(world, body["value"]["buttons"][0]["value"], upn_prefix)
    assert page.code is not None, page.text
    return page.code


def _wrong(code: str, n: int = 1) -> str:
    return f"{(int(code) + n) % 10**6:06d}"


async def test_a_wrong_code_never_succeeds_however_often_it_is_repeated(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    for _ in range(3):
        status, body = await world.post(_show(world, rosa, state="123456"))
        assert status == 200 and "didn't match" in str(body), body
    url = world.sandbox.connector_url
    for _ in range(3):
        status, _ = await world.post(invoke(rosa, "signin/verifyState", {"state": "654321"}, url))
        assert status == 404


async def test_the_right_code_works_once_and_only_for_its_user(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa, david = world.user("rosa"), world.user("david")
    code = await _code_for(world, rosa, "rosa.martinez")
    status, body = await world.post(_show(world, david, state=code))
    assert "didn't match" in str(body)
    status, body = await world.post(_show(world, rosa, state=code))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    status, body = await world.post(_show(world, rosa, state=code))
    assert status == 200 and "didn't match" in str(body)


async def test_after_five_wrong_guesses_the_code_is_void(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    code = await _code_for(world, rosa, "rosa.martinez")
    for n in range(1, 6):
        status, body = await world.post(_show(world, rosa, state=_wrong(code, n)))
        assert "didn't match" in str(body)
    status, _ = await world.post(invoke(rosa, "signin/verifyState", {"state": code}, world.sandbox.connector_url))
    assert status == 404


async def test_a_repeated_token_exchange_answers_what_happened_to_it(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    url = world.sandbox.connector_url
    bad = {"id": "exchange-9", "connectionName": "gradebot", "token": "not.a.jwt"}
    for _ in range(2):  # the same failed exchange, from two Teams clients
        status, body = await world.post(invoke(rosa, "signin/tokenExchange", bad, url))
        assert status == 412 and body["id"] == "exchange-9"
    assert world.sandbox.identity.stats.issued.get(OBO, 0) == 0
    # A repeat of that id carrying a good token is exchanged, not waved through.
    async with world.client.session.post(
        f"{world.sandbox.base_url}/_sandbox/sso-token", json={"userId": rosa.id}
    ) as response:
        token = str((await response.json())["token"])
    good = {**bad, "token": token}
    status, _ = await world.post(invoke(rosa, "signin/tokenExchange", good, url))
    assert status == 200
    assert world.sandbox.identity.stats.issued.get(OBO, 0) == 1
    status, _ = await world.post(invoke(rosa, "signin/tokenExchange", good, url))
    assert status == 200
    assert world.sandbox.identity.stats.issued.get(OBO, 0) == 1, "a success is remembered"
