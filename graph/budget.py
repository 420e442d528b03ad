"""Graph's throttle budget kept on our side: a sliding window of requests sent (each `$batch` item counts), so a
busy instance slows itself down instead of collecting 429s — and background work can leave room for teachers."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable

ASSIGNMENTS_LIMIT = 350
"""Graph's documented assignment-service budget per app per tenant, per 10 s."""


class RequestBudget:
    """At most `limit` request units per `window_s`; `acquire` waits (never fails) until the units fit."""

    def __init__(
        self,
        limit: int,
        window_s: float = 10.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError("a request budget needs a positive limit and window")
        self.limit = limit
        self.window_s = window_s
        self._monotonic = monotonic
        self._sleep = sleep
        self._sent: deque[tuple[float, int]] = deque()
        self._used = 0
        self._lock = asyncio.Lock()

    def used(self) -> int:
        """Units spent within the current window."""
        self._expire(self._monotonic())
        return self._used

    def _expire(self, now: float) -> None:
        while self._sent and self._sent[0][0] <= now - self.window_s:
            self._used -= self._sent.popleft()[1]

    async def acquire(self, units: int = 1) -> None:
        """Take `units` (a `$batch` of n items costs n), waiting for older requests to leave the window."""
        units = max(1, min(units, self.limit))
        async with self._lock:
            while True:
                now = self._monotonic()
                self._expire(now)
                if self._used + units <= self.limit:
                    self._sent.append((now, units))
                    self._used += units
                    return
                await self._sleep(max(self._sent[0][0] + self.window_s - now, 0.01))

    async def wait_below(self, share: float) -> None:
        """Wait until less than `share` of the budget is in use (background work yields to interactive work)."""
        while True:
            now = self._monotonic()
            self._expire(now)
            if self._used < self.limit * share or not self._sent:
                return
            await self._sleep(max(self._sent[0][0] + self.window_s - now, 0.01))
