"""The durable queue of Graph writes: each is recorded in the store first, applied (within the invoke's deadline, else
in the background), retried with backoff, after a restart too, and concluded with an audit record. What a write does
against Graph is its feature's `Executor`; this module only gets it done, once."""

from __future__ import annotations

import asyncio
import logging
import random
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.kernel.errors import SignInRequiredError, SsoTokenError
from bot.telemetry.metrics import OUTBOX
from graph.client import EducationClient
from graph.connection import GraphHttp, TokenProvider
from graph.errors import GraphAuthError, GraphError, GraphThrottledError, GraphUnavailableError
from storage.records import NewAuditRecord, NewOutboxEntry, OutboxEntry, OutboxFailure
from storage.store import Store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 60
MAX_BACKOFF = timedelta(minutes=15)
SIGN_IN_BACKOFF = timedelta(minutes=10)
LEASE = timedelta(seconds=90)
"""How long a claimed write stays this instance's before another may take it over."""
STOP_GRACE_S = 3.0
"""How long a stopping instance lets writes in flight land before it hands them back."""
INVOKE_BUDGET_S = 2.5
"""Teams waits ~15 s for an invoke; Gradebot answers within 3 s and finishes slow writes in the background."""

Result = dict[str, Any]
"""What a finished write did: `before` and `after` snapshots for the audit log (and anything its feature adds)."""


class RetryLaterError(Exception):
    """This attempt did not finish; try again at `delay` from now (or with backoff)."""

    def __init__(self, reason: str, delay: timedelta | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class GiveUpError(Exception):
    """The write cannot succeed as asked (refused by Graph, changed by someone else, no such submission)."""

    def __init__(self, reason: str, conflict: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.conflict = conflict


class Executor(Protocol):
    """What writes of one feature mean: applied one at a time, or a group of one assignment at once."""

    async def execute(self, client: EducationClient, entry: OutboxEntry) -> Result:
        """Apply the entry; raise RetryLaterError or GiveUpError (Graph errors are mapped by the queue)."""

    async def execute_group(
        self, client: EducationClient, entries: Sequence[OutboxEntry]
    ) -> dict[int, Result | Exception]:
        """Apply entries of one assignment together ($batch); each entry id → its result or stop."""

    async def completed(self, entry: OutboxEntry, result: Result, now: datetime) -> None:
        """The write is done and audited (e.g. an undo marks the save it undid)."""


Settled = Callable[[OutboxEntry], Awaitable[bool]]
"""Tells the teacher how an entry ended; False when that could not be done now (try again later)."""


@dataclass(eq=False)
class Outbox:
    """Records writes, applies them to Graph (in-turn within a deadline, else in the background) and concludes them.

    It is also the worker that retries due entries: every instance may tick; a lease per entry picks one applier.
    """

    name = "outbox"
    interval_s = 5.0

    store: Store
    http: GraphHttp
    providers: Callable[[str, str], TokenProvider]
    executor: Executor
    _: KW_ONLY
    owner: str
    clock: Callable[[], datetime]
    on_settled: Settled
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _concluding: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _answered_late: set[int] = field(default_factory=set, init=False)
    _locks: weakref.WeakValueDictionary[str, asyncio.Lock] = field(
        default_factory=weakref.WeakValueDictionary, init=False
    )

    async def record(self, new: NewOutboxEntry) -> OutboxEntry:
        """Write the intent durably before anything touches Graph; a replayed key returns the first entry. For the
        invoke budget it is this instance's to apply: other instances' ticks take it only after that."""
        now = self.clock()
        return (await self.store.enqueue_outbox(new, now, now + timedelta(seconds=INVOKE_BUDGET_S)))[0]

    async def apply_within(self, entry: OutboxEntry, token: TokenProvider) -> OutboxEntry:
        """Apply `entry` now, waiting at most INVOKE_BUDGET_S; a slower write carries on in the background and is
        reported to `on_settled` when it finishes."""
        if entry.finished:
            return entry
        return (await self._within([entry], self.attempt(entry.id, token)))[0]

    async def apply_group(self, entries: list[OutboxEntry], token: TokenProvider) -> list[OutboxEntry]:
        """Apply entries of one assignment together, waiting at most INVOKE_BUDGET_S."""
        return await self._within(entries, self._group(entries, token))

    async def _within(self, entries: list[OutboxEntry], work: Awaitable[object]) -> list[OutboxEntry]:
        """The entries as `work` left them after at most INVOKE_BUDGET_S; those it finishes later go to `on_settled`."""
        task = asyncio.ensure_future(self._then_settle_late(entries, work))
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        try:
            await asyncio.wait_for(asyncio.shield(task), INVOKE_BUDGET_S)
        except TimeoutError:
            self._answered_late.update(e.id for e in entries)
        current = [await self.store.get_outbox(e.id) or e for e in entries]
        for entry in current:
            if not entry.finished:  # the teacher is told "Saving…": they are owed the end, even across a restart
                await self.store.owe_notice(entry.id, self.clock())
        return current

    async def _then_settle_late(self, entries: list[OutboxEntry], work: Awaitable[object]) -> None:
        await work
        for entry in entries:
            if entry.id in self._answered_late:
                final = await self.store.get_outbox(entry.id)
                if final is not None and final.finished:
                    self._answered_late.discard(entry.id)
                    await self._settled(final)

    async def _group(self, entries: list[OutboxEntry], token: TokenProvider) -> None:
        now = self.clock()
        claimed = [c for e in entries if (c := await self.store.claim_outbox(e.id, self.owner, now, LEASE))]
        if not claimed:
            return
        try:
            results = await self.executor.execute_group(EducationClient(self.http, token), claimed)
        except (GraphError, SignInRequiredError, SsoTokenError) as exc:
            results = dict.fromkeys((entry.id for entry in claimed), _stop_for(exc))
        for entry in claimed:
            await self._conclude_fully(entry, results[entry.id])

    async def attempt(self, entry_id: int, token: TokenProvider | None = None) -> None:
        """Claim the entry and try once (not when it is finished, gone, or leased: another attempt holds it)."""
        entry = await self.store.claim_outbox(entry_id, self.owner, self.clock(), LEASE)
        if entry is None:
            return
        client = EducationClient(self.http, token or self.providers(entry.tenant_id, entry.teacher_id))
        # Writes to one submission run one at a time, in order: a slow older write must not land after a newer one.
        # (A submission's lock is in `_locks` while a write holds or awaits it; across instances the claim waits.)
        async with self._locks.setdefault(entry.submission_id, asyncio.Lock()):
            try:
                result: Result | Exception = await self.executor.execute(client, entry)
            except (RetryLaterError, GiveUpError) as stop:
                result = stop
            except (GraphError, SignInRequiredError, SsoTokenError) as exc:
                result = _stop_for(exc)
            await self._conclude_fully(entry, result)

    async def _conclude_fully(self, entry: OutboxEntry, result: Result | Exception) -> None:
        """Conclude even when the attempt is cancelled meanwhile (the instance is stopping): an entry marked done
        without its audit record would leave a hole in the log. `stop` waits for these."""
        task: asyncio.Task[None] = asyncio.ensure_future(self._conclude(entry, result))
        self._concluding.add(task)
        task.add_done_callback(self._concluding.discard)
        await asyncio.shield(task)

    async def _conclude(self, entry: OutboxEntry, result: Result | Exception) -> None:
        """Record how an attempt ended: done (+ audit), retry later with backoff, or stopped for good."""
        now = self.clock()
        if isinstance(result, RetryLaterError):
            if entry.attempts >= MAX_ATTEMPTS:
                await self.store.fail_outbox(entry.id, self.owner, f"gave up: {result.reason}", now)
            else:
                delay = result.delay or _backoff(entry.attempts)
                await self.store.retry_outbox(entry.id, self.owner, result.reason, now + delay, now)
            log.info("outbox %s (%s) will retry: %s", entry.id, entry.kind, result.reason)
        elif isinstance(result, GiveUpError):
            status: OutboxFailure = "conflict" if result.conflict else "failed"
            await self.store.fail_outbox(entry.id, self.owner, result.reason, now, status=status)
            log.info("outbox %s (%s) stopped: %s", entry.id, entry.kind, status)
        elif isinstance(result, Exception):
            raise result
        elif await self.store.complete_outbox(entry.id, self.owner, result, now) and not result.get("superseded"):
            action = str(entry.payload.get("auditAction") or entry.kind)
            ids = (entry.teacher_id, entry.tenant_id, entry.class_id, entry.assignment_id, entry.submission_id)
            before, after = result.get("before", {}), result.get("after", {})
            await self.store.record_audit(NewAuditRecord(now, *ids, action, before, after, entry.idempotency_key))
            await self.executor.completed(entry, result, now)

    # Background: due entries (retries, and everything left over by a restart or a crashed instance).

    async def tick(self, now: datetime) -> int:
        """Attempt every due entry once, then tell the teachers owed a notice how their writes ended; returns how
        many entries were attempted."""
        due = await self.store.due_outbox(now, 50)
        for entry in due:
            await self.attempt(entry.id)
        for entry_id in await self.store.owed_notices(50):
            owed = await self.store.get_outbox(entry_id)
            if owed is None:
                await self.store.settle_notice(entry_id)
            elif owed.finished:
                await self._settled(owed)
        if OUTBOX.observed:  # telemetry on: the depth and age gauges report what this tick read
            backlog = await self.store.outbox_backlog()
            OUTBOX.update(backlog.depth, backlog.oldest_created_at, now)
        return len(due)

    async def stop(self) -> None:
        """Give writes in flight STOP_GRACE_S to land (they were promised to the teacher), cancel the rest, let
        every conclusion under way finish, then hand back whatever this instance still holds: its lease cut to
        Graph's read timeout, after which any instance resumes it (a request cut off may be applied until then, and
        no newer write to the submission may land before it; the write is re-checked against Graph before it is
        sent again, as after a crash). Teachers told "Saving…" stay owed their notice in the store."""
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=STOP_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        if self._concluding:
            await asyncio.gather(*self._concluding, return_exceptions=True)
        now = self.clock()
        released = await self.store.release_outbox(self.owner, now, now + timedelta(seconds=self.http.read_timeout))
        if released:
            log.info("outbox handed back %d writes in flight: %s", len(released), ", ".join(map(str, released)))

    def _finished(self, task: asyncio.Task[Any]) -> None:
        """A write carried on past its answer has no one awaiting it: a failure is logged here (the entry's lease
        runs out and the queue tries again)."""
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("outbox background write failed (%s)", type(error).__name__)

    async def _settled(self, entry: OutboxEntry) -> None:
        if await self.on_settled(entry):
            await self.store.settle_notice(entry.id)


def _stop_for(exc: GraphError | SignInRequiredError | SsoTokenError) -> RetryLaterError | GiveUpError:
    """What a failed attempt means for the queue: transient (throttled, unavailable, no sign-in) or final."""
    if isinstance(exc, GraphThrottledError):
        return RetryLaterError("Graph is throttling", seconds(exc.retry_after))
    if isinstance(exc, GraphUnavailableError):
        return RetryLaterError("Graph is unavailable", seconds(exc.retry_after))
    if isinstance(exc, SignInRequiredError | SsoTokenError | GraphAuthError):
        return RetryLaterError("the teacher must sign in again", SIGN_IN_BACKOFF)
    return GiveUpError(f"Graph refused the write ({exc.status} {exc.inner_code or exc.code})")


def _backoff(attempts: int) -> timedelta:
    delay = min(MAX_BACKOFF.total_seconds(), 2.0 ** min(attempts, 12))
    return timedelta(seconds=delay * (0.5 + random.random() / 2))


def seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None
