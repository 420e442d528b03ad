"""Contract: pending sign-in flows and one-time sign-in codes expire and are used once; token caches carry the id of
the key that sealed them; `claimed` reads a claim without taking it."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from storage import Store
from storage.migrations import MIGRATIONS
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.storage.conftest import Database
from tests.storage.samples import at

MINUTE = timedelta(minutes=1)
FLOW = b"\x02sealed flow \x00\xff"


async def test_a_flow_is_taken_once_before_it_expires(store: Store) -> None:
    await store.save_sign_in_flow("state-1", "tenant:teacher-1", FLOW, at(0), 15 * MINUTE)
    await store.save_sign_in_flow("state-2", "tenant:teacher-1", FLOW + b"2", at(0), 15 * MINUTE)
    assert await store.take_sign_in_flow("state-1", at(14)) == ("tenant:teacher-1", FLOW)
    assert await store.take_sign_in_flow("state-1", at(14)) is None, "taken once"
    assert await store.take_sign_in_flow("state-2", at(15)) is None, "expired at now + ttl"
    assert await store.take_sign_in_flow("unknown", at(0)) is None


async def test_a_flow_raced_by_two_stores_is_taken_by_one(database: Database) -> None:
    first, second = await database.open(), await database.open()
    try:
        await first.save_sign_in_flow("state-1", "tenant:teacher-1", FLOW, at(0), MINUTE)
        results = await asyncio.gather(*(s.take_sign_in_flow("state-1", at(0)) for s in (first, second) * 3))
    finally:
        await first.close()
        await second.close()
    assert results.count(("tenant:teacher-1", FLOW)) == 1 and results.count(None) == 5


async def test_purge_sign_in_flows_deletes_only_expired_ones(store: Store) -> None:
    await store.save_sign_in_flow("short", "tenant:teacher-1", FLOW, at(0), MINUTE)
    await store.save_sign_in_flow("long", "tenant:teacher-1", FLOW, at(0), 10 * MINUTE)
    assert await store.purge_sign_in_flows(at(0, seconds=30)) == 0
    assert await store.purge_sign_in_flows(at(2)) == 1
    assert await store.take_sign_in_flow("long", at(2)) == ("tenant:teacher-1", FLOW)


async def test_a_code_is_redeemed_once_by_its_user_before_it_expires(store: Store) -> None:
    await store.issue_sign_in_code("tenant:teacher-1", "digest-a", at(0), 15 * MINUTE)
    assert await store.redeem_sign_in_code("tenant:teacher-2", "digest-a", at(1), 5) is False, "another user's"
    assert await store.redeem_sign_in_code("tenant:teacher-1", "digest-a", at(1), 5) is True
    assert await store.redeem_sign_in_code("tenant:teacher-1", "digest-a", at(1), 5) is False, "used"
    await store.issue_sign_in_code("tenant:teacher-1", "digest-b", at(2), 15 * MINUTE)
    assert await store.redeem_sign_in_code("tenant:teacher-1", "digest-b", at(17), 5) is False, "expired"


async def test_a_guessed_code_never_becomes_valid_and_wrong_guesses_void_it(store: Store) -> None:
    assert await store.redeem_sign_in_code("tenant:teacher-1", "guess", at(0), 5) is False
    assert await store.redeem_sign_in_code("tenant:teacher-1", "guess", at(0), 5) is False, "no claim was created"
    await store.issue_sign_in_code("tenant:teacher-1", "right", at(0), 15 * MINUTE)
    for _ in range(4):
        assert await store.redeem_sign_in_code("tenant:teacher-1", "wrong", at(1), 5) is False
    assert await store.redeem_sign_in_code("tenant:teacher-1", "right", at(1), 5) is True, "4 wrong guesses allowed"
    await store.issue_sign_in_code("tenant:teacher-1", "right-2", at(2), 15 * MINUTE)
    for _ in range(5):
        assert await store.redeem_sign_in_code("tenant:teacher-1", "wrong", at(3), 5) is False
    assert await store.redeem_sign_in_code("tenant:teacher-1", "right-2", at(3), 5) is False, "void after 5"
    await store.issue_sign_in_code("tenant:teacher-1", "right-3", at(4), 15 * MINUTE)
    assert await store.redeem_sign_in_code("tenant:teacher-1", "right-2", at(4), 5) is False, "replaced"
    assert await store.redeem_sign_in_code("tenant:teacher-1", "right-3", at(4), 5) is True, "a new code starts over"


async def test_concurrent_redeems_of_one_code_have_one_winner(database: Database) -> None:
    stores = [await database.open() for _ in range(3)]
    try:
        await stores[0].issue_sign_in_code("tenant:teacher-1", "digest", at(0), MINUTE)
        results = await asyncio.gather(
            *(s.redeem_sign_in_code("tenant:teacher-1", "digest", at(0), 5) for s in stores * 2)
        )
    finally:
        for opened in stores:
            await opened.close()
    assert results.count(True) == 1


async def test_purge_sign_in_codes_deletes_only_expired_ones(store: Store) -> None:
    await store.issue_sign_in_code("tenant:teacher-1", "a", at(0), MINUTE)
    await store.issue_sign_in_code("tenant:teacher-2", "b", at(0), 10 * MINUTE)
    assert await store.purge_sign_in_codes(at(0)) == 0
    assert await store.purge_sign_in_codes(at(1)) == 1
    assert await store.redeem_sign_in_code("tenant:teacher-2", "b", at(2), 5) is True


async def test_claimed_reads_without_claiming(store: Store) -> None:
    assert await store.claimed("tokenExchange", "teacher-1:x", at(0)) is False
    assert await store.claimed("tokenExchange", "teacher-1:x", at(0)) is False, "reading created nothing"
    assert await store.claim_once("tokenExchange", "teacher-1:x", at(0), MINUTE) is True
    assert await store.claimed("tokenExchange", "teacher-1:x", at(0, seconds=59)) is True
    assert await store.claimed("tokenExchange", "teacher-1:x", at(1)) is False, "expired"
    assert await store.claimed("other", "teacher-1:x", at(0)) is False


async def test_token_caches_are_counted_and_listed_by_the_key_that_sealed_them(store: Store) -> None:
    assert await store.token_cache_key_ids() == {}
    await store.save_token_cache("tenant:a", b"legacy", at(0))
    await store.save_token_cache("tenant:b", b"one", at(1), key_id="k1")
    await store.save_token_cache("tenant:c", b"one-c", at(2), key_id="k1")
    await store.save_token_cache("tenant:d", b"two", at(3), key_id="k2")
    assert await store.token_cache_key_ids() == {"": 1, "k1": 2, "k2": 1}
    assert await store.token_caches_sealed_with("k1", 10) == [("tenant:c", b"one-c"), ("tenant:b", b"one")]
    assert await store.token_caches_sealed_with("k1", 1) == [("tenant:c", b"one-c")]
    assert await store.token_caches_sealed_with("", 10) == [("tenant:a", b"legacy")]
    await store.save_token_cache("tenant:b", b"resealed", at(4), key_id="k2")
    assert await store.token_cache_key_ids() == {"": 1, "k1": 1, "k2": 2}
    assert await store.load_token_cache("tenant:b") == b"resealed"


async def test_upgrading_drops_the_sign_in_flows_v1_kept_forever_and_keeps_everything_else(
    fresh_database: Database,
) -> None:
    if fresh_database.backend == "sqlite":
        v1 = await SqliteStore.open(fresh_database.url.removeprefix("sqlite:///"), migrations=MIGRATIONS[:1])
    else:
        v1 = await PostgresStore.open(fresh_database.url, schema=fresh_database.schema, migrations=MIGRATIONS[:1])
    async with v1:
        await v1.set_value("signin:abc", '{"flow": {}}', at(0))
        await v1.set_value("reminders:cursor", "kept", at(0))
    blob = "X'7365616c6564'" if fresh_database.backend == "sqlite" else "'\\x7365616c6564'::bytea"
    fresh_database.execute(
        f"INSERT INTO token_caches (user_key, blob, updated_at) VALUES ('tenant:teacher-1', {blob}, '2025-03-03')"
    )
    async with await fresh_database.open() as upgraded:
        assert await upgraded.get_value("signin:abc") is None
        assert await upgraded.get_value("reminders:cursor") == "kept"
        assert await upgraded.token_cache_key_ids() == {"": 1}
        assert await upgraded.load_token_cache("tenant:teacher-1") == b"sealed"
