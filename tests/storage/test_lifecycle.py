"""Opening, migrating, sharing and closing stores: what happens around the data."""

from __future__ import annotations

import asyncio
import hashlib
import traceback
from dataclasses import replace
from pathlib import Path

import pytest

from storage import SchemaVersionError, Store, StoreClosedError, StoreError
from storage.migrations import MIGRATIONS, Migration
from storage.postgres import PostgresStore
from storage.sqlite import SqliteStore
from tests.storage.conftest import Database
from tests.storage.samples import at, conversation, outbox_entry

LATEST = MIGRATIONS[-1].version
DIALECTS = ("sqlite", "postgres")
EXTRA_STEP = Migration(
    LATEST + 1,
    "test-only step",
    sqlite=("CREATE TABLE test_extra (id INTEGER PRIMARY KEY)", "INSERT INTO test_extra (id) VALUES (1)"),
    postgres=("CREATE TABLE test_extra (id integer PRIMARY KEY)", "INSERT INTO test_extra (id) VALUES (1)"),
)


# sha256 of each released step's statements (joined by "\n;\n"), per dialect: a released step is never edited.
RELEASED = {
    (1, "sqlite"): "7c86bf688ee0bcf6aae02800ef934bce025ddcbdd64e1f490512d428b27feb0d",
    (1, "postgres"): "20b9f64eefa07aa891bc375bc1ee92bdce494b3dc8297bddc304a218b57de23f",
    (2, "sqlite"): "4ad0bd2c6ca575dd7ac4d81d32c8750676aae8772b62ca9247699aa5a5d34823",
    (2, "postgres"): "e92643763130f20f61c70c31f26b7b380a128c9d6c75d3bfdab3878d1243462d",
    (3, "sqlite"): "382c21b499491d0e91b8a1aae35a722fd777920f398fed5ed2784fc2bb975497",
    (3, "postgres"): "14cdc2533460fafb2461e13a82ca84d996afc14df09c3a83fbaeac021b3a4ca7",
}


async def open_with(database: Database, migrations: tuple[Migration, ...]) -> Store:
    """Open with a custom migration history (what a newer Gradebot release would ship)."""
    if database.backend == "sqlite":
        return await SqliteStore.open(database.url.removeprefix("sqlite:///"), migrations=migrations)
    return await PostgresStore.open(database.url, schema=database.schema, migrations=migrations)


async def test_migrations_are_applied_once_and_data_survives_reopening(fresh_database: Database) -> None:
    async with await fresh_database.open() as first:
        assert await first.check() == LATEST
        await first.save_conversation(conversation("a:kept"))

    async with await fresh_database.open() as second:
        assert await second.check() == LATEST
        assert await second.get_conversation("a:kept") == conversation("a:kept")

    assert fresh_database.execute("SELECT version FROM schema_version ORDER BY version") == [
        (step.version,) for step in MIGRATIONS
    ]


def test_released_migration_steps_are_never_edited() -> None:
    statements = {(step.version, dialect): getattr(step, dialect) for step in MIGRATIONS for dialect in DIALECTS}
    digests = {key: hashlib.sha256("\n;\n".join(value).encode()).hexdigest() for key, value in statements.items()}
    assert {key: digests[key] for key in RELEASED} == RELEASED


async def test_concurrent_openers_of_a_new_database_migrate_it_once(fresh_database: Database) -> None:
    stores = await asyncio.gather(*(fresh_database.open(max_connections=2) for _ in range(5)))
    try:
        assert {await each.check() for each in stores} == {LATEST}
        await stores[0].save_conversation(conversation("a:1"))
        assert await stores[4].get_conversation("a:1") == conversation("a:1")
    finally:
        await asyncio.gather(*(each.close() for each in stores))
    assert fresh_database.execute("SELECT COUNT(*) FROM schema_version") == [(len(MIGRATIONS),)]


async def test_a_new_step_is_applied_once_by_concurrent_openers(fresh_database: Database) -> None:
    await (await fresh_database.open()).close()

    upgraded = await asyncio.gather(*(open_with(fresh_database, (*MIGRATIONS, EXTRA_STEP)) for _ in range(4)))
    try:
        assert {await each.check() for each in upgraded} == {EXTRA_STEP.version}
    finally:
        await asyncio.gather(*(each.close() for each in upgraded))
    assert fresh_database.execute("SELECT id FROM test_extra") == [(1,)]
    assert fresh_database.execute(f"SELECT name FROM schema_version WHERE version = {EXTRA_STEP.version}") == [
        ("test-only step",)
    ]


async def test_a_database_newer_than_the_code_is_refused(fresh_database: Database) -> None:
    await (await open_with(fresh_database, (*MIGRATIONS, EXTRA_STEP))).close()

    with pytest.raises(SchemaVersionError, match="newer"):
        await fresh_database.open()


async def test_a_history_with_gaps_is_refused(fresh_database: Database) -> None:
    gapped = (*MIGRATIONS, replace(EXTRA_STEP, version=LATEST + 2))

    with pytest.raises(ValueError, match="without gaps"):
        await open_with(fresh_database, gapped)


async def test_two_stores_share_one_database(database: Database) -> None:
    async with await database.open() as writer, await database.open() as reader:
        entry, _ = await writer.enqueue_outbox(outbox_entry("grade:shared"), at(0))
        await writer.save_token_cache("user", b"\x01\x02", at(0))

        assert await reader.get_outbox_by_key("grade:shared") == entry
        assert await reader.load_token_cache("user") == b"\x01\x02"
        assert await reader.claim_outbox(entry.id, "reader", at(0), at(1) - at(0)) is not None
        assert await writer.claim_outbox(entry.id, "writer", at(0), at(1) - at(0)) is None


async def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    database = Database("sqlite", f"sqlite:///{tmp_path}/wal.db")
    async with await database.open():
        assert database.execute("PRAGMA journal_mode") == [("wal",)]


async def test_memory_sqlite_store_works_and_is_private() -> None:
    database = Database("sqlite", "sqlite:///:memory:")
    async with await database.open() as first, await database.open() as second:
        await first.save_token_cache("k", b"v", at(0))
        assert await first.load_token_cache("k") == b"v"
        assert await second.load_token_cache("k") is None


async def test_closed_store_refuses_work_and_closes_twice_quietly(database: Database) -> None:
    opened = await database.open()
    async with opened as same:
        assert same is opened
        await same.save_token_cache("k", b"v", at(0))

    with pytest.raises(StoreClosedError):
        await opened.load_token_cache("k")
    await opened.close()


async def test_database_errors_become_store_errors_that_quote_no_data(store: Store) -> None:
    secret = "Feedback for Zoë: see me after class"
    broken = outbox_entry("grade:broken", teacher_id=None, payload={"feedback": secret})

    with pytest.raises(StoreError) as caught:
        await store.enqueue_outbox(broken, at(0))

    rendered = "".join(traceback.format_exception(caught.value))
    assert "teacher_id" in rendered
    assert secret not in rendered and "Zoë" not in rendered
    assert await store.get_outbox_by_key("grade:broken") is None
