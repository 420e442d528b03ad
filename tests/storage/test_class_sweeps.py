"""Contract: the reminder sweep's waiting set per class (migration 5) round-trips, is replaced, and is per class."""

from __future__ import annotations

from storage import Store
from storage.records import ClassSweep
from tests.storage.conftest import Database, stored_time
from tests.storage.samples import at

WAITING = {
    "assignments": {"a-1": {"displayName": "Essay «é»", "status": "assigned", "due": "2026-11-30T14:30:00Z"}},
    "waiting": {"sub-1": ["a-1", "s-1", "2026-11-30T15:00:00.123456Z"]},
}


async def test_a_class_sweep_round_trips_and_is_replaced(store: Store) -> None:
    first = ClassSweep("class-1", WAITING, full_at=at(0), swept_at=at(5))
    await store.save_class_sweep(first)
    assert await store.get_class_sweep("class-1") == first
    assert await store.get_class_sweep("class-2") is None

    later = ClassSweep("class-1", {"waiting": {}}, full_at=at(0), swept_at=at(60))
    await store.save_class_sweep(later)
    await store.save_class_sweep(ClassSweep("class-2", WAITING, full_at=at(1), swept_at=at(1)))

    assert await store.get_class_sweep("class-1") == later
    assert (await store.get_class_sweep("class-2")) == ClassSweep("class-2", WAITING, at(1), at(1))


async def test_class_sweep_times_are_stored_in_utc(store: Store, database: Database) -> None:
    await store.save_class_sweep(ClassSweep("class-1", WAITING, full_at=at(0), swept_at=at(5)))
    [(full_at, swept_at)] = database.execute("SELECT full_at, swept_at FROM class_sweeps")
    assert (stored_time(full_at), stored_time(swept_at)) == (at(0), at(5))


async def test_purge_class_sweeps_deletes_classes_last_swept_at_or_before_the_cutoff(store: Store) -> None:
    for class_id, minute in (("class-1", 0), ("class-2", 10), ("class-3", 20)):
        await store.save_class_sweep(ClassSweep(class_id, WAITING, full_at=at(0), swept_at=at(minute)))
    assert await store.purge_class_sweeps(at(10)) == 2
    assert await store.get_class_sweep("class-2") is None
    assert await store.get_class_sweep("class-3") is not None
    assert await store.purge_class_sweeps(at(10)) == 0
