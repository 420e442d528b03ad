"""Housekeeping: expired claims, sign-in flows and codes and old finished grade writes are purged — once when
Gradebot starts, then on a schedule — and audit records are kept; /auth/start no longer grows the store forever."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app import PARTS
from bot.housekeeping import Housekeeping, HousekeepingReport
from storage import NewAuditRecord, NewOutboxEntry, Store, open_store
from tests.bot.conftest import WorldFactory

HOUR = timedelta(hours=1)
T0 = datetime.now(UTC) - 45 * 24 * HOUR
"""45 days ago: Gradebot's first pass at start runs at the real time."""


def _write(key: str, submission: str) -> NewOutboxEntry:
    return NewOutboxEntry(key, "grade", "teacher-1", "tenant", "class-1", "assignment-1", submission, {"points": 7})


async def _finished(store: Store, key: str, submission: str, at: datetime) -> int:
    entry, _ = await store.enqueue_outbox(_write(key, submission), at)
    assert await store.claim_outbox(entry.id, "worker", at, HOUR) is not None
    assert await store.complete_outbox(entry.id, "worker", {"ok": True}, at)
    return entry.id


async def _litter(store: Store) -> tuple[int, int]:
    """Expired and live rows of every kind housekeeping looks at; returns (old write id, recent write id)."""
    await store.claim_once("tokenExchange", "expired", T0, HOUR)
    await store.claim_once("tokenExchange", "live", T0, 100 * 24 * HOUR)
    await store.save_sign_in_flow("expired", "t:u", b"flow", T0, HOUR)
    await store.save_sign_in_flow("live", "t:u", b"flow", T0, 100 * 24 * HOUR)
    await store.issue_sign_in_code("t:expired", "digest", T0, HOUR)
    await store.issue_sign_in_code("t:live", "digest", T0, 100 * 24 * HOUR)
    old = await _finished(store, "old", "s-1", T0)
    recent = await _finished(store, "recent", "s-2", T0 + 40 * 24 * HOUR)
    await store.record_audit(
        NewAuditRecord(T0, "teacher-1", "tenant", "class-1", "assignment-1", "s-1", "grade", {}, {}, "old")
    )
    return old, recent


async def test_a_pass_deletes_what_expired_and_keeps_audit_records(tmp_path: Path) -> None:
    now = T0 + 45 * 24 * HOUR
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        old, recent = await _litter(store)
        housekeeping = Housekeeping(store, outbox_retention=timedelta(days=30), clock=lambda: now)
        assert await housekeeping.run_once(T0 + 2 * HOUR) == HousekeepingReport(1, 1, 1, 0)
        assert await housekeeping.run_once(now) == HousekeepingReport(0, 0, 0, 1)
        assert await store.get_outbox(old) is None and await store.get_outbox(recent) is not None
        assert len(await store.list_audit(submission_id="s-1")) == 1
        assert await housekeeping.run_once(now) == HousekeepingReport(0, 0, 0, 0)


async def test_gradebot_starts_housekeeping_with_a_first_pass_and_stops_it(
    make_world: WorldFactory, tmp_path: Path
) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        old, recent = await _litter(store)
    world = await make_world(dev_sso=False)  # the same database file
    parts = world.client.app[PARTS]
    assert parts.housekeeping.running
    store = parts.store
    assert await store.get_outbox(old) is None, "the first pass ran before Gradebot served anything"
    assert await store.get_outbox(recent) is not None
    assert await store.take_sign_in_flow("expired", T0) is None
    assert await store.take_sign_in_flow("live", T0) == ("t:u", b"flow")
    assert await store.claimed("tokenExchange", "live", T0) is True
    assert await store.claim_once("tokenExchange", "expired", T0, HOUR) is True, "its expired claim was purged"
    await world.client.close()
    assert not parts.housekeeping.running
