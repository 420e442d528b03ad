"""Background work: the `Worker` protocol (the outbox, reminders, the janitor) and the one runner that ticks each
worker on its interval, survives a bad tick and stops them all together, in bounded time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

log = logging.getLogger(__name__)

STOP_TIMEOUT_S = 5.0
"""How long the workers together may take to finish or hand back what they hold when Gradebot stops."""


class Worker(Protocol):
    """A loop body: `tick(now)` does one round of work; the runner calls it every `interval_s` seconds."""

    name: str

    @property
    def interval_s(self) -> float: ...
    async def tick(self, now: datetime) -> object: ...

    async def stop(self) -> None:
        """Finish or hand back what this worker holds (in-flight writes, a lease)."""


class Workers:
    """Starts one task per worker, ticking after each interval, and stops them all together."""

    def __init__(self, workers: Sequence[Worker], clock: Callable[[], datetime]) -> None:
        self._workers = list(workers)
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(worker), name=worker.name) for worker in self._workers]

    @property
    def running(self) -> list[str]:
        """The workers whose loop is running."""
        return [task.get_name() for task in self._tasks if not task.done()]

    async def _run(self, worker: Worker) -> None:
        while True:
            await asyncio.sleep(worker.interval_s)
            try:
                await worker.tick(self._clock())
            except Exception:  # a bad tick (a database blip) must not end the loop
                log.exception("%s tick failed", worker.name)

    async def stop(self) -> None:
        """End every loop (a tick under way is cancelled), then let every worker finish or hand back what it holds,
        together, within STOP_TIMEOUT_S. A worker that fails or overruns (its database gone) is logged and keeps
        no other from stopping; what it held is taken over by another instance when its lease runs out."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await asyncio.gather(*(self._stop(worker) for worker in self._workers))

    async def _stop(self, worker: Worker) -> None:
        try:
            async with asyncio.timeout(STOP_TIMEOUT_S):
                await worker.stop()
        except TimeoutError:
            log.warning("%s did not stop within %g s", worker.name, STOP_TIMEOUT_S)
        except Exception:  # a failed stop must not keep the other workers running
            log.exception("%s stop failed", worker.name)
