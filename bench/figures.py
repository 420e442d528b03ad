"""A benchmark's result: one figure per line (`name value unit`), each against its target, and the scenario shape
every `bench/<scenario>.py` module follows so `python -m bench` can run it."""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Figure:
    """One measured number, e.g. Figure("p1_round_trips", 4, "rtt", "<= 4", True)."""

    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None

    def line(self) -> str:
        """The figure as CI and people read it: `name value unit`."""
        value = f"{self.value:.0f}" if float(self.value).is_integer() else f"{self.value:.2f}".rstrip("0")
        return f"{self.name} {value} {self.unit}"


class Scenario(Protocol):
    """What a scenario module exposes: TITLE, and measure(quick) returning its figures.

    quick=True must finish in seconds and raise AssertionError when a count or an equal-results check fails; it never
    asserts a time."""

    TITLE: str

    def measure(self, quick: bool) -> Awaitable[list[Figure]]: ...
