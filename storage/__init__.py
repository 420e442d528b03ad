"""Gradebot's persistence behind one Store class: SQLite embedded by default, PostgreSQL when shared.

`await open_store(url)` picks the backend from the URL, applies migrations and returns a ready `Store`.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from storage.store import SchemaVersionError, Store, StoreClosedError, StoreError

__all__ = ["SchemaVersionError", "Store", "StoreClosedError", "StoreError", "open_store"]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql", "postgres")


async def open_store(
    url: str,
    *,
    max_connections: int = 10,
    wait_timeout: timedelta = timedelta(seconds=10),
) -> Store:
    """Open the store at `url`, creating or migrating its schema.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db`, `sqlite:///:memory:` (private to this store);
      `wait_timeout` is how long a write waits for another process's lock.
    - `postgresql://user@host:port/db[?schema=name]` (or `postgres://`); the schema is created if missing and used
      for every table; `max_connections` sizes the pool; `wait_timeout` bounds connecting and waiting for a pooled
      connection.
    """
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        if not url.startswith(_SQLITE_PREFIX) or len(url) == len(_SQLITE_PREFIX) or "?" in url:
            raise ValueError("a SQLite store URL looks like sqlite:///path/to/file.db or sqlite:///:memory:")
        from storage.sqlite import SqliteStore

        return await SqliteStore.open(url[len(_SQLITE_PREFIX) :], busy_timeout=wait_timeout)
    if scheme in _POSTGRES_SCHEMES:
        from storage.postgres import PostgresStore

        conninfo, schema = _split_schema(url)
        return await PostgresStore.open(
            conninfo,
            schema=schema,
            max_connections=max_connections,
            connect_timeout=wait_timeout,
        )
    problem = f"unknown store URL scheme {scheme!r}" if scheme else "the store URL has no scheme"
    raise ValueError(f"{problem}: use sqlite:///path.db, sqlite:///:memory: or postgresql://user@host/db")


def _split_schema(url: str) -> tuple[str, str | None]:
    """The URL without its `schema` query parameter (which libpq would reject), and that parameter."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for key, value in query if key == "schema"]
    if len(schemas) > 1:
        raise ValueError("schema appears more than once in the store URL")
    rest = urlencode([(key, value) for key, value in query if key != "schema"], quote_via=quote)
    return urlunsplit(parts._replace(query=rest)), (schemas[0] if schemas else None)
