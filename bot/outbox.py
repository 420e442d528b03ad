"""The grade outbox worker: every Graph write is recorded in the store first, then applied, retried and confirmed.

Nothing a teacher typed is lost: a write that Graph refuses for now (429, 5xx, timeouts, no token) stays pending and
is retried with backoff — after a restart too — until Graph has it or it fails for a reason the teacher must see.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.auth import SignInRequiredError, SsoTokenError
from graph.client import EducationClient
from graph.connection import GraphHttp, TokenProvider
from graph.errors import (
    GraphAuthError,
    GraphError,
    GraphThrottledError,
    GraphUnavailableError,
)
from graph.models import (
    Outcomes,
    RubricSelection,
    Submission,
    SubmissionStatus,
    format_datetime,
    parse_datetime,
)
from graph.patches import FeedbackPatch, OutcomePatch, PointsPatch, RubricPatch
from graph.paths import SubmissionRef
from graph.progress import has_unreturned_grade
from storage.records import NewAuditRecord, NewOutboxEntry, OutboxEntry, OutboxFailure
from storage.store import Store

log = logging.getLogger(__name__)

GRADE = "grade"
RETURN = "return"
REASSIGN = "reassign"
EXCUSE = "excuse"
ACTION_KINDS = (RETURN, REASSIGN, EXCUSE)
UNDOABLE = (GRADE,)
MAX_ATTEMPTS = 60
MAX_BACKOFF = timedelta(minutes=15)
SIGN_IN_BACKOFF = timedelta(minutes=10)
RETURN_CLOCK_SKEW = timedelta(seconds=30)
"""How far Graph's clock may lag Gradebot's when telling whether a return happened after an entry was recorded."""
_TARGET = {RETURN: SubmissionStatus.RETURNED, REASSIGN: SubmissionStatus.REASSIGNED, EXCUSE: SubmissionStatus.EXCUSED}

Clock = Callable[[], datetime]
ProviderFactory = Callable[[str, str], TokenProvider]
Settled = Callable[[OutboxEntry], Awaitable[None]]


class _RetryLaterError(Exception):
    """This attempt did not finish; try again at `delay` from now."""

    def __init__(self, reason: str, delay: timedelta | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class _GiveUpError(Exception):
    """The write cannot succeed as asked (refused by Graph, changed by someone else, no such submission)."""

    def __init__(self, reason: str, conflict: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.conflict = conflict


def snapshot(outcomes: Outcomes | None, submission: Submission | None = None) -> dict[str, Any]:
    """The grade as JSON for the audit log: working and published points/feedback/levels, and the status."""
    view: dict[str, Any] = {}
    if submission is not None:
        view["status"] = submission.status.value
    if outcomes is None:
        return view
    if outcomes.points is not None:
        grade = outcomes.points.points
        published = outcomes.points.published_points
        view["points"] = grade.points if grade else None
        view["publishedPoints"] = published.points if published else None
    if outcomes.feedback is not None:
        feedback = outcomes.feedback.feedback
        published_feedback = outcomes.feedback.published_feedback
        view["feedback"] = feedback.text if feedback else None
        view["publishedFeedback"] = published_feedback.text if published_feedback else None
    if outcomes.rubric is not None:
        view["levels"] = [[s.quality_id, s.column_id] for s in outcomes.rubric.selected_levels]
    stamps = [
        outcome.last_modified_at
        for outcome in (outcomes.points, outcomes.feedback, outcomes.rubric)
        if outcome is not None and outcome.last_modified_at is not None
    ]
    view["modifiedAt"] = format_datetime(max(stamps)) if stamps else None
    return view


def working_grade(view: Mapping[str, Any]) -> dict[str, Any]:
    """The working grade (points, feedback, rubric levels) of a `snapshot`, normalized for comparing two of them."""
    points = view.get("points")
    levels = sorted((str(q), str(c)) for q, c in view.get("levels") or ())
    return {
        "points": None if points is None else float(points),
        "feedback": view.get("feedback") or None,
        "levels": [list(level) for level in levels],
    }


def changed_by_someone_else(outcomes: Outcomes | None, since: datetime | None, teacher_id: str) -> bool:
    """True when anyone but this teacher modified an outcome after `since` — or at all, when the teacher's card
    showed no grade yet (`since` None): a concurrent grader's work must not be silently overwritten."""
    if outcomes is None:
        return False
    for outcome in (outcomes.points, outcomes.feedback, outcomes.rubric):
        if outcome is None or outcome.last_modified_at is None:
            continue
        if since is not None and outcome.last_modified_at <= since:
            continue
        by = outcome.last_modified_by
        if by is None or by.user_id != teacher_id:
            return True
    return False


@dataclass(frozen=True, slots=True)
class GradeChange:
    """What a `grade` entry writes; None means "leave as is"."""

    points: Decimal | None
    feedback: str | None
    levels: tuple[RubricSelection, ...]
    known_modified: datetime | None
    force: bool
    clear: tuple[str, ...] = ()
    """Outcomes to empty ("points", "feedback"): undo of a first grade puts the submission back to ungraded."""
    expect: Mapping[str, Any] | None = None
    """The working grade (`working_grade`) Graph must still hold for this write to go ahead — an undo expects the
    grade its teacher wrote; anything else is a conflict for the teacher to resolve, never overwritten."""

    def payload(self) -> dict[str, Any]:
        return {
            "points": str(self.points) if self.points is not None else None,
            "feedback": self.feedback,
            "levels": [[s.quality_id, s.column_id] for s in self.levels],
            "knownModified": format_datetime(self.known_modified) if self.known_modified else None,
            "force": self.force,
            "clear": list(self.clear),
            "expect": dict(self.expect) if self.expect is not None else None,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> GradeChange:
        points = payload.get("points")
        return cls(
            points=Decimal(str(points)) if points is not None else None,
            feedback=payload.get("feedback"),
            levels=tuple(RubricSelection(str(q), str(c)) for q, c in payload.get("levels") or ()),
            known_modified=parse_datetime(payload.get("knownModified")),
            force=bool(payload.get("force")),
            clear=tuple(str(name) for name in payload.get("clear") or () if name in ("points", "feedback")),
            expect=working_grade(expect) if isinstance(expect := payload.get("expect"), Mapping) else None,
        )


class GradeWriter:
    """Records writes, applies them to Graph (in-turn within a deadline, else in the background) and confirms them."""

    def __init__(
        self,
        store: Store,
        http: GraphHttp,
        providers: ProviderFactory,
        *,
        owner: str,
        clock: Clock,
        on_settled: Settled | None = None,
        lease: timedelta = timedelta(seconds=90),
        confirm_attempts: int = 6,
        confirm_delay_s: float = 0.25,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._store = store
        self._http = http
        self._providers = providers
        self._owner = owner
        self._clock = clock
        self.on_settled = on_settled
        """Called with each entry that finished after its invoke was answered (to update the teacher's card)."""
        self._lease = lease
        self._confirm_attempts = confirm_attempts
        self._confirm_delay_s = confirm_delay_s
        self._sleep = sleep
        self._tasks: set[asyncio.Task[OutboxEntry]] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._answered_late: set[int] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._loop_task: asyncio.Task[None] | None = None

    async def record(self, new: NewOutboxEntry) -> tuple[OutboxEntry, bool]:
        """Write the intent durably before anything touches Graph; a replayed key returns the first entry."""
        return await self._store.enqueue_outbox(new, self._clock())

    async def apply_within(self, entry: OutboxEntry, token: TokenProvider | None, deadline_s: float) -> OutboxEntry:
        """Apply `entry` now, waiting at most `deadline_s`; a slower write carries on in the background."""
        if entry.finished:
            return entry
        task = asyncio.get_running_loop().create_task(self.attempt(entry.id, token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        try:
            return await asyncio.wait_for(asyncio.shield(task), deadline_s)
        except TimeoutError:
            self._answered_late.add(entry.id)
            task.add_done_callback(self._late_done)
            current = await self._store.get_outbox(entry.id)
            return current or entry

    async def apply_many(
        self, entries: list[OutboxEntry], token: TokenProvider | None, deadline_s: float
    ) -> list[OutboxEntry]:
        """Apply many `return` entries of one assignment in bulk ($batch), waiting at most `deadline_s`."""
        task = asyncio.get_running_loop().create_task(self._returns(entries, token))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        try:
            await asyncio.wait_for(asyncio.shield(task), deadline_s)
        except TimeoutError:
            self._answered_late.update(e.id for e in entries)
        current = [await self._store.get_outbox(e.id) for e in entries]
        return [c for c in current if c is not None]

    async def _returns(self, entries: list[OutboxEntry], token: TokenProvider | None) -> None:
        now = self._clock()
        claimed = [c for e in entries if (c := await self._store.claim_outbox(e.id, self._owner, now, self._lease))]
        if not claimed:
            return
        first = claimed[0]
        client = EducationClient(self._http, token or self._providers(first.tenant_id, first.teacher_id))
        try:
            before = {s.id: s for s in await client.list_submissions(first.class_id, first.assignment_id)}
            todo = [e for e in claimed if e.submission_id in before and not _landed(before[e.submission_id], e)]
            settled = await client.return_many([(e.class_id, e.assignment_id, e.submission_id) for e in todo])
        except GraphError as exc:
            for entry in claimed:
                await self._conclude(entry, _RetryLaterError(f"Graph failed ({exc.status})", _seconds(exc.retry_after)))
            return
        outcome: dict[int, dict[str, Any] | Exception] = {}
        for entry, result in zip(todo, settled, strict=True):
            error = result.error
            if isinstance(error, GraphThrottledError | GraphUnavailableError):
                outcome[entry.id] = _RetryLaterError("Graph is busy", _seconds(error.retry_after))
            elif error is not None:
                outcome[entry.id] = _GiveUpError(f"Graph refused the write ({error.status} {error.code})")
        for entry in claimed:
            if entry.submission_id not in before:
                outcome[entry.id] = _GiveUpError("the submission no longer exists")
        waiting = [e for e in claimed if e.id not in outcome]
        for attempt in range(self._confirm_attempts):
            if not waiting:
                break
            current = {s.id: s for s in await client.list_submissions(first.class_id, first.assignment_id)}
            for entry in list(waiting):
                now_sub = current.get(entry.submission_id)
                if now_sub is not None and _landed(now_sub, entry):
                    old = before[entry.submission_id]
                    outcome[entry.id] = {
                        "before": snapshot(old.outcomes, old),
                        "after": snapshot(now_sub.outcomes, now_sub),
                    }
                    waiting.remove(entry)
            if waiting and attempt + 1 < self._confirm_attempts:
                await self._sleep(self._confirm_delay_s * (attempt + 1))
        for entry in waiting:
            outcome[entry.id] = _RetryLaterError("Graph has not confirmed the return yet", timedelta(seconds=2))
        for entry in claimed:
            await self._conclude(entry, outcome[entry.id])
            if entry.id in self._answered_late:
                final = await self._store.get_outbox(entry.id)
                if final is not None and final.finished:
                    self._answered_late.discard(entry.id)
                    await self._settled(final)

    def _late_done(self, task: asyncio.Task[OutboxEntry]) -> None:
        if task.cancelled() or task.exception() is not None:
            return
        entry = task.result()
        if entry.finished and entry.id in self._answered_late:
            self._answered_late.discard(entry.id)
            self._spawn(self._settled(entry))

    def _spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> Any:
            return await coro

        task = asyncio.get_running_loop().create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _settled(self, entry: OutboxEntry) -> None:
        if self.on_settled is not None:
            try:
                await self.on_settled(entry)
            except Exception:  # a failed card update must not stop the worker; the write itself is done
                log.exception("could not report outbox entry %s to the teacher", entry.id)

    async def attempt(self, entry_id: int, token: TokenProvider | None = None) -> OutboxEntry:
        """Claim the entry and try once; returns its state afterwards (whoever else may hold it)."""
        now = self._clock()
        entry = await self._store.claim_outbox(entry_id, self._owner, now, self._lease)
        if entry is None:
            current = await self._store.get_outbox(entry_id)
            if current is None:
                raise KeyError(entry_id)
            return current
        provider = token or self._providers(entry.tenant_id, entry.teacher_id)
        client = EducationClient(self._http, provider)
        # Writes to one submission run one at a time, in order: a slow older write must not land after a newer one.
        async with self._submission_lock(entry.submission_id):
            try:
                result: dict[str, Any] | Exception = await self._execute(client, entry)
            except (_RetryLaterError, _GiveUpError) as stop:
                result = stop
            await self._conclude(entry, result)
        final = await self._store.get_outbox(entry.id)
        return final or entry

    @contextlib.asynccontextmanager
    async def _submission_lock(self, submission_id: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(submission_id, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(submission_id) is lock:
                del self._locks[submission_id]

    async def _conclude(self, entry: OutboxEntry, result: dict[str, Any] | Exception) -> None:
        """Record how an attempt ended: done (+ audit), retry later with backoff, or stopped for good."""
        now = self._clock()
        if isinstance(result, _RetryLaterError):
            if entry.attempts >= MAX_ATTEMPTS:
                await self._store.fail_outbox(entry.id, self._owner, f"gave up: {result.reason}", now)
            else:
                delay = result.delay or self._backoff(entry.attempts)
                await self._store.retry_outbox(entry.id, self._owner, result.reason, now + delay, now)
            log.info("outbox %s (%s) will retry: %s", entry.id, entry.kind, result.reason)
        elif isinstance(result, _GiveUpError):
            status: OutboxFailure = "conflict" if result.conflict else "failed"
            await self._store.fail_outbox(entry.id, self._owner, result.reason, now, status=status)
            log.info("outbox %s (%s) stopped: %s", entry.id, entry.kind, status)
        elif isinstance(result, Exception):
            raise result
        elif await self._store.complete_outbox(entry.id, self._owner, result, now) and not result.get("superseded"):
            await self._store.record_audit(
                NewAuditRecord(
                    at=now,
                    teacher_id=entry.teacher_id,
                    tenant_id=entry.tenant_id,
                    class_id=entry.class_id,
                    assignment_id=entry.assignment_id,
                    submission_id=entry.submission_id,
                    action=str(entry.payload.get("auditAction") or entry.kind),
                    before=result.get("before", {}),
                    after=result.get("after", {}),
                    outbox_key=entry.idempotency_key,
                )
            )
            undoes = entry.payload.get("undoes")
            if isinstance(undoes, int) and not isinstance(undoes, bool):
                await self._store.mark_undone(undoes, now)

    def _backoff(self, attempts: int) -> timedelta:
        seconds = min(MAX_BACKOFF.total_seconds(), 2.0 ** min(attempts, 12))
        return timedelta(seconds=seconds * (0.5 + random.random() / 2))

    async def _execute(self, client: EducationClient, entry: OutboxEntry) -> dict[str, Any]:
        try:
            if entry.kind == GRADE:
                return await self._grade(client, entry)
            if entry.kind in ACTION_KINDS:
                return await self._act(client, entry)
        except GraphThrottledError as exc:
            raise _RetryLaterError("Graph is throttling", _seconds(exc.retry_after)) from exc
        except GraphUnavailableError as exc:
            raise _RetryLaterError("Graph is unavailable", _seconds(exc.retry_after)) from exc
        except (SignInRequiredError, SsoTokenError, GraphAuthError) as exc:
            raise _RetryLaterError("the teacher must sign in again", SIGN_IN_BACKOFF) from exc
        except GraphError as exc:
            raise _GiveUpError(f"Graph refused the write ({exc.status} {exc.inner_code or exc.code})") from exc
        raise _GiveUpError(f"unknown outbox kind {entry.kind!r}")

    async def _superseded(self, entry: OutboxEntry) -> bool:
        """A grade recorded later for the same submission (still pending, or already written) is the teacher's
        newer intent; this older one must not be written over it."""
        for other in await self._store.pending_outbox_for(entry.teacher_id):
            if other.submission_id == entry.submission_id and other.kind == GRADE and other.id > entry.id:
                return True
        for record in await self._store.list_audit(
            submission_id=entry.submission_id, teacher_id=entry.teacher_id, limit=10
        ):
            # Only the same teacher's newer write supersedes; a co-teacher's is a conflict the teacher must see.
            if record.outbox_key is None or record.outbox_key == entry.idempotency_key:
                continue
            written = await self._store.get_outbox_by_key(record.outbox_key)
            if written is not None and written.kind == GRADE and written.id > entry.id:
                return True
        return False

    async def _grade(self, client: EducationClient, entry: OutboxEntry) -> dict[str, Any]:
        if await self._superseded(entry):
            return {"superseded": True}
        change = GradeChange.from_payload(entry.payload)
        submission = await client.get_submission(
            entry.class_id, entry.assignment_id, entry.submission_id, expand=("outcomes",)
        )
        outcomes = submission.outcomes or Outcomes()
        returned = submission.status is SubmissionStatus.RETURNED and not has_unreturned_grade(submission.outcomes)
        if "undoes" in entry.payload and returned:
            raise _GiveUpError("the grade was returned to the student meanwhile")
        if change.expect is not None:
            if working_grade(snapshot(outcomes)) != change.expect or (
                change.known_modified is not None
                and changed_by_someone_else(outcomes, change.known_modified, entry.teacher_id)
            ):
                raise _GiveUpError("the grade changed since it was written", conflict=True)
        elif not change.force and changed_by_someone_else(outcomes, change.known_modified, entry.teacher_id):
            raise _GiveUpError("someone else changed this grade", conflict=True)
        ref = SubmissionRef(entry.class_id, entry.assignment_id, entry.submission_id)
        patches: list[OutcomePatch] = []
        # A value Graph already holds is not written again: after a crash between Graph's answer and "done", the
        # retry finds this entry's own write landed.
        if change.points is not None:
            if outcomes.points is None:
                raise _GiveUpError("this assignment takes no points")
            grade = outcomes.points.points
            if grade is None or Decimal(str(grade.points)) != change.points:
                patches.append(PointsPatch(ref, outcomes.points.id, float(change.points)))
        if change.feedback is not None:
            if outcomes.feedback is None:
                raise _GiveUpError("this submission has no feedback outcome")
            feedback = outcomes.feedback.feedback
            if feedback is None or feedback.text != change.feedback:
                patches.append(FeedbackPatch(ref, outcomes.feedback.id, change.feedback))
        if change.levels:
            if outcomes.rubric is None:
                raise _GiveUpError("this assignment has no rubric")
            patches.append(RubricPatch(ref, outcomes.rubric.id, change.levels))
        if "points" in change.clear and outcomes.points is not None:
            patches.append(PointsPatch(ref, outcomes.points.id, None))
        if "feedback" in change.clear and outcomes.feedback is not None:
            patches.append(FeedbackPatch(ref, outcomes.feedback.id, None))
        if not patches:
            return {"before": snapshot(outcomes, submission), "after": snapshot(outcomes, submission)}
        for settled in await client.patch_outcomes_many(patches):
            if settled.error is not None:
                raise settled.error
        after = await client.get_submission(
            entry.class_id, entry.assignment_id, entry.submission_id, expand=("outcomes",)
        )
        return {"before": snapshot(outcomes, submission), "after": snapshot(after.outcomes, after)}

    async def _act(self, client: EducationClient, entry: OutboxEntry) -> dict[str, Any]:
        before = await client.get_submission(
            entry.class_id, entry.assignment_id, entry.submission_id, expand=("outcomes",)
        )
        if not _landed(before, entry):
            action = {
                RETURN: client.return_submission,
                REASSIGN: client.reassign_submission,
                EXCUSE: client.excuse_submission,
            }[entry.kind]
            await action(entry.class_id, entry.assignment_id, entry.submission_id)
        # Graph runs submission actions asynchronously: read back until the new state shows.
        for attempt in range(self._confirm_attempts):
            current = await client.get_submission(
                entry.class_id, entry.assignment_id, entry.submission_id, expand=("outcomes",)
            )
            if _landed(current, entry):
                return {"before": snapshot(before.outcomes, before), "after": snapshot(current.outcomes, current)}
            if attempt + 1 < self._confirm_attempts:
                await self._sleep(self._confirm_delay_s * (attempt + 1))
        raise _RetryLaterError("Graph has not confirmed the new status yet", timedelta(seconds=2))

    # Background processing: due entries (retries, and everything left over by a restart or a crashed instance).

    async def run_due(self, limit: int = 50) -> int:
        """Attempt every due entry once; returns how many were attempted."""
        due = await self._store.due_outbox(self._clock(), limit)
        for entry in due:
            final = await self.attempt(entry.id)
            if final.finished:
                await self._settled(final)
        return len(due)

    def start(self, interval_s: float) -> None:
        """Run `run_due` every `interval_s` seconds until `aclose()`."""

        async def loop() -> None:
            while True:
                try:
                    await self.run_due()
                except Exception:  # the loop must survive a bad tick (database blip); the entries stay pending
                    log.exception("outbox sweep failed")
                await asyncio.sleep(interval_s)

        self._loop_task = asyncio.get_running_loop().create_task(loop())

    async def aclose(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        pending = [*self._tasks, *self._background]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _landed(submission: Submission, entry: OutboxEntry) -> bool:
    """Whether the action this entry asks for is already visible on the submission."""
    target = _TARGET[entry.kind]
    if submission.status is not target:
        return False
    if entry.kind == RETURN:
        # Returned since this entry was recorded (its own return, whose answer may have been lost) — a grade saved
        # after that is a draft for later, not a reason to return again — or nothing left to return.
        returned = submission.returned_at
        since = returned is not None and returned >= entry.created_at - RETURN_CLOCK_SKEW
        return since or not has_unreturned_grade(submission.outcomes)
    stamp = submission.reassigned_at if entry.kind == REASSIGN else submission.excused_at
    return stamp is None or stamp >= entry.created_at - timedelta(minutes=5)


def _seconds(value: float | None) -> timedelta | None:
    return timedelta(seconds=value) if value else None
