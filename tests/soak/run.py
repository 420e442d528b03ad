"""Running soaks: the bounded (CI) and long configurations, every engine at once, and what counts as a failure."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from tests.soak.databases import Engine, soak_database
from tests.soak.driver import Report, SoakConfig, run_soak

BOUNDED_WRITES = 100
LONG_WRITES = 1000
MUST_BE_ZERO = ("lost", "applied_twice", "returns_twice", "returns_lost", "pending", "http_5xx", "unexpected_writes")


def soak_config(engine: Engine, *, long: bool = False, writes: int | None = None, seed: int = 1) -> SoakConfig:
    """The bounded soak CI runs (both engines at once in a few minutes on 2 cores), or with `long` the full one."""
    if long:
        return SoakConfig(engine, writes or LONG_WRITES, sessions_per_teacher=8, drain_timeout_s=600, seed=seed)
    return SoakConfig(engine, writes or BOUNDED_WRITES, sessions_per_teacher=6, seed=seed)


async def run_engines(configs: list[SoakConfig], root: Path) -> list[Report]:
    """Every engine at once, each with its own sandbox, Gradebot process and database; logs under `root/engine`."""

    async def one(config: SoakConfig) -> Report:
        run_dir = root / config.engine
        run_dir.mkdir(parents=True, exist_ok=True)
        with soak_database(config.engine, run_dir) as url:
            return await run_soak(dataclasses.replace(config, database_url=url), run_dir)

    return list(await asyncio.gather(*(one(config) for config in configs)))


def failures(report: Report) -> list[str]:
    """The counts that must be zero and are not, plus the kills that did not happen."""
    found = [f"soak_{name} {report.counts[name]}" for name in MUST_BE_ZERO if report.counts.get(name)]
    if report.counts.get("kills") != 2:
        found.append(f"soak_kills {report.counts.get('kills')}")
    return found
