"""Contract: the grade outbox — idempotent enqueue, leased claims, takeover after a crash, fenced completion."""

from __future__ import annotations

import asyncio
import math
from datetime import timedelta

import pytest

from storage import Store
from storage.records import OutboxBacklog, OutboxEntry
from tests.storage.conftest import Database
from tests.storage.samples import BERLIN_WINTER, T0, TENANT, at, audit, outbox_entry

LEASE = timedelta(seconds=30)


async def enqueued(store: Store, key: str, minute: float = 0, **changes: object) -> OutboxEntry:
    entry, created = await store.enqueue_outbox(outbox_entry(key, **changes), at(minute))
    assert created
    return entry


async def test_enqueue_records_a_pending_entry_with_every_field(store: Store) -> None:
    new = outbox_entry("grade:submission-1:v1", payload={**outbox_entry("x").payload, "nul": "a\u0000b"})

    entry, created = await store.enqueue_outbox(new, T0.astimezone(BERLIN_WINTER))

    assert created is True
    assert (entry.idempotency_key, entry.kind, entry.teacher_id, entry.tenant_id) == (
        new.idempotency_key,
        "grade",
        "teacher-1",
        TENANT,
    )
    assert (entry.class_id, entry.assignment_id, entry.submission_id) == ("class-1", "assignment-1", "submission-1")
    assert entry.payload == new.payload
    assert (entry.status, entry.attempts, entry.last_error, entry.result) == ("pending", 0, None, None)
    assert entry.next_attempt_at == entry.created_at == entry.updated_at == T0
    assert (entry.lease_owner, entry.lease_until) == (None, None)
    assert entry.finished is False
    assert await store.get_outbox(entry.id) == entry
    assert await store.get_outbox_by_key("grade:submission-1:v1") == entry


async def test_enqueue_with_a_known_key_returns_the_first_entry_unchanged(store: Store) -> None:
    first = await enqueued(store, "grade:1")

    again, created = await store.enqueue_outbox(outbox_entry("grade:1", payload={"points": 1}), at(5))

    assert created is False
    assert again == first

    claimed = await store.claim_outbox(first.id, "worker-a", at(6), LEASE)
    assert claimed is not None
    await store.complete_outbox(first.id, "worker-a", {"points": 8.5}, at(6))
    done = await store.get_outbox(first.id)

    replay, created = await store.enqueue_outbox(outbox_entry("grade:1", payload={"points": 2}), at(60))
    assert created is False
    assert replay == done
    assert replay.status == "done" and replay.payload == first.payload


async def test_concurrent_enqueues_of_one_key_create_one_entry(database: Database) -> None:
    stores = await asyncio.gather(*(database.open(max_connections=2) for _ in range(4)))
    try:
        results = await asyncio.gather(
            *(each.enqueue_outbox(outbox_entry("grade:race"), at(0)) for each in stores for _ in range(3))
        )
    finally:
        await asyncio.gather(*(each.close() for each in stores))

    assert [created for _, created in results].count(True) == 1
    assert len({entry.id for entry, _ in results}) == 1


async def test_claim_takes_a_pending_entry_and_nobody_else_can_while_leased(store: Store) -> None:
    entry = await enqueued(store, "grade:1")

    claimed = await store.claim_outbox(entry.id, "worker-a", at(1), LEASE)

    assert claimed is not None
    assert (claimed.status, claimed.attempts, claimed.lease_owner) == ("inflight", 1, "worker-a")
    assert claimed.lease_until == at(1) + LEASE
    assert claimed.updated_at == at(1)
    assert await store.claim_outbox(entry.id, "worker-b", at(1, seconds=29), LEASE) is None
    assert await store.claim_outbox(entry.id, "worker-a", at(1, seconds=29), LEASE) is None, "not re-entrant"
    assert await store.get_outbox(entry.id) == claimed
    assert await store.claim_outbox(10_000, "worker-a", at(1), LEASE) is None


async def test_expired_lease_is_taken_over_and_the_stale_owner_is_fenced_out(store: Store) -> None:
    entry = await enqueued(store, "grade:1")
    await store.claim_outbox(entry.id, "crashed-instance", at(0), LEASE)

    taken = await store.claim_outbox(entry.id, "worker-b", at(0, seconds=30), LEASE)

    assert taken is not None
    assert (taken.lease_owner, taken.attempts, taken.lease_until) == ("worker-b", 2, at(1))
    assert await store.complete_outbox(entry.id, "crashed-instance", {"points": 1}, at(1)) is False
    assert await store.retry_outbox(entry.id, "crashed-instance", "late", at(2), at(1)) is False
    assert await store.fail_outbox(entry.id, "crashed-instance", "late", at(1)) is False
    assert await store.get_outbox(entry.id) == taken

    assert await store.complete_outbox(entry.id, "worker-b", {"points": 8.5, "gradedBy": "teacher-1"}, at(1)) is True
    done = await store.get_outbox(entry.id)
    assert done is not None
    assert (done.status, done.result, done.lease_owner, done.lease_until) == (
        "done",
        {"points": 8.5, "gradedBy": "teacher-1"},
        None,
        None,
    )
    assert done.updated_at == at(1) and done.finished
    assert await store.claim_outbox(entry.id, "worker-c", at(10), LEASE) is None, "finished entries stay finished"
    assert await store.complete_outbox(entry.id, "worker-b", {}, at(2)) is False, "only once"


async def test_owner_of_an_expired_but_untaken_lease_can_still_record_its_result(store: Store) -> None:
    entry = await enqueued(store, "grade:1")
    await store.claim_outbox(entry.id, "slow-worker", at(0), LEASE)

    assert await store.complete_outbox(entry.id, "slow-worker", {"ok": True}, at(5)) is True
    assert await store.claim_outbox(entry.id, "worker-b", at(5), LEASE) is None


async def test_a_write_is_not_claimed_while_another_owner_holds_an_earlier_write_to_its_submission(
    store: Store,
) -> None:
    """An instance that died mid-write may still have its PATCH land: a newer write to that submission waits for
    the lease to end (or the earlier write to finish), so the late PATCH cannot land over it."""
    earlier = await enqueued(store, "grade:first")
    newer = await enqueued(store, "grade:second")
    elsewhere = await enqueued(store, "grade:other-submission", submission_id="submission-2")
    assert await store.claim_outbox(earlier.id, "died-mid-write", at(0), LEASE)

    assert await store.claim_outbox(newer.id, "worker-b", at(0, seconds=29), LEASE) is None
    waiting = await store.get_outbox(newer.id)
    assert waiting is not None and waiting.status == "pending"
    assert await store.claim_outbox(elsewhere.id, "worker-b", at(0, seconds=29), LEASE) is not None
    # The same owner may: its own writes to one submission are ordered in process.
    assert await store.claim_outbox(newer.id, "died-mid-write", at(0, seconds=29), LEASE) is not None

    later = await enqueued(store, "grade:third")
    assert await store.claim_outbox(later.id, "worker-b", at(0, seconds=58), LEASE) is None
    taken = await store.claim_outbox(later.id, "worker-b", at(0, seconds=59), LEASE)  # both dead leases ran out
    assert taken is not None and taken.lease_owner == "worker-b"


async def test_a_write_waits_for_an_earlier_one_only_until_it_finishes(store: Store) -> None:
    earlier = await enqueued(store, "grade:first")
    newer = await enqueued(store, "grade:second")
    assert await store.claim_outbox(newer.id, "worker-b", at(0), LEASE), "an earlier pending write does not block"
    await store.retry_outbox(newer.id, "worker-b", "503", at(0), at(0))
    assert await store.claim_outbox(earlier.id, "worker-a", at(0), LEASE), "nor does a later one in flight"
    assert await store.claim_outbox(newer.id, "worker-b", at(0, seconds=1), LEASE) is None

    await store.complete_outbox(earlier.id, "worker-a", {}, at(0, seconds=2))

    assert await store.claim_outbox(newer.id, "worker-b", at(0, seconds=2), LEASE) is not None


async def test_an_entry_enqueued_with_a_later_due_time_is_not_due_before_it(store: Store) -> None:
    entry, _ = await store.enqueue_outbox(outbox_entry("grade:1"), at(0), at(0, seconds=3))

    assert (entry.created_at, entry.next_attempt_at) == (at(0), at(0, seconds=3))
    assert await store.due_outbox(at(0, seconds=2), 10) == []
    assert [e.id for e in await store.due_outbox(at(0, seconds=3), 10)] == [entry.id]
    assert await store.claim_outbox(entry.id, "worker-a", at(0), LEASE), "its own instance claims it at once"


async def test_concurrent_claims_have_exactly_one_winner(database: Database) -> None:
    stores = await asyncio.gather(*(database.open(max_connections=3) for _ in range(5)))
    try:
        entry, _ = await stores[0].enqueue_outbox(outbox_entry("grade:1"), at(0))
        claims = await asyncio.gather(
            *(
                each.claim_outbox(entry.id, f"worker-{n}-{k}", at(0), LEASE)
                for n, each in enumerate(stores)
                for k in range(3)
            )
        )
        winners = [claim for claim in claims if claim is not None]
        assert len(winners) == 1
        assert await stores[-1].get_outbox(entry.id) == winners[0]
    finally:
        await asyncio.gather(*(each.close() for each in stores))


async def test_retry_releases_the_entry_until_its_next_attempt(store: Store) -> None:
    entry = await enqueued(store, "grade:1")
    await store.claim_outbox(entry.id, "worker-a", at(0), LEASE)

    assert await store.retry_outbox(entry.id, "worker-a", "429 Too Many Requests", at(2), at(0, seconds=1)) is True

    retried = await store.get_outbox(entry.id)
    assert retried is not None
    assert (retried.status, retried.last_error, retried.next_attempt_at) == ("pending", "429 Too Many Requests", at(2))
    assert (retried.lease_owner, retried.lease_until, retried.attempts) == (None, None, 1)
    assert await store.due_outbox(at(1), 10) == []
    assert [due.id for due in await store.due_outbox(at(2), 10)] == [entry.id]
    again = await store.claim_outbox(entry.id, "worker-b", at(2), LEASE)
    assert again is not None and again.attempts == 2 and again.last_error == "429 Too Many Requests"


@pytest.mark.parametrize("status", ["failed", "conflict"])
async def test_fail_finishes_the_entry_with_its_reason(store: Store, status: str) -> None:
    entry = await enqueued(store, "grade:1")
    await store.claim_outbox(entry.id, "worker-a", at(0), LEASE)

    assert await store.fail_outbox(entry.id, "worker-a", "lastModified changed", at(1), status=status) is True  # type: ignore[arg-type]

    failed = await store.get_outbox(entry.id)
    assert failed is not None
    assert (failed.status, failed.last_error, failed.lease_owner, failed.finished) == (
        status,
        "lastModified changed",
        None,
        True,
    )
    assert await store.due_outbox(at(100), 10) == []
    assert await store.pending_outbox_for("teacher-1") == []


async def test_fail_rejects_a_status_that_is_not_a_failure(store: Store) -> None:
    entry = await enqueued(store, "grade:1")
    await store.claim_outbox(entry.id, "worker-a", at(0), LEASE)

    with pytest.raises(ValueError, match="failed"):
        await store.fail_outbox(entry.id, "worker-a", "x", at(1), status="done")  # type: ignore[arg-type]
    still = await store.get_outbox(entry.id)
    assert still is not None and still.status == "inflight"


async def test_unclaimed_entries_cannot_be_completed_retried_or_failed(store: Store) -> None:
    entry = await enqueued(store, "grade:1")

    assert await store.complete_outbox(entry.id, "worker-a", {}, at(1)) is False
    assert await store.retry_outbox(entry.id, "worker-a", "x", at(2), at(1)) is False
    assert await store.fail_outbox(entry.id, "worker-a", "x", at(1)) is False
    assert await store.get_outbox(entry.id) == entry


async def test_due_outbox_lists_due_pending_and_expired_inflight_entries_oldest_due_first(store: Store) -> None:
    late_pending = await enqueued(store, "pending:3", minute=3, submission_id="s-3")
    early_pending = await enqueued(store, "pending:1", minute=1, submission_id="s-1")
    future = await enqueued(store, "pending:future", minute=20, submission_id="s-future")
    expired = await enqueued(store, "inflight:expired", minute=0, submission_id="s-expired")
    assert await store.claim_outbox(expired.id, "crashed", at(0), timedelta(minutes=2))  # lease until minute 2
    held = await enqueued(store, "inflight:held", minute=0, submission_id="s-held")
    assert await store.claim_outbox(held.id, "alive", at(0), timedelta(minutes=30))
    done = await enqueued(store, "done", minute=0, submission_id="s-done")
    assert await store.claim_outbox(done.id, "worker", at(0), LEASE)
    await store.complete_outbox(done.id, "worker", {}, at(0))

    due = await store.due_outbox(at(5), 10)

    assert [entry.idempotency_key for entry in due] == ["pending:1", "inflight:expired", "pending:3"]
    assert [entry.id for entry in await store.due_outbox(at(5), 2)] == [early_pending.id, expired.id]
    assert future.id not in {entry.id for entry in due} and late_pending.id in {entry.id for entry in due}
    with pytest.raises(ValueError, match="limit"):
        await store.due_outbox(at(5), 0)


async def test_pending_outbox_for_lists_a_teachers_unfinished_entries(store: Store) -> None:
    first = await enqueued(store, "grade:1")
    second = await enqueued(store, "grade:2", kind="return")
    await store.claim_outbox(second.id, "worker", at(0), LEASE)
    finished = await enqueued(store, "grade:3")
    await store.claim_outbox(finished.id, "worker", at(0), LEASE)
    await store.fail_outbox(finished.id, "worker", "403", at(0))
    await enqueued(store, "grade:other", teacher_id="teacher-2")

    unfinished = await store.pending_outbox_for("teacher-1")

    assert [(entry.id, entry.status) for entry in unfinished] == [(first.id, "pending"), (second.id, "inflight")]
    assert await store.pending_outbox_for("teacher-3") == []


async def test_missing_entries_are_none(store: Store) -> None:
    assert await store.get_outbox(424242) is None
    assert await store.get_outbox_by_key("never-enqueued") is None


async def test_payloads_that_json_cannot_carry_are_refused_before_anything_is_stored(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.enqueue_outbox(outbox_entry("grade:nan", payload={"points": math.nan}), at(0))
    with pytest.raises(ValueError, match="aware"):
        await store.enqueue_outbox(outbox_entry("grade:naive"), at(0).replace(tzinfo=None))
    assert await store.get_outbox_by_key("grade:nan") is None
    assert await store.get_outbox_by_key("grade:naive") is None


async def _finish(store: Store, key: str, minute: float, how: str, **changes: object) -> OutboxEntry:
    entry = await enqueued(store, key, minute, **changes)
    assert await store.claim_outbox(entry.id, "worker-a", at(minute), LEASE) is not None
    if how == "done":
        assert await store.complete_outbox(entry.id, "worker-a", {"ok": True}, at(minute))
    else:
        assert await store.fail_outbox(entry.id, "worker-a", "refused", at(minute), status=how)  # type: ignore[arg-type]
    return entry


async def test_purge_finished_outbox_deletes_old_finished_entries_only(store: Store) -> None:
    old_done = await _finish(store, "old-done", 0, "done", submission_id="s-1")
    old_failed = await _finish(store, "old-failed", 1, "failed", submission_id="s-2")
    old_conflict = await _finish(store, "old-conflict", 2, "conflict", submission_id="s-3")
    recent = await _finish(store, "recent-done", 30, "done", submission_id="s-4")
    pending = await enqueued(store, "old-pending", 0, submission_id="s-5")
    inflight = await enqueued(store, "old-inflight", 0, submission_id="s-6")
    assert await store.claim_outbox(inflight.id, "worker-a", at(0), LEASE) is not None
    record = await store.record_audit(audit("grade", 0, outbox_key="old-done", submission_id="s-1"))

    assert await store.purge_finished_outbox(at(20)) == 3

    for gone in (old_done, old_failed, old_conflict):
        assert await store.get_outbox(gone.id) is None
    for kept in (recent, pending, inflight):
        assert await store.get_outbox(kept.id) is not None
    assert await store.list_audit(submission_id="s-1") == [record], "audit records are not purged here"


async def test_purge_keeps_finished_entries_a_pending_write_of_their_submission_may_need(store: Store) -> None:
    """An unfinished write checks newer finished writes of its submission (so it never overwrites them)."""
    older_pending = await enqueued(store, "grade-1", 0, submission_id="s-1")
    newer_done = await _finish(store, "grade-2", 1, "done", submission_id="s-1")
    assert await store.purge_finished_outbox(at(60)) == 0
    assert await store.get_outbox(newer_done.id) is not None
    claimed = await store.claim_outbox(older_pending.id, "worker-a", at(61), LEASE)
    assert claimed is not None
    assert await store.complete_outbox(older_pending.id, "worker-a", {"superseded": True}, at(61))
    assert await store.purge_finished_outbox(at(61)) == 2


async def test_notices_owed_are_kept_until_settled_oldest_first_and_go_with_their_purged_entry(store: Store) -> None:
    first, _ = await store.enqueue_outbox(outbox_entry("owed-1", submission_id="s-owed"), at(0))
    second, _ = await store.enqueue_outbox(outbox_entry("owed-2"), at(0))
    await store.owe_notice(second.id, at(1))
    await store.owe_notice(first.id, at(2))
    await store.owe_notice(second.id, at(3))  # owed once, however often the teacher was told "Saving…"
    assert await store.owed_notices(10) == [second.id, first.id]
    assert await store.settle_notice(second.id) is True
    assert await store.settle_notice(second.id) is False
    assert await store.owed_notices(10) == [first.id]
    assert await store.claim_outbox(first.id, "w", at(4), timedelta(minutes=1)) is not None
    assert await store.complete_outbox(first.id, "w", {"ok": True}, at(5))
    assert await store.purge_finished_outbox(at(6)) == 1
    assert await store.owed_notices(10) == [], "a notice about a purged write can no longer be given"


async def test_the_backlog_counts_unfinished_entries_and_dates_the_oldest(store: Store) -> None:
    assert await store.outbox_backlog() == OutboxBacklog(0, None)
    done = await enqueued(store, "grade:done", minute=0)
    assert await store.claim_outbox(done.id, "worker-a", at(1), LEASE)
    assert await store.complete_outbox(done.id, "worker-a", {}, at(1))
    failed = await enqueued(store, "grade:failed", minute=1)
    assert await store.claim_outbox(failed.id, "worker-a", at(2), LEASE)
    assert await store.fail_outbox(failed.id, "worker-a", "no", at(2))
    inflight = await enqueued(store, "grade:inflight", minute=2)
    assert await store.claim_outbox(inflight.id, "worker-a", at(3), LEASE)
    await enqueued(store, "grade:pending", minute=3)

    assert await store.outbox_backlog() == OutboxBacklog(2, at(2))
