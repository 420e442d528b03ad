"""Contract: reminder schedules and the record of sent digests (never sent twice, even when instances race)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from storage import Store
from tests.storage.conftest import Database, stored_time
from tests.storage.samples import BERLIN_WINTER, at, schedule


async def test_schedule_round_trips_every_field(store: Store) -> None:
    full = schedule(
        "teacher-1",
        days=frozenset(range(7)),
        local_time="16:05",
        timezone="America/Argentina/Buenos_Aires",
        quiet_start="22:00",
        quiet_end="06:30",
        class_ids=frozenset({"class-β", "class-1"}),
        min_waiting=3,
        min_age_days=2,
        snoozed_until=at(60 * 24).astimezone(BERLIN_WINTER),
        paused_reason="token expired — sign in again",
        paused_at=at(2),
        updated_at=at(3),
    )

    await store.save_schedule(full)

    assert await store.get_schedule("teacher-1") == full
    assert await store.get_schedule("teacher-2") is None


async def test_save_schedule_replaces_and_can_clear_optional_fields(store: Store) -> None:
    await store.save_schedule(schedule("teacher-1", snoozed_until=at(90), paused_reason="x", paused_at=at(1)))
    cleared = schedule("teacher-1", days=frozenset(), local_time="00:00", class_ids=frozenset({"c"}), updated_at=at(5))

    await store.save_schedule(cleared)

    assert await store.get_schedule("teacher-1") == cleared


async def test_list_schedules_filters_disabled_ones_and_sorts_by_teacher(store: Store) -> None:
    for teacher, enabled in (("teacher-c", True), ("teacher-a", False), ("teacher-b", True)):
        await store.save_schedule(schedule(teacher, enabled=enabled))

    enabled_only = await store.list_schedules()
    everything = await store.list_schedules(enabled_only=False)

    assert [item.teacher_id for item in enabled_only] == ["teacher-b", "teacher-c"]
    assert [item.teacher_id for item in everything] == ["teacher-a", "teacher-b", "teacher-c"]
    assert everything[0].enabled is False


def sent_digests(database: Database, teacher_id: str) -> list[tuple[str, datetime]]:
    """(slot_key, sent_at) of the teacher's recorded digests, oldest first, read with plain SQL."""
    rows = database.execute(f"SELECT slot_key, sent_at FROM digests WHERE teacher_id = '{teacher_id}'")
    return sorted((slot, stored_time(sent_at)) for slot, sent_at in rows)


async def test_record_digest_is_true_once_per_teacher_and_slot(store: Store, database: Database) -> None:
    assert sent_digests(database, "teacher-1") == []
    assert await store.digest_sent("teacher-1", "2025-03-03T07:45") is False

    assert await store.record_digest("teacher-1", "2025-03-03T07:45", at(0)) is True
    assert await store.record_digest("teacher-1", "2025-03-03T07:45", at(1)) is False
    assert await store.record_digest("teacher-2", "2025-03-03T07:45", at(1)) is True
    assert await store.record_digest("teacher-1", "2025-03-05T07:45", at(60 * 48)) is True

    assert await store.digest_sent("teacher-1", "2025-03-03T07:45") is True
    assert await store.digest_sent("teacher-1", "2025-03-04T07:45") is False
    assert sent_digests(database, "teacher-1") == [("2025-03-03T07:45", at(0)), ("2025-03-05T07:45", at(60 * 48))]
    assert sent_digests(database, "teacher-2") == [("2025-03-03T07:45", at(1))]


async def test_record_digest_race_has_exactly_one_winner(database: Database) -> None:
    stores = await asyncio.gather(*(database.open(max_connections=3) for _ in range(5)))
    try:
        results = await asyncio.gather(
            *(contender.record_digest("teacher-1", "slot-1", at(0)) for contender in stores for _ in range(3))
        )
    finally:
        await asyncio.gather(*(opened.close() for opened in stores))
    assert results.count(True) == 1


def test_schedule_rejects_impossible_values() -> None:
    with pytest.raises(ValueError, match="weekday"):
        schedule("t", days=frozenset({7}))
    with pytest.raises(ValueError, match="HH:MM"):
        schedule("t", local_time="7:45")
    with pytest.raises(ValueError, match="HH:MM"):
        schedule("t", quiet_start="24:00", quiet_end="06:00")
    with pytest.raises(ValueError, match="both"):
        schedule("t", quiet_start="22:00")
    with pytest.raises(ValueError, match="negative"):
        schedule("t", min_waiting=-1)
