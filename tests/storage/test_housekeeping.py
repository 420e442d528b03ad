"""Contract: what housekeeping asks of the store — old digest and audit records purged, a stopping instance's
in-flight writes handed back, and a cheap check that the database is there and at which schema version."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import pytest

from storage import Store, StoreError, open_store
from storage.migrations import MIGRATIONS, SCHEMA_VERSION
from tests.storage.conftest import Database
from tests.storage.samples import at, audit, outbox_entry

LEASE = timedelta(minutes=2)


async def test_purge_digests_deletes_records_sent_at_or_before_the_cutoff(store: Store) -> None:
    await store.record_digest("teacher-1", "2025-01-06T07:45", at(0))
    await store.record_digest("teacher-1", "2025-02-03T07:45", at(10))
    await store.record_digest("teacher-2", "2025-02-03T07:45", at(20))

    assert await store.purge_digests(at(10)) == 2
    assert await store.digest_sent("teacher-1", "2025-01-06T07:45") is False
    assert await store.digest_sent("teacher-1", "2025-02-03T07:45") is False
    assert await store.digest_sent("teacher-2", "2025-02-03T07:45") is True
    assert await store.purge_digests(at(10)) == 0


async def test_purge_audit_deletes_records_made_at_or_before_the_cutoff_so_they_cannot_be_undone(
    store: Store,
) -> None:
    old = await store.record_audit(audit("grade", minute=1))
    kept = await store.record_audit(audit("grade", minute=3, submission_id="submission-2"))
    assert await store.last_undoable("teacher-1", {"grade"}) == kept

    assert await store.purge_audit(at(2)) == 1
    assert [record.id for record in await store.list_audit(teacher_id="teacher-1")] == [kept.id]
    assert await store.purge_audit(at(3)) == 1
    assert await store.last_undoable("teacher-1", {"grade"}) is None
    assert old.id != kept.id


async def test_release_outbox_hands_back_only_this_owners_writes_in_flight(store: Store) -> None:
    mine, _ = await store.enqueue_outbox(outbox_entry("grade:mine"), at(0))
    theirs, _ = await store.enqueue_outbox(outbox_entry("grade:theirs", submission_id="submission-2"), at(0))
    done, _ = await store.enqueue_outbox(outbox_entry("grade:done", submission_id="submission-3"), at(0))
    waiting, _ = await store.enqueue_outbox(outbox_entry("grade:waiting", submission_id="submission-4"), at(0))
    for entry, owner in ((mine, "stopping"), (theirs, "other"), (done, "stopping")):
        assert await store.claim_outbox(entry.id, owner, at(1), LEASE) is not None
    assert await store.complete_outbox(done.id, "stopping", {"ok": True}, at(1))

    assert await store.release_outbox("stopping", at(2), at(2, seconds=10)) == [mine.id]

    handed_back = await store.get_outbox(mine.id)
    assert handed_back is not None
    assert (handed_back.status, handed_back.lease_owner) == ("inflight", "stopping")
    assert (handed_back.lease_until, handed_back.updated_at, handed_back.attempts) == (at(2, seconds=10), at(2), 1)
    # A request it cut off may land until the lease ends: nobody resumes it, nor writes its submission, before.
    assert {entry.id for entry in await store.due_outbox(at(2, seconds=9), 10)} == {waiting.id}
    newer, _ = await store.enqueue_outbox(outbox_entry("grade:newer"), at(2))
    assert await store.claim_outbox(newer.id, "other", at(2, seconds=9), LEASE) is None
    assert {entry.id for entry in await store.due_outbox(at(2, seconds=10), 10)} == {mine.id, waiting.id, newer.id}
    resumed = await store.claim_outbox(mine.id, "other", at(2, seconds=10), LEASE)
    assert resumed is not None and resumed.attempts == 2
    still_theirs = await store.get_outbox(theirs.id)
    assert still_theirs is not None and (still_theirs.status, still_theirs.lease_owner) == ("inflight", "other")
    finished = await store.get_outbox(done.id)
    assert finished is not None and finished.status == "done"
    assert await store.complete_outbox(mine.id, "stopping", {"ok": True}, at(3)) is False, "the lease is gone"
    assert await store.release_outbox("stopping", at(3), at(3, seconds=10)) == []


async def test_check_answers_the_schema_version_the_database_is_at(store: Store, database: Database) -> None:
    assert MIGRATIONS[-1].version == SCHEMA_VERSION
    assert await store.check() == SCHEMA_VERSION
    newer = SCHEMA_VERSION + 1
    database.execute(f"INSERT INTO schema_version (version, name) VALUES ({newer}, 'a newer Gradebot')")
    try:
        assert await store.check() == newer
    finally:
        database.execute(f"DELETE FROM schema_version WHERE version = {newer}")


async def test_a_sqlite_store_whose_file_left_its_path_fails_the_check_until_it_is_back(tmp_path: Path) -> None:
    """An open connection keeps reading and writing a moved or deleted file: everything written then is lost when
    the process restarts, so the check looks at the path too."""
    folder = tmp_path / "data"
    async with await open_store(f"sqlite:///{folder / 'gradebot.db'}") as store:
        assert await store.check() == SCHEMA_VERSION
        folder.rename(tmp_path / "elsewhere")
        with pytest.raises(StoreError, match="no longer at its path"):
            await store.check()
        (tmp_path / "elsewhere").rename(folder)
        assert await store.check() == SCHEMA_VERSION

        shutil.copytree(folder, tmp_path / "copy")
        shutil.rmtree(folder)
        (tmp_path / "copy").rename(folder)
        with pytest.raises(StoreError, match="another file"):
            await store.check()


async def test_a_closed_store_fails_the_check(database: Database) -> None:
    opened = await database.open()
    await opened.close()
    with pytest.raises(StoreError):
        await opened.check()
