"""SqliteStore: the embedded default backend on stdlib sqlite3, one connection driven by one dedicated thread. Several
processes (or Store objects) may share one file: WAL journal, a busy timeout, and every write in BEGIN IMMEDIATE so
writers queue for the lock up front instead of failing on a lock upgrade."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from storage.migrations import MIGRATIONS, SQLITE_VERSION_TABLE, Migration, missing_steps
from storage.records import Row, dump_json, utc
from storage.store import CURRENT_VERSION, RECORD_VERSION, Store, StoreClosedError, StoreError, positive

MEMORY = ":memory:"

# Columns are decoded by name, so a name means the same type in every table: times are `at`, `*_at`, `*_until`.
_JSON_COLUMNS = frozenset(
    {"reference", "payload", "result", "before_state", "after_state", "days", "class_ids", "waiting_set"}
)

_T = TypeVar("_T")


def _decode(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "at" or name.endswith(("_at", "_until")):
        return datetime.fromisoformat(value)
    if name in _JSON_COLUMNS:
        return json.loads(value)
    return bool(value) if name == "enabled" else value


def _decode_row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> dict[str, Any]:
    return {column[0]: _decode(column[0], value) for column, value in zip(cursor.description, values, strict=True)}


def _param(value: object) -> object:
    """Times as fixed-width ISO 8601 UTC text (so comparing the text compares the instants); JSON and lists as text."""
    if isinstance(value, datetime):
        return utc(value).isoformat(timespec="microseconds")
    if isinstance(value, frozenset):
        return dump_json(sorted(value))
    return dump_json(value) if isinstance(value, dict) else value


def _use_wal(connection: sqlite3.Connection, busy_timeout: timedelta) -> None:
    """Switch to WAL; SQLite answers BUSY at once (no busy handler) while another opener makes the same switch."""
    deadline = time.monotonic() + busy_timeout.total_seconds()
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() >= deadline:
                raise
            time.sleep(0.005)


def _connect(
    path: str, busy_timeout: timedelta, migrations: Sequence[Migration]
) -> tuple[sqlite3.Connection, tuple[int, int] | None]:
    """The connection, in WAL mode and migrated, and the identity of the file it opened (see `_file_identity`).

    isolation_level IMMEDIATE: sqlite3 opens BEGIN IMMEDIATE before each changing statement, `with connection`
    commits it (or rolls it back).
    """
    if path != MEMORY:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=busy_timeout.total_seconds(), isolation_level="IMMEDIATE")
    try:
        connection.row_factory = _decode_row
        _use_wal(connection, busy_timeout)
        connection.execute("PRAGMA synchronous = FULL")
        with connection:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(SQLITE_VERSION_TABLE)
            for step in missing_steps(migrations, connection.execute(CURRENT_VERSION).fetchone()["version"]):
                for statement in step.sqlite:
                    connection.execute(statement)
                connection.execute(RECORD_VERSION, (step.version, step.name))
        return connection, _file_identity(path)
    except BaseException:
        connection.close()
        raise


def _file_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the database file at `path`; None for `:memory:`."""
    if path == MEMORY:
        return None
    found = Path(path).stat()
    return (found.st_dev, found.st_ino)


class SqliteStore(Store):
    """The Store on one SQLite file (or `:memory:`, private to this object). Open with `await SqliteStore.open()`."""

    def __init__(
        self, connection: sqlite3.Connection, executor: ThreadPoolExecutor, path: str, file: tuple[int, int] | None
    ) -> None:
        self._connection = connection
        self._executor = executor
        self._path = path
        self._file = file
        self._closed = False

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        busy_timeout: timedelta = timedelta(seconds=10),
        migrations: Sequence[Migration] = MIGRATIONS,
    ) -> SqliteStore:
        """Connect (creating the file and its folder if needed) and apply missing migrations."""
        positive(busy_timeout, "busy_timeout")
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradebot-sqlite")
        loop = asyncio.get_running_loop()
        try:
            connection, file = await loop.run_in_executor(executor, _connect, str(path), busy_timeout, migrations)
        except BaseException as error:
            executor.shutdown()
            if isinstance(error, sqlite3.Error):
                raise StoreError(f"cannot open the SQLite database: {error}") from error
            raise
        return cls(connection, executor, str(path), file)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, self._connection.close)
            finally:
                self._executor.shutdown()

    async def check(self) -> int:
        """The schema version, read after making sure the file at the store's path is still the one it has open: a
        connection keeps using a moved or deleted file, and whatever it writes there is gone at the next start."""
        try:
            now_there = await self._call(lambda _: _file_identity(self._path))
        except OSError as error:
            raise StoreError(f"the SQLite database file is no longer at its path ({error.strerror})") from None
        if now_there != self._file:
            raise StoreError("the SQLite database path now holds another file than the one open")
        return await super().check()

    async def _call(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        """Run `work` on the store's thread, which alone touches the connection."""
        if self._closed:
            raise StoreClosedError("the SQLite store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, work, self._connection)
        except sqlite3.Error as error:
            raise StoreError(f"SQLite operation failed: {error}") from error

    async def _sql(self, statement: str, params: Sequence[object] = ()) -> list[Row]:
        values = [_param(value) for value in params]

        def work(connection: sqlite3.Connection) -> list[Row]:
            with connection:
                return connection.execute(statement, values).fetchall()

        return await self._call(work)
