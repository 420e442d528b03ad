"""The janitor: expired claims, sign-in flows and codes, old finished grade writes, digest records after 30 days and
audit records after AUDIT_RETENTION_DAYS are purged — once when Gradebot starts, then on a schedule; /auth/start no
longer grows the store forever, and a save whose audit record is gone can no longer be undone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from app import PARTS
from bot.janitor import DIGEST_RETENTION, Janitor, JanitorReport
from storage import Store, open_store
from storage.records import ClassSweep, NewAuditRecord, NewOutboxEntry
from tests.bot.activities import message
from tests.bot.conftest import World, WorldFactory, replies
from tests.bot.grading_helpers import assignment_named, open_grading, press

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


def _report(**purged: int) -> JanitorReport:
    counts = dict.fromkeys(
        ("claims", "sign_in_flows", "sign_in_codes", "finished_outbox", "digests", "class_sweeps", "audit"), 0
    )
    return JanitorReport(**{**counts, **purged})


async def test_a_pass_deletes_what_expired_and_keeps_audit_records_for_their_retention(tmp_path: Path) -> None:
    now = T0 + 45 * 24 * HOUR
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        old, recent = await _litter(store)
        janitor = Janitor(store, outbox_retention=timedelta(days=30), audit_retention=timedelta(days=400))
        assert await janitor.tick(T0 + 2 * HOUR) == _report(claims=1, sign_in_flows=1, sign_in_codes=1)
        assert await janitor.tick(now) == _report(finished_outbox=1)
        assert await store.get_outbox(old) is None and await store.get_outbox(recent) is not None
        assert len(await store.list_audit(submission_id="s-1")) == 1
        assert await janitor.tick(now) == _report()


async def test_digests_and_waiting_sets_go_after_30_days_and_audit_records_after_audit_retention(
    tmp_path: Path,
) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        await store.record_digest("teacher-1", "slot-old", T0)
        await store.record_digest("teacher-1", "slot-new", T0 + 20 * 24 * HOUR)
        await store.save_class_sweep(ClassSweep("class-old", {}, full_at=T0, swept_at=T0))
        for day, submission in ((0, "s-old"), (20, "s-new")):
            await store.record_audit(
                NewAuditRecord(
                    T0 + day * 24 * HOUR, "teacher-1", "tenant", "class-1", "assignment-1", submission, "grade", {}, {}
                )
            )
        janitor = Janitor(store, outbox_retention=timedelta(days=30), audit_retention=timedelta(days=60))

        assert timedelta(days=30) == DIGEST_RETENTION
        assert await janitor.tick(T0 + 30 * 24 * HOUR) == _report(digests=1, class_sweeps=1)
        assert await store.get_class_sweep("class-old") is None
        assert await store.digest_sent("teacher-1", "slot-old") is False
        assert await store.digest_sent("teacher-1", "slot-new") is True
        assert await janitor.tick(T0 + 60 * 24 * HOUR) == _report(digests=1, audit=1)
        assert [record.submission_id for record in await store.list_audit()] == ["s-new"]


async def test_a_save_past_audit_retention_can_no_longer_be_undone(world: World) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    status, _ = await press(world, rosa, card, "grade", {"points": "6", "feedback": "Kept a school year"})
    assert status == 200
    parts = world.client.app[PARTS]
    assert len(await parts.store.list_audit(teacher_id=rosa.id)) == 1

    await parts.janitor.tick(datetime.now(UTC) + timedelta(days=401))  # AUDIT_RETENTION_DAYS is 400 by default

    assert await parts.store.list_audit(teacher_id=rosa.id) == []
    status, body = await world.post(message(rosa, "undo", world.sandbox.connector_url))
    assert status == 200
    assert "There is no saved grade of yours to undo." in str(replies(body))


async def test_gradebot_starts_the_janitor_with_a_first_pass_and_stops_it(
    make_world: WorldFactory, tmp_path: Path
) -> None:
    async with await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}") as store:
        old, recent = await _litter(store)
    world = await make_world(dev_sso=False)  # the same database file
    parts = world.client.app[PARTS]
    assert "janitor" in parts.workers.running
    store = parts.store
    assert await store.get_outbox(old) is None, "the first pass ran before Gradebot served anything"
    assert await store.get_outbox(recent) is not None
    assert await store.take_sign_in_flow("expired", T0) is None
    assert await store.take_sign_in_flow("live", T0) == ("t:u", b"flow")
    assert await store.claimed("tokenExchange", "live", T0) is True
    assert await store.claim_once("tokenExchange", "expired", T0, HOUR) is True, "its expired claim was purged"
    await world.client.close()
    assert parts.workers.running == []
