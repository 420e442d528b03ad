"""Our side of Graph's throttle budget: requests (and $batch items) beyond the window's limit wait, never fail."""

from __future__ import annotations

import asyncio

import pytest

from graph.connection import RequestBudget


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_units_within_the_limit_go_at_once_and_the_next_waits_for_the_window() -> None:
    time = FakeTime()
    budget = RequestBudget(10, 10.0, monotonic=time.monotonic, sleep=time.sleep)
    for _ in range(4):
        await budget.acquire(2)
        time.now += 1.0
    await budget.acquire(2)  # 10 units in the window now
    assert time.sleeps == [] and budget.used() == 10
    await budget.acquire(3)  # must wait until the batches sent at t=100 and t=101 leave the window (t=111)
    assert sum(time.sleeps) == pytest.approx(7.0)
    assert budget.used() <= 10


async def test_background_work_waits_until_the_budget_is_mostly_free() -> None:
    time = FakeTime()
    budget = RequestBudget(10, 10.0, monotonic=time.monotonic, sleep=time.sleep)
    await budget.acquire(8)
    await budget.wait_below(0.6)
    assert time.sleeps and budget.used() < 6
