"""Housekeeping: a small periodic task that deletes what Gradebot no longer needs — expired once-only claims,
expired sign-in flows and one-time codes, finished grade writes past their retention. Audit records are kept.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.store import Store, StoreError

log = logging.getLogger(__name__)

HOUSEKEEPING_INTERVAL_S = 3600.0


@dataclass(frozen=True, slots=True)
class HousekeepingReport:
    """How many rows one pass deleted, per kind."""

    claims: int
    sign_in_flows: int
    sign_in_codes: int
    finished_outbox: int


class Housekeeping:
    """One pass when started, then one every `interval_s` until stopped. Every instance may run it: each delete
    is idempotent, so no lease is needed."""

    def __init__(
        self,
        store: Store,
        *,
        outbox_retention: timedelta,
        clock: Callable[[], datetime],
        interval_s: float = HOUSEKEEPING_INTERVAL_S,
    ) -> None:
        self._store = store
        self._outbox_retention = outbox_retention
        self._clock = clock
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run_once(self, now: datetime) -> HousekeepingReport:
        report = HousekeepingReport(
            claims=await self._store.purge_claims(now),
            sign_in_flows=await self._store.purge_sign_in_flows(now),
            sign_in_codes=await self._store.purge_sign_in_codes(now),
            finished_outbox=await self._store.purge_finished_outbox(now - self._outbox_retention),
        )
        log.info(
            "housekeeping deleted %d expired claims, %d sign-in flows, %d sign-in codes, %d finished grade writes",
            report.claims,
            report.sign_in_flows,
            report.sign_in_codes,
            report.finished_outbox,
        )
        return report

    async def _pass(self) -> None:
        try:
            await self.run_once(self._clock())
        except StoreError as exc:  # a database blip: the next pass deletes what this one could not
            log.warning("housekeeping pass failed: %s", exc)

    async def start(self) -> None:
        """Run one pass now (so a restart begins tidy), then keep running every `interval_s`."""
        await self._pass()

        async def loop() -> None:
            while True:
                await asyncio.sleep(self._interval_s)
                await self._pass()

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
