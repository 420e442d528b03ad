"""TOKEN_ENCRYPTION_KEY and its rotation: a key that opens none of the stored sign-ins refuses to start instead of
losing them (K1 → K2 → K1), old keys open and are re-sealed with the current one, sign-ins sealed with a key that is
not configured are kept, and blobs from before key ids still open."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app import PARTS, create_app
from bot.identity.accounts import TeacherIdentity, user_key
from bot.identity.cipher import TokenCipher, TokenKeyError, key_id
from bot.identity.sso import IdentityConfig
from bot.settings import Settings
from sandbox.directory import TENANT_ID, User
from storage import open_store
from tests.bot.activities import card_action
from tests.bot.conftest import World, WorldFactory, card_text, invoke_card

K1, K2, K3 = (bytes([n]) * 32 for n in (1, 2, 3))
OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REPO = Path(__file__).resolve().parents[2]


def _show(world: World, user: User, **extra: Any) -> dict[str, Any]:
    return card_action(user, "showUngraded", {"page": 0}, world.sandbox.connector_url, **extra)


async def _sso(world: World, user: User) -> dict[str, str]:
    async with world.client.session.post(
        f"{world.sandbox.base_url}/_sandbox/sso-token", json={"userId": user.id}
    ) as response:
        return {"id": f"exchange-{user.id}", "connectionName": "gradebot", "token": (await response.json())["token"]}


async def _restart(aiohttp_client: Any, world: World, key: bytes, old: tuple[bytes, ...] = ()) -> World:
    """Another Gradebot on the same database and sandbox, with other keys (as after a redeploy)."""
    settings = Settings.from_env(
        {},
        sandbox_url=world.sandbox.base_url,
        database_url=world.database_url,
        reminders_enabled=False,
        token_encryption_key=key,
        token_encryption_old_keys=old,
    )
    client = await aiohttp_client(create_app(settings, clock=world.clock, dev_sso=False))
    return World(world.sandbox, client, world.clock, world.database_url)


async def _blob(world: World, user: User) -> bytes | None:
    return await world.client.app[PARTS].store.load_token_cache(user_key(TENANT_ID, user.id))


async def test_a_key_that_opens_no_stored_sign_in_refuses_to_start_and_loses_nothing(
    make_world: WorldFactory, aiohttp_client: Any
) -> None:
    first = await make_world(dev_sso=False, token_encryption_key=K1)
    rosa = first.user("rosa")
    _, body = await first.post(_show(first, rosa, authentication=await _sso(first, rosa)))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    sealed_with_k1 = await _blob(first, rosa)

    with pytest.raises(TokenKeyError) as refused:
        await _restart(aiohttp_client, first, K2)
    message = str(refused.value)
    assert "TOKEN_ENCRYPTION_KEY" in message and "TOKEN_ENCRYPTION_OLD_KEYS" in message
    assert f"key id {key_id(K2)}" in message and f"sealed with key ids {key_id(K1)}" in message
    assert await _blob(first, rosa) == sealed_with_k1

    # Rotating K1 → K2 with K1 kept as an old key: Rosa's sign-in still works and is re-sealed with K2.
    rotated = await _restart(aiohttp_client, first, K2, old=(K1,))
    _, body = await rotated.post(_show(rotated, rosa))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    assert first.sandbox.identity.stats.issued.get(OBO, 0) == 1, "no new sign-in was needed"
    resealed = await _blob(rotated, rosa)
    assert resealed != sealed_with_k1 and TokenCipher(K2).open(resealed or b"", user_key(TENANT_ID, rosa.id))
    assert await rotated.client.app[PARTS].store.token_cache_key_ids() == {key_id(K2): 1}

    # Back to K1 alone (the rotation undone by mistake): refused again, rather than lose what K2 sealed.
    with pytest.raises(TokenKeyError):
        await _restart(aiohttp_client, first, K1)
    back = await _restart(aiohttp_client, first, K1, old=(K2,))
    _, body = await back.post(_show(back, rosa))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    assert first.sandbox.identity.stats.issued.get(OBO, 0) == 1


async def test_a_sign_in_sealed_with_an_unconfigured_key_is_kept_until_its_user_signs_in_again(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    first = await make_world(dev_sso=False, token_encryption_key=K1)
    rosa, david = first.user("rosa"), first.user("david")
    _, body = await first.post(_show(first, rosa, authentication=await _sso(first, rosa)))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    david_key = user_key(TENANT_ID, david.id)
    foreign = TokenCipher(K3).seal(b'{"RefreshToken": {}}', david_key)
    store = first.client.app[PARTS].store
    await store.save_token_cache(david_key, foreign, first.clock(), key_id=key_id(K3))

    with caplog.at_level(logging.WARNING, logger="bot.auth"):
        await first.client.app[PARTS].accounts.check_stored_sign_ins()
    assert f"1 stored sign-ins were sealed with key ids {key_id(K3)}" in caplog.text

    # Automatic work (no SSO token: a channel, a reminder) asks David to sign in and leaves his blob alone.
    status, body = await first.post(_show(first, david))
    assert status == 200 and body["statusCode"] == 401
    assert await store.load_token_cache(david_key) == foreign
    # David presents a fresh credential: that replaces the blob nobody here can open.
    _, body = await first.post(_show(first, david, authentication=await _sso(first, david)))
    assert "Waiting to be graded" in card_text(invoke_card(body))
    assert await store.token_cache_key_ids() == {key_id(K1): 2}


def _now() -> datetime:
    return datetime.now(UTC)


def _legacy_seal(key: bytes, plaintext: bytes, user: str) -> bytes:
    """The blob format before key ids: 01 | nonce | ciphertext."""
    nonce = os.urandom(12)
    return b"\x01" + nonce + AESGCM(key).encrypt(nonce, plaintext, user.encode())


def test_the_cipher_opens_with_any_known_key_and_seals_with_the_current_one() -> None:
    rotated = TokenCipher(K2, [K1])
    old_blob = TokenCipher(K1).seal(b"cache", "t:u")
    assert rotated.unseal(old_blob, "t:u") == (b"cache", key_id(K1))
    assert rotated.unseal(rotated.seal(b"cache", "t:u"), "t:u") == (b"cache", key_id(K2))
    assert rotated.unseal(_legacy_seal(K1, b"legacy", "t:u"), "t:u") == (b"legacy", key_id(K1))
    assert TokenCipher(K2).open(old_blob, "t:u") is None
    assert rotated.open(old_blob, "t:other") is None, "bound to its user"
    assert rotated.open(TokenCipher(K3).seal(b"cache", "t:u"), "t:u") is None
    assert rotated.open(b"\x02short", "t:u") is None and rotated.open(b"", "t:u") is None
    assert key_id(K1) not in repr(K1) and len(key_id(K1)) == 16
    assert rotated.knows(key_id(K1)) and rotated.knows(key_id(K2)) and not rotated.knows(key_id(K3))
    assert not rotated.knows("not hex")


@pytest.mark.parametrize(("configured", "starts"), [((K1, ()), True), ((K2, ()), False), ((K2, (K1,)), True)])
async def test_stored_sign_ins_from_before_key_ids_are_checked_by_opening_them(
    tmp_path: Path, configured: tuple[bytes, tuple[bytes, ...]], starts: bool
) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        await store.save_token_cache("t:u", _legacy_seal(K1, b"{}", "t:u"), _now())  # key id not recorded
        key, old = configured
        config = IdentityConfig("app", "secret", "https://127.0.0.1:1", "t", ("scope",), "https://x/auth/callback")
        identity = TeacherIdentity(config, store, TokenCipher(key, old), _now)
        if starts:
            await identity.check_stored_sign_ins()
        else:
            with pytest.raises(TokenKeyError, match="None of the 1 stored sign-ins"):
                await identity.check_stored_sign_ins()


async def test_app_py_refuses_to_start_with_a_clear_message_after_its_warnings(make_world: WorldFactory) -> None:
    world = await make_world(dev_sso=False, token_encryption_key=K1)
    rosa = world.user("rosa")
    await world.post(_show(world, rosa, authentication=await _sso(world, rosa)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": os.environ.get("PATH", ""),  # noqa: TID251 - the test harness's own switches and child environments
        "SANDBOX_URL": world.sandbox.base_url,
        "DATABASE_URL": world.database_url,
        "TOKEN_ENCRYPTION_KEY": base64.urlsafe_b64encode(K2).decode(),
        "PORT": str(port),
        "REMINDERS": "off",
        "microsoftappid": "00000000-0000-0000-0000-0000000000aa",  # a misspelling: warned about, not read
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "app.py", cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    text = stderr.decode()
    assert "Gradebot cannot start: None of the 1 stored sign-ins opens with TOKEN_ENCRYPTION_KEY" in text
    assert "Traceback" not in text
    assert "microsoftappid is set but Gradebot reads MicrosoftAppId" in text
    assert "00000000-0000-0000-0000-0000000000aa" not in text
