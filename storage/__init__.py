"""Gradebot's persistence behind one Store class: SQLite embedded by default, PostgreSQL when shared.
`await open_store(url)` picks the backend from the URL, applies migrations and returns a ready `Store`."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from storage.store import SchemaVersionError, Store, StoreClosedError, StoreError

__all__ = ["SchemaVersionError", "Store", "StoreClosedError", "StoreError", "open_store"]


async def open_store(url: str, *, max_connections: int = 10, wait_timeout: timedelta = timedelta(seconds=10)) -> Store:
    """Open the store at `url`, creating or migrating its schema.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:` (private to this store);
      `wait_timeout` is how long a write waits for another process's lock.
    - `postgresql://user@host:port/db[?schema=name]` (or `postgres://`); the schema is created if missing and used
      for every table; `max_connections` sizes the pool; `wait_timeout` bounds connecting and waiting for a pooled
      connection.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = url.removeprefix("sqlite:///")
        if path in ("", url) or "?" in url:
            raise ValueError("a SQLite store URL looks like sqlite:///path/to/file.db or sqlite:///:memory:")
        from storage.sqlite import SqliteStore

        return await SqliteStore.open(path, busy_timeout=wait_timeout)
    if scheme in ("postgresql", "postgres"):
        from storage.postgres import PostgresStore

        # libpq would reject the `schema` parameter: it is ours.
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        if len(schemas) > 1:
            raise ValueError("schema appears more than once in the store URL")
        rest = urlencode([(key, value) for key, value in query if key != "schema"], quote_via=quote)
        conninfo = urlunsplit(parts._replace(query=rest))
        schema = schemas[0] if schemas else None
        return await PostgresStore.open(
            conninfo, schema=schema, max_connections=max_connections, connect_timeout=wait_timeout
        )
    problem = f"unknown store URL scheme {scheme!r}" if scheme else "the store URL has no scheme"
    raise ValueError(f"{problem}: use sqlite:///path.db, sqlite:///:memory: or postgresql://user@host/db")
