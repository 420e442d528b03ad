"""Readiness: is this instance fit to take turns? The store answers, at the schema version this code knows, and
Graph and the sign-in authority answered lately (the clients that talk to them remember when) or answer a bounded
probe now. Every reason is fixed wording: no host, path, error text or data reaches the (public) answer."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from storage.migrations import SCHEMA_VERSION
from storage.store import Store, StoreError

log = logging.getLogger(__name__)

OK = "ok"


class Remote(Protocol):
    """A service Gradebot talks to, which remembers its last answer and can be asked once more."""

    @property
    def last_answer(self) -> float | None:
        """When (`time.monotonic()`) it last answered; None when it never did."""

    async def probe(self, timeout_s: float) -> str | None:
        """Ask it something cheap within `timeout_s`: None when it answered, else a short reason (no details)."""


@dataclass(frozen=True, slots=True)
class ReadinessLimits:
    """How /readyz spends its effort."""

    fresh_s: float = 60.0
    """An answer this recent is last known good: no probe."""
    timeout_s: float = 2.0
    """Each check gives up after this long."""
    reprobe_s: float = 5.0
    """A probe's result stands this long, so a poller (or many) cannot turn /readyz into a stream of probes."""


class Readiness:
    """The checks behind /readyz: `store`, `migrations`, then one per remote (e.g. `graph`, `identity`)."""

    def __init__(self, store: Store, remotes: Mapping[str, tuple[str, Remote]], limits: ReadinessLimits) -> None:
        """`remotes`: check name → (the service's name for people, the client that talks to it)."""
        self._store = store
        self._remotes = dict(remotes)
        self._limits = limits
        self._probed: dict[str, tuple[float, str | None]] = {}
        """Check name → when it was last probed and its problem then (None: it answered)."""
        self._locks = {name: asyncio.Lock() for name in remotes}
        self._failing: list[str] = []

    async def check(self) -> dict[str, str]:
        """Each check's name → "ok" or why not, all checked at once (so within about `timeout_s`)."""
        (store, migrations), remotes = await asyncio.gather(
            self._check_store(), asyncio.gather(*(self._check_remote(name) for name in self._remotes))
        )
        checks = {"store": store, "migrations": migrations, **dict(zip(self._remotes, remotes, strict=True))}
        failing = [name for name, verdict in checks.items() if verdict != OK]
        if failing != self._failing:  # a change is worth a line; every poll of a lasting state is not
            if failing:
                log.warning("not ready: %s", "; ".join(f"{name}: {checks[name]}" for name in failing))
            else:
                log.info("ready again")
            self._failing = failing
        return checks

    async def _check_store(self) -> tuple[str, str]:
        """(store, migrations)."""
        unknown = "unknown: the store did not answer"
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                version = await self._store.check()
        except TimeoutError:
            return f"the database did not answer within {self._limits.timeout_s:g} s", unknown
        except StoreError as exc:
            if "store" not in self._failing:  # the details go to the log (once), never into the answer
                log.warning("readiness: the store failed its check: %s", exc)
            return "the database cannot be reached", unknown
        if version > SCHEMA_VERSION:
            return OK, f"the database is at schema version {version}, newer than this Gradebot knows ({SCHEMA_VERSION})"
        if version < SCHEMA_VERSION:
            return OK, f"the database is at schema version {version}, older than this Gradebot needs"
        return OK, OK

    async def _check_remote(self, name: str) -> str:
        label, remote = self._remotes[name]
        if self._recent(remote.last_answer):
            return OK
        async with self._locks[name]:  # one probe at a time; those who waited share its result
            if self._recent(remote.last_answer):
                return OK
            at, problem = self._probed.get(name, (-math.inf, None))
            if time.monotonic() - at >= self._limits.reprobe_s:
                try:
                    async with asyncio.timeout(self._limits.timeout_s):
                        problem = await remote.probe(self._limits.timeout_s)
                except TimeoutError:
                    problem = "timeout"
                self._probed[name] = (time.monotonic(), problem)
        if problem is None:
            return OK
        last = remote.last_answer
        since = "it never answered" if last is None else f"its last answer was {time.monotonic() - last:.0f} s ago"
        return f"{label} did not answer ({problem}); {since}"

    def _recent(self, moment: float | None) -> bool:
        return moment is not None and time.monotonic() - moment < self._limits.fresh_s
