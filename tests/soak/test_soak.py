"""The bounded soak on SQLite and PostgreSQL at once (`python -m tests.soak` is the same run; `--long` the full one):
100 grade writes per engine under 20% Graph faults with Gradebot killed twice; nothing lost, nothing written twice."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.soak.databases import REQUIRE_POSTGRES, Engine, postgres_unreachable
from tests.soak.driver import Report
from tests.soak.run import failures, run_engines, soak_config

SOAK_TIMEOUT_S = 900
"""pytest-timeout's limit for the first test, which also runs both soaks (a few minutes; never asserted)."""


@pytest.fixture(scope="module")
def soak_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Report]:
    """Both engines' soaks, run once for the module, concurrently (PostgreSQL only when its server answers)."""
    engines: list[Engine] = ["sqlite"] if postgres_unreachable() else ["sqlite", "postgres"]
    root: Path = tmp_path_factory.mktemp("soak")
    reports = asyncio.run(run_engines([soak_config(engine) for engine in engines], root))
    return {report.engine: report for report in reports}


@pytest.mark.timeout(SOAK_TIMEOUT_S)
@pytest.mark.parametrize("engine", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_grade_is_the_last_typed_and_nothing_is_written_twice(
    engine: Engine, soak_reports: dict[str, Report]
) -> None:
    if engine == "postgres" and (reason := postgres_unreachable()) is not None:
        if REQUIRE_POSTGRES:
            pytest.fail(f"GRADEBOT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    report = soak_reports[engine]
    print("\n".join([f"soak_engine {engine}", *report.lines()]))
    counts = report.counts
    assert counts["writes"] == soak_config(engine).writes and counts["kills"] == 2
    assert (counts["lost"], counts["applied_twice"], counts["returns_twice"]) == (0, 0, 0), "\n".join(report.problems)
    assert failures(report) == [], "\n".join(report.problems)
