"""Fixtures for the district tests: the storage contract's `database` (every engine, a store of its own per test)
is reused for the in-process lease tests; the multi-process tests build their own PostgreSQL schema."""

from __future__ import annotations

from tests.storage.conftest import database, module_schema

__all__ = ["database", "module_schema"]
