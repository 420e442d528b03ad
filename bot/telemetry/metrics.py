"""Gradebot's own metrics on OpenTelemetry's API (turns, outbox depth and oldest age, sweep duration, digests sent;
Graph's 429s are counted in graph/connection.py): they cost next to nothing and go nowhere until bot.telemetry.export
turns telemetry on. Each instrument carries its description; README's "What to watch" gives the alert it feeds."""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import ParamSpec, Protocol, TypeVar

from opentelemetry import metrics
from opentelemetry.metrics import Observation

_meter = metrics.get_meter("gradebot")

TURNS = _meter.create_counter("gradebot.turns", unit="{turn}", description="Turns handled, by operation and outcome.")
SWEEP_DURATION = _meter.create_histogram(
    "gradebot.reminders.sweep.duration", unit="s", description="How long one reminder sweep took."
)
DIGESTS_SENT = _meter.create_counter(
    "gradebot.reminders.digests_sent", unit="{digest}", description="Reminder digests delivered to teachers."
)


class OutboxGauges:
    """The outbox's depth and the age of its oldest unfinished write, as the outbox worker last read them from the
    store (a gauge's callback cannot wait for a database, so the worker's tick reads and the callbacks report)."""

    def __init__(self) -> None:
        self.observed = False
        """True once telemetry is on: only then does the worker spend a query on these numbers."""
        self.depth: list[Observation] = []
        self.oldest_age: list[Observation] = []

    def update(self, depth: int, oldest: datetime | None, now: datetime) -> None:
        self.depth = [Observation(depth)]
        self.oldest_age = [Observation(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)]


OUTBOX = OutboxGauges()
_meter.create_observable_gauge(
    "gradebot.outbox.depth",
    callbacks=[lambda _options: OUTBOX.depth],
    unit="{entry}",
    description="Grade writes recorded but not finished (pending or in flight).",
)
_meter.create_observable_gauge(
    "gradebot.outbox.oldest_age",
    callbacks=[lambda _options: OUTBOX.oldest_age],
    unit="s",
    description="Seconds since the oldest unfinished grade write was recorded (0 when none).",
)


class SweepResult(Protocol):
    """What a reminder sweep reports (bot.reminders.sweep.SweepReport)."""

    @property
    def held_lease(self) -> bool: ...
    @property
    def sent(self) -> Sequence[str]: ...


P = ParamSpec("P")
R = TypeVar("R", bound=SweepResult)


def timed_sweep(run: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Measure each sweep (`gradebot.lease_held` says whether this instance was the sender) and count its digests."""

    @functools.wraps(run)
    async def timed(*args: P.args, **kwargs: P.kwargs) -> R:
        started = time.perf_counter()
        report = await run(*args, **kwargs)
        SWEEP_DURATION.record(time.perf_counter() - started, {"gradebot.lease_held": report.held_lease})
        if report.sent:
            DIGESTS_SENT.add(len(report.sent))
        return report

    return timed
