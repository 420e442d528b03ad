"""What grading's durable writes do against Graph (the outbox's Executor): save a working grade (checked for
conflicts when applied, not only when typed), return / return for revision / excuse, and return many at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.grading.rules import changed_by_someone_else, snapshot, working_grade
from bot.outbox.queue import GiveUpError, Result, RetryLaterError, seconds
from bot.school.progress import has_unreturned_grade
from cards.grading import format_points
from graph.client import (
    EducationClient,
    FeedbackPatch,
    OutcomePatch,
    PointsPatch,
    RubricPatch,
    SubmissionAction,
    SubmissionRef,
)
from graph.errors import GraphThrottledError, GraphUnavailableError
from graph.models import (
    FeedbackOutcome,
    Outcomes,
    PointsOutcome,
    RubricOutcome,
    RubricSelection,
    Submission,
    SubmissionStatus,
    format_datetime,
    parse_datetime,
)
from storage.records import OutboxEntry
from storage.store import Store

CONFIRM_ATTEMPTS = 6
CONFIRM_DELAY_S = 0.25
"""Graph runs submission actions asynchronously: reads back wait 0.25 s, 0.5 s… between up to 6 attempts."""
RETURN_CLOCK_SKEW = timedelta(seconds=30)
"""How far Graph's clock may lag Gradebot's when telling whether a return happened after an entry was recorded."""
_TARGET = {
    "return": SubmissionStatus.RETURNED,
    "reassign": SubmissionStatus.REASSIGNED,
    "excuse": SubmissionStatus.EXCUSED,
}


@dataclass(frozen=True, slots=True)
class GradeChange:
    """What a `grade` entry writes (for a save: what the teacher typed); None means "leave as is". `clear` names
    outcomes to empty ("points", "feedback": undo of a first grade puts the submission back to ungraded); `expect` is
    the working grade (`working_grade`) Graph must still hold for this write to go ahead — an undo expects the grade
    its teacher wrote; anything else is a conflict for the teacher to resolve, never overwritten."""

    points: Decimal | None
    feedback: str | None
    levels: tuple[RubricSelection, ...]
    known_modified: datetime | None
    force: bool
    clear: tuple[str, ...] = ()
    expect: Mapping[str, Any] | None = None

    def digest(self) -> str:
        """A short digest of the values typed: part of a save's idempotency key, so the same card pressed again
        with the same values is a replay and with other values a new write."""
        typed = [
            format_points(self.points) if self.points is not None else None,
            self.feedback,
            sorted([level.quality_id, level.column_id] for level in self.levels),
        ]
        return hashlib.sha256(json.dumps(typed, ensure_ascii=False).encode()).hexdigest()[:16]

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


class GradeWrites:
    """The outbox Executor for grading: `grade`, `return`, `reassign` and `excuse` entries."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def execute(self, client: EducationClient, entry: OutboxEntry) -> Result:
        match entry.kind:
            case "grade":
                return await self._grade(client, entry)
            case "return" | "reassign" | "excuse" as action:
                return await self._act(client, entry, action)
        raise GiveUpError(f"unknown outbox kind {entry.kind!r}")

    async def completed(self, entry: OutboxEntry, result: Result, now: datetime) -> None:
        undoes = entry.payload.get("undoes")
        if isinstance(undoes, int) and not isinstance(undoes, bool):
            await self._store.mark_undone(undoes, now)

    async def _superseded(self, entry: OutboxEntry) -> bool:
        """A grade the same teacher recorded later for the same submission (still pending, or already written) is
        their newer intent; this older one must not be written over it. A co-teacher's is a conflict instead."""
        for other in await self._store.pending_outbox_for(entry.teacher_id):
            if other.submission_id == entry.submission_id and other.kind == "grade" and other.id > entry.id:
                return True
        audit = await self._store.list_audit(submission_id=entry.submission_id, teacher_id=entry.teacher_id, limit=10)
        for record in audit:
            if record.outbox_key is None or record.outbox_key == entry.idempotency_key:
                continue
            written = await self._store.get_outbox_by_key(record.outbox_key)
            if written is not None and written.kind == "grade" and written.id > entry.id:
                return True
        return False

    async def _grade(self, client: EducationClient, entry: OutboxEntry) -> Result:
        if await self._superseded(entry):
            return {"superseded": True}
        change = GradeChange.from_payload(entry.payload)
        ref = _ref(entry)
        submission = await client.get_submission(ref, expand=("outcomes",))
        outcomes = submission.outcomes or Outcomes()
        if submission.status is SubmissionStatus.EXCUSED:
            raise GiveUpError("This student is excused from the assignment, so there is nothing to grade.")
        returned = submission.status is SubmissionStatus.RETURNED and not has_unreturned_grade(submission.outcomes)
        if "undoes" in entry.payload and returned:
            raise GiveUpError("the grade was returned to the student meanwhile")
        if change.expect is not None:
            if working_grade(snapshot(outcomes)) != change.expect or (
                change.known_modified is not None
                and changed_by_someone_else(outcomes, change.known_modified, entry.teacher_id)
            ):
                raise GiveUpError("the grade changed since it was written", conflict=True)
        elif not change.force and changed_by_someone_else(outcomes, change.known_modified, entry.teacher_id):
            raise GiveUpError("someone else changed this grade", conflict=True)
        patches: list[OutcomePatch] = []
        # A value Graph already holds is not written again: after a crash between Graph's answer and "done", or an
        # answer lost on the way, the retry finds this entry's own write landed.
        if change.points is not None:
            if outcomes.points is None:
                raise GiveUpError("this assignment takes no points")
            grade = outcomes.points.points
            if grade is None or Decimal(str(grade.points)) != change.points:
                patches.append(PointsPatch(ref, outcomes.points.id, float(change.points)))
        if change.feedback is not None:
            if outcomes.feedback is None:
                raise GiveUpError("this submission has no feedback outcome")
            feedback = outcomes.feedback.feedback
            if feedback is None or feedback.text != change.feedback:
                patches.append(FeedbackPatch(ref, outcomes.feedback.id, change.feedback))
        if change.levels:
            if outcomes.rubric is None:
                raise GiveUpError("this assignment has no rubric")
            patches.append(RubricPatch(ref, outcomes.rubric.id, change.levels))
        if "points" in change.clear and outcomes.points is not None:
            patches.append(PointsPatch(ref, outcomes.points.id, None))
        if "feedback" in change.clear and outcomes.feedback is not None:
            patches.append(FeedbackPatch(ref, outcomes.feedback.id, None))
        after = outcomes
        for settled in await client.patch_outcomes_many(patches):
            match settled.unwrap():  # Graph answers each PATCH with the outcome as it now is
                case PointsOutcome() as written_points:
                    after = dataclasses.replace(after, points=written_points)
                case FeedbackOutcome() as written_feedback:
                    after = dataclasses.replace(after, feedback=written_feedback)
                case RubricOutcome() as written_rubric:
                    after = dataclasses.replace(after, rubric=written_rubric)
        return {"before": snapshot(outcomes, submission), "after": snapshot(after, submission)}

    async def _act(self, client: EducationClient, entry: OutboxEntry, action: SubmissionAction) -> Result:
        """Take the action unless it already shows, then read back until it does (Graph runs it asynchronously)."""
        ref = _ref(entry)
        before = await client.get_submission(ref, expand=("outcomes",))
        if not _landed(before, entry):
            await client.act(ref, action)
        for attempt in range(CONFIRM_ATTEMPTS):
            current = await client.get_submission(ref, expand=("outcomes",))
            if _landed(current, entry):
                return _change(before, current)
            if attempt + 1 < CONFIRM_ATTEMPTS:
                await asyncio.sleep(CONFIRM_DELAY_S * (attempt + 1))
        raise RetryLaterError("Graph has not confirmed the new status yet", timedelta(seconds=2))

    async def execute_group(
        self, client: EducationClient, entries: Sequence[OutboxEntry]
    ) -> dict[int, Result | Exception]:
        """Return many submissions of one assignment: one list read, one $batch, then read back until they show."""
        first = entries[0]
        before = {s.id: s for s in await client.list_submissions(first.class_id, first.assignment_id)}
        todo = [e for e in entries if e.submission_id in before and not _landed(before[e.submission_id], e)]
        settled = await client.return_many(map(_ref, todo))
        outcome: dict[int, Result | Exception] = {
            e.id: GiveUpError("the submission no longer exists") for e in entries if e.submission_id not in before
        }
        for entry, result in zip(todo, settled, strict=True):
            error = result.error
            if isinstance(error, GraphThrottledError | GraphUnavailableError):
                outcome[entry.id] = RetryLaterError("Graph is busy", seconds(error.retry_after))
            elif error is not None:
                outcome[entry.id] = GiveUpError(f"Graph refused the write ({error.status} {error.code})")
        waiting = [e for e in entries if e.id not in outcome]
        for attempt in range(CONFIRM_ATTEMPTS):
            if not waiting:
                break
            current = {s.id: s for s in await client.list_submissions(first.class_id, first.assignment_id)}
            for entry in list(waiting):
                now_sub = current.get(entry.submission_id)
                if now_sub is not None and _landed(now_sub, entry):
                    outcome[entry.id] = _change(before[entry.submission_id], now_sub)
                    waiting.remove(entry)
            if waiting and attempt + 1 < CONFIRM_ATTEMPTS:
                await asyncio.sleep(CONFIRM_DELAY_S * (attempt + 1))
        for entry in waiting:
            outcome[entry.id] = RetryLaterError("Graph has not confirmed the return yet", timedelta(seconds=2))
        return outcome


def _ref(entry: OutboxEntry) -> SubmissionRef:
    return SubmissionRef(entry.class_id, entry.assignment_id, entry.submission_id)


def _change(before: Submission, after: Submission) -> Result:
    """An action's result: the submission's snapshots before and after it, for the audit log."""
    return {"before": snapshot(before.outcomes, before), "after": snapshot(after.outcomes, after)}


def _landed(submission: Submission, entry: OutboxEntry) -> bool:
    """Whether the action this entry asks for is already visible on the submission."""
    target = _TARGET[entry.kind]
    if submission.status is not target:
        return False
    if entry.kind == "return":
        # Returned since this entry was recorded (its own return, whose answer may have been lost) — a grade saved
        # after that is a draft for later, not a reason to return again — or nothing left to return.
        returned = submission.returned_at
        since = returned is not None and returned >= entry.created_at - RETURN_CLOCK_SKEW
        return since or not has_unreturned_grade(submission.outcomes)
    stamp = submission.reassigned_at if entry.kind == "reassign" else submission.excused_at
    return stamp is None or stamp >= entry.created_at - timedelta(minutes=5)
