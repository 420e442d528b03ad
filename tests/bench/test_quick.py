"""`python -m bench --quick` as CI runs it: every registered scenario's quick measurement passes its count and
equal-results checks (an AssertionError fails the test) and prints `name value unit` lines; timings are never
asserted."""

from __future__ import annotations

import importlib
import re
from typing import cast

import pytest

from bench.__main__ import SCENARIOS, machine, main, table
from bench.figures import Figure, Scenario

LINE = re.compile(r"[a-z][a-z0-9_]* -?[0-9]+(\.[0-9]+)? [a-z]+")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_quick_measurement_passes_its_checks_and_prints_name_value_unit(name: str) -> None:
    scenario = cast(Scenario, importlib.import_module(SCENARIOS[name]))
    figures = await scenario.measure(True)
    assert figures and all(figure.name.startswith(f"{name}_") for figure in figures)
    assert [figure.line() for figure in figures if not LINE.fullmatch(figure.line())] == []
    rendered = table({name: figures}, machine())
    assert all(figure.name in rendered for figure in figures) and "cores" in rendered


def test_a_figure_line_and_the_table_show_value_target_and_verdict() -> None:
    figures = [Figure("p1_round_trips", 3.46, "rtt", "<= 4", True), Figure("p1_seconds", 0.5, "s", "<= 0.45", False)]
    assert [figure.line() for figure in figures] == ["p1_round_trips 3.46 rtt", "p1_seconds 0.5 s"]
    rows = table({"p1": figures}, {"cores": 2, "cpu": "x", "python": "3.11"}).splitlines()
    assert rows[2].split(" | ") == ["p1_round_trips", "3.46 ", "rtt ", "<= 4   ", "yes"]
    assert rows[3].split(" | ")[-1] == "NO"
    assert rows[-1] == "machine: 2 cores, x, Python 3.11"


def test_an_unknown_scenario_is_refused() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["nonsense"])
    assert exited.value.code == 2
