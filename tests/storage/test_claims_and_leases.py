"""Contract: once-only claims and leases, alone and raced by several Store objects (each one a "process")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta

import pytest

from storage import Store
from tests.storage.conftest import Database, stored_time
from tests.storage.samples import at

MINUTE = timedelta(minutes=1)


def lease_holder(database: Database, name: str, now: datetime) -> str | None:
    """Who holds the lease at `now` (None when free or expired), read with plain SQL beside the stores."""
    rows = database.execute(f"SELECT holder, expires_at FROM leases WHERE name = '{name}'")
    return next((holder for holder, until in rows if stored_time(until) > now), None)


@asynccontextmanager
async def several_stores(database: Database, count: int) -> AsyncIterator[list[Store]]:
    async with AsyncExitStack() as stack:
        stores = await asyncio.gather(*(database.open(max_connections=2) for _ in range(count)))
        for opened in stores:
            stack.push_async_callback(opened.close)
        yield list(stores)


async def test_claim_once_is_true_once_until_the_claim_expires(store: Store) -> None:
    assert await store.claim_once("invoke", "activity-1", at(0), MINUTE) is True
    assert await store.claim_once("invoke", "activity-1", at(0), MINUTE) is False
    assert await store.claim_once("invoke", "activity-1", at(0, seconds=59), MINUTE) is False
    assert await store.claim_once("tokenExchange", "activity-1", at(0), MINUTE) is True, "namespaces are separate"
    assert await store.claim_once("invoke", "activity-2", at(0), MINUTE) is True

    assert await store.claim_once("invoke", "activity-1", at(1), MINUTE) is True, "an expired claim can be retaken"
    assert await store.claim_once("invoke", "activity-1", at(1, seconds=30), MINUTE) is False


async def test_purge_claims_deletes_only_expired_ones(store: Store) -> None:
    await store.claim_once("invoke", "short", at(0), MINUTE)
    await store.claim_once("invoke", "long", at(0), 10 * MINUTE)

    assert await store.purge_claims(at(0, seconds=30)) == 0
    assert await store.purge_claims(at(2)) == 1
    assert await store.claim_once("invoke", "long", at(2), MINUTE) is False
    assert await store.claim_once("invoke", "short", at(2), MINUTE) is True


async def test_claim_once_holds_across_two_stores_on_one_database(database: Database) -> None:
    async with several_stores(database, 2) as (first, second):
        assert await first.claim_once("signin/tokenExchange", "exchange-1", at(0), MINUTE) is True
        assert await second.claim_once("signin/tokenExchange", "exchange-1", at(0), MINUTE) is False
        assert await second.claim_once("signin/tokenExchange", "exchange-1", at(2), MINUTE) is True
        assert await first.claim_once("signin/tokenExchange", "exchange-1", at(2), MINUTE) is False


async def test_claim_once_race_has_exactly_one_winner(database: Database) -> None:
    async with several_stores(database, 6) as stores:
        results = await asyncio.gather(
            *(contender.claim_once("invoke", "replayed", at(0), MINUTE) for contender in stores for _ in range(3))
        )
    assert results.count(True) == 1


async def test_lease_is_exclusive_renewable_and_taken_over_after_expiry(store: Store, database: Database) -> None:
    assert lease_holder(database, "reminders", at(0)) is None
    assert await store.acquire_lease("reminders", "instance-a", at(0), MINUTE) is True
    assert await store.acquire_lease("reminders", "instance-b", at(0, seconds=30), MINUTE) is False
    assert lease_holder(database, "reminders", at(0, seconds=30)) == "instance-a"

    assert await store.acquire_lease("reminders", "instance-a", at(0, seconds=50), MINUTE) is True, "renewal"
    assert await store.acquire_lease("reminders", "instance-b", at(1, seconds=30), MINUTE) is False, "renewed"
    assert lease_holder(database, "reminders", at(1, seconds=49)) == "instance-a"
    assert lease_holder(database, "reminders", at(1, seconds=50)) is None, "expired"

    assert await store.acquire_lease("reminders", "instance-b", at(2), MINUTE) is True
    assert lease_holder(database, "reminders", at(2)) == "instance-b"
    assert await store.acquire_lease("other-job", "instance-a", at(2), MINUTE) is True, "leases are per name"


async def test_release_lease_only_by_its_holder(store: Store, database: Database) -> None:
    await store.acquire_lease("reminders", "instance-a", at(0), MINUTE)

    assert await store.release_lease("reminders", "instance-b") is False
    assert lease_holder(database, "reminders", at(0)) == "instance-a"
    assert await store.release_lease("reminders", "instance-a") is True
    assert await store.release_lease("reminders", "instance-a") is False
    assert lease_holder(database, "reminders", at(0)) is None
    assert await store.acquire_lease("reminders", "instance-b", at(0), MINUTE) is True


async def test_acquire_lease_race_has_exactly_one_winner(database: Database) -> None:
    async with several_stores(database, 8) as stores:
        holders = [f"instance-{number}-task-{task}" for number in range(len(stores)) for task in range(3)]
        results = await asyncio.gather(
            *(
                stores[index // 3].acquire_lease("reminders", holder, at(0), MINUTE)
                for index, holder in enumerate(holders)
            )
        )
        winners = [holder for holder, won in zip(holders, results, strict=True) if won]

        assert len(winners) == 1
        assert lease_holder(database, "reminders", at(0)) == winners[0]
        losers = [(stores[index // 3], holder) for index, holder in enumerate(holders) if holder != winners[0]]
        retries = await asyncio.gather(
            *(each.acquire_lease("reminders", holder, at(0), MINUTE) for each, holder in losers)
        )
        assert not any(retries), "every store sees the lease held"


async def test_expired_lease_race_has_exactly_one_new_holder(database: Database) -> None:
    async with several_stores(database, 6) as stores:
        assert await stores[0].acquire_lease("reminders", "crashed", at(0), MINUTE) is True
        results = await asyncio.gather(
            *(
                contender.acquire_lease("reminders", f"instance-{n}", at(5), MINUTE)
                for n, contender in enumerate(stores)
            )
        )
        assert results.count(True) == 1
        assert lease_holder(database, "reminders", at(5)) == f"instance-{results.index(True)}"


async def test_lease_and_claim_reject_naive_times_and_empty_ttls(store: Store, database: Database) -> None:
    with pytest.raises(ValueError, match="aware"):
        await store.acquire_lease("reminders", "a", at(0).replace(tzinfo=None), MINUTE)
    with pytest.raises(ValueError, match="positive"):
        await store.acquire_lease("reminders", "a", at(0), timedelta(0))
    with pytest.raises(ValueError, match="positive"):
        await store.claim_once("invoke", "x", at(0), -MINUTE)
    assert lease_holder(database, "reminders", at(0)) is None
