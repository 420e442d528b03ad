"""Gradebot's own sign-in page under abuse: links are signed for the Teams user who asked and expire; a sign-in
finished as someone else changes nothing; a broken answer from the authority is a clear page, never a 500; starts
are limited per client and per user, and a pending flow expires."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt

from app import PARTS
from bot.auth import SIGN_INS_PER_CLIENT, SIGN_INS_PER_USER, user_key
from sandbox.directory import TENANT_ID, User
from tests.bot import browser
from tests.bot.activities import card_action
from tests.bot.conftest import World, WorldFactory, card_text, invoke_card


def _show(world: World, user: User, **extra: Any) -> dict[str, Any]:
    return card_action(user, "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def _link(world: World, user: User) -> str:
    """The sign-in link Gradebot hands `user` in a loginRequest (the sign-in card's button asks for one)."""
    status, body = await world.post(card_action(user, "signIn", {}, world.sandbox.connector_url))
    assert status == 200 and body["statusCode"] == 401, body
    return str(body["value"]["buttons"][0]["value"])


def _b64(claims: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()


def _row_counts(world: World) -> dict[str, int]:
    path = world.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in tables}


async def _signed_in(world: World, user: User, upn_prefix: str) -> str:
    """Sign `user` in through the page and enter the code; returns the stored (encrypted) cache blob's key."""
    page = await browser.sign_in(world, await _link(world, user), upn_prefix)
    assert page.status == 200 and page.code is not None, page.text
    _, body = await world.post(_show(world, user, state=page.code))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    return user_key(TENANT_ID, user.id)


async def test_a_link_without_a_signature_is_refused_and_stores_nothing(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    before = _row_counts(world)
    forged = "/auth/start?" + urlencode({"tid": TENANT_ID, "oid": rosa.id})
    status, location, body = await browser.start(world, forged)
    assert status == 400 and location == ""
    assert "sign-in link" in body.lower() and "Teams" in body
    assert _row_counts(world) == before


async def test_an_altered_or_expired_link_is_refused_and_stores_nothing(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa, david = world.user("rosa"), world.user("david")
    link = await _link(world, rosa)
    before = _row_counts(world)
    signed = dict(parse_qsl(urlsplit(link).query))["link"]
    header, payload, signature = signed.split(".")
    claims = jwt.decode(signed, options={"verify_signature": False})
    assert (claims["tid"], claims["oid"]) == (TENANT_ID, rosa.id), "the link names the Teams user it was issued for"
    for forged in (
        ".".join([header, _b64({**claims, "oid": david.id}), signature]),  # another user, Rosa's signature
        ".".join([header, payload, signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")]),
        jwt.encode({**claims, "oid": david.id}, b"a key that is not Gradebot's".ljust(32), algorithm="HS256"),
        jwt.encode({**claims, "oid": david.id}, "", algorithm="none"),
    ):
        status, _, body = await browser.start(world, "/auth/start?" + urlencode({"link": forged}))
        assert status == 400 and "sign-in link" in body.lower(), forged
    world.clock.fixed = datetime.now(UTC) + timedelta(hours=2)
    status, _, body = await browser.start(world, link)
    assert status == 400 and "expired" in body.lower()
    assert _row_counts(world) == before
    world.clock.fixed = None
    status, location, _ = await browser.start(world, link)
    assert status == 302 and location.startswith(world.sandbox.authority_url.rsplit("/", 1)[0])


async def test_finishing_a_teachers_link_as_someone_else_deletes_and_overwrites_nothing(
    make_world: WorldFactory,
) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    key = await _signed_in(world, rosa, "rosa.martinez")
    store = world.client.app[PARTS].store
    kept = await store.load_token_cache(key)
    assert kept is not None
    # A student gets hold of a link issued to Rosa and finishes it signed in as themselves.
    page = await browser.sign_in(world, await _link(world, rosa), "aiden.castillo")
    assert page.status == 400 and page.code is None
    assert "different" in page.text
    assert await store.load_token_cache(key) == kept
    student = next(u for u in world.school.directory.users.values() if u.user_principal_name.startswith("aiden.c"))
    assert await store.load_token_cache(user_key(TENANT_ID, student.id)) is None
    # Rosa's stored sign-in still serves her.
    _, body = await world.post(_show(world, rosa))
    assert "Waiting to be graded" in card_text(invoke_card(body))


async def test_a_callback_with_no_code_or_a_bad_client_info_is_a_clear_page(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    for broken in ({}, {"code": "anything", "client_info": "!!not-base64!!"}, {"code": "x", "client_info": "bnVsbA"}):
        status, location, _ = await browser.start(world, await _link(world, rosa))
        assert status == 302
        page = await browser.callback(world, "/auth/callback", {"state": browser.state_of(location), **broken})
        assert page.status == 400, page.text
        assert "Start again from Teams" in page.text


async def test_a_pending_sign_in_expires(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    status, location, _ = await browser.start(world, await _link(world, rosa))
    assert status == 302
    path, fields = await browser.authority_answer(world, location, "rosa.martinez")
    world.clock.fixed = datetime.now(UTC) + timedelta(minutes=30)
    page = await browser.callback(world, path, fields)
    assert page.status == 400 and page.code is None
    assert "expired" in page.text
    assert await world.client.app[PARTS].store.load_token_cache(user_key(TENANT_ID, rosa.id)) is None


async def test_sign_in_starts_are_limited_per_user_and_per_client(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    link = await _link(world, rosa)
    answers = [(await browser.start(world, link))[0] for _ in range(30)]
    assert answers == [302] * SIGN_INS_PER_USER + [429] * (30 - SIGN_INS_PER_USER)
    status, _, body = await browser.start(world, link)
    assert status == 429 and "Too many sign-in attempts" in body
    assert _row_counts(world)["sign_in_flows"] == SIGN_INS_PER_USER
    # Everyone behind one client address shares that client's budget.
    students = sorted((u for u in world.school.directory.users.values() if u.role == "student"), key=lambda u: u.id)
    others = students[: SIGN_INS_PER_CLIENT // SIGN_INS_PER_USER - 1]
    for student in others:
        student_link = await _link(world, student)
        assert [(await browser.start(world, student_link))[0] for _ in range(SIGN_INS_PER_USER)] == [302] * 5
    assert _row_counts(world)["sign_in_flows"] == SIGN_INS_PER_CLIENT
    status, _, body = await browser.start(world, await _link(world, students[len(others)]))
    assert status == 429 and "Too many sign-in attempts" in body
