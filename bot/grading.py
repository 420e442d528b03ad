"""Teacher use-cases for grading: the one-at-a-time grading session, saving grades, return / revision / excuse,
return-all and undo — every write through the outbox, every action re-checked against Graph on the server.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from bot.outbox import EXCUSE, GRADE, REASSIGN, RETURN, UNDOABLE, GradeChange, GradeWriter
from bot.service import EducationService, NotFoundError, Teacher, UserError
from cards.actions import ActionDataError, GradeAction, check_points
from graph.connection import TokenProvider
from graph.errors import GraphNotFoundError
from graph.models import (
    Assignment,
    EducationClass,
    Rubric,
    RubricSelection,
    Submission,
    SubmissionStatus,
)
from graph.progress import GradingState, grading_state, has_unreturned_grade
from storage.records import NewOutboxEntry, OutboxEntry
from storage.store import Store

log = logging.getLogger(__name__)

ActionKind = Literal["return", "reassign", "excuse"]
INVOKE_BUDGET_S = 2.5
"""Teams waits ~15 s for an invoke; Gradebot answers within 3 s and finishes slow writes in the background."""


@dataclass(frozen=True, slots=True)
class CardRef:
    """Where the teacher's card lives, so a write finished in the background can update it."""

    conversation_id: str
    activity_id: str | None
    shared: bool

    def payload(self) -> dict[str, Any]:
        return {"conversationId": self.conversation_id, "activityId": self.activity_id, "shared": self.shared}


@dataclass(frozen=True, slots=True)
class GradingView:
    """One submission to grade, with everything the grading card shows."""

    education_class: EducationClass
    assignment: Assignment
    submission: Submission
    student_name: str
    rubric: Rubric | None
    position: int
    """1-based place among submissions waiting for a grade (0 when this one is not waiting)."""
    waiting: int
    returnable: int
    """Graded submissions of this assignment not yet returned."""
    pending: tuple[OutboxEntry, ...] = ()
    """Writes for this submission still queued in the outbox."""


@dataclass(frozen=True, slots=True)
class AllGraded:
    education_class: EducationClass
    assignment: Assignment
    returnable: int


Screen = GradingView | AllGraded


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a grading action produced: the screen to show next and a banner about what happened."""

    screen: Screen
    tone: Literal["good", "attention", "warning"] = "good"
    message: str | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Someone else changed the grade after the teacher's card was rendered: show both and let them choose."""

    view: GradingView
    """Read fresh, so its outcomes hold the other person's values."""


@dataclass(frozen=True, slots=True)
class Confirm:
    """The confirm step of return / returnAll / reassign / excuse."""

    kind: Literal["return", "returnAll", "reassign", "excuse"]
    screen: Screen
    count: int = 1
    targets: tuple[str, ...] = field(default=())


class GradingService:
    def __init__(
        self, education: EducationService, writer: GradeWriter, store: Store, budget_s: float = INVOKE_BUDGET_S
    ) -> None:
        self._education = education
        self._writer = writer
        self._store = store
        self._budget_s = budget_s

    # Reading the session ---------------------------------------------------------------------------------------

    async def _assignment(
        self, teacher: Teacher, class_id: str, assignment_id: str
    ) -> tuple[EducationClass, Assignment]:
        education_class = await self._education.require_teacher(teacher, class_id)
        try:
            assignment = await self._education.client(teacher).get_assignment(class_id, assignment_id)
        except GraphNotFoundError as exc:
            raise NotFoundError("That assignment") from exc
        return education_class, assignment

    async def open(
        self,
        teacher: Teacher,
        class_id: str,
        assignment_id: str,
        submission_id: str | None = None,
        *,
        after: str | None = None,
    ) -> Screen:
        """The grading screen: the given submission, else the next one waiting (after `after`, oldest first)."""
        education_class, assignment = await self._assignment(teacher, class_id, assignment_id)
        client = self._education.client(teacher)
        submissions, students = await asyncio.gather(
            client.list_submissions(class_id, assignment_id), self._education.students(client, class_id)
        )
        waiting = sorted(
            (s for s in submissions if grading_state(s) is GradingState.NEEDS_GRADING),
            key=lambda s: (s.submitted_at.timestamp() if s.submitted_at else float("inf"), s.id),
        )
        returnable = sum(1 for s in submissions if grading_state(s) is GradingState.GRADED_NOT_RETURNED)
        target: str | None = submission_id
        if target is None:
            ids = [s.id for s in waiting]
            if after in ids:
                rest = ids[ids.index(after) + 1 :] + ids[: ids.index(after)]
                ids = rest
            target = ids[0] if ids else None
        if target is None:
            return AllGraded(education_class, assignment, returnable)
        if target not in {s.id for s in submissions}:
            raise NotFoundError("That submission")
        submission = await client.get_submission(class_id, assignment_id, target)
        rubric = None
        if submission.outcomes is not None and submission.outcomes.rubric is not None:
            rubric = await client.get_rubric(class_id, assignment_id)
        position = next((i + 1 for i, s in enumerate(waiting) if s.id == target), 0)
        pending = tuple(
            e for e in await self._store.pending_outbox_for(teacher.aad_object_id) if e.submission_id == target
        )
        return GradingView(
            education_class=education_class,
            assignment=assignment,
            submission=submission,
            student_name=students.get(submission.student_id or "", "A student"),
            rubric=rubric,
            position=position,
            waiting=len(waiting),
            returnable=returnable,
            pending=pending,
        )

    # Saving a grade ----------------------------------------------------------------------------------------------

    async def grade(self, teacher: Teacher, action: GradeAction, card: CardRef) -> Outcome | Conflict:
        """Validate against fresh Graph data, record in the outbox, apply within the invoke budget."""
        _, assignment = await self._assignment(teacher, action.class_id, action.assignment_id)
        client = self._education.client(teacher)
        try:
            submission = await client.get_submission(
                action.class_id, action.assignment_id, action.submission_id, expand=("outcomes",)
            )
        except GraphNotFoundError as exc:
            raise NotFoundError("That submission") from exc
        if action.points is not None:
            check_points(action.points, assignment.max_points)
        if action.levels:
            rubric = await client.get_rubric(action.class_id, action.assignment_id)
            _check_levels(action.levels, rubric)
        if submission.status is SubmissionStatus.EXCUSED:
            raise ActionDataError("This student is excused from the assignment, so there is nothing to grade.")
        change = GradeChange(action.points, action.feedback, action.levels, action.known_modified, action.force)
        entry = await self._record(
            teacher,
            GRADE,
            action.class_id,
            action.assignment_id,
            action.submission_id,
            f"grade:{teacher.aad_object_id}:{action.submission_id}:{action.nonce}",
            {**change.payload(), "card": card.payload()},
        )
        entry = await self._writer.apply_within(entry, self._token(teacher), self._budget_s)
        return await self._after_write(teacher, entry, action.class_id, action.assignment_id)

    async def _after_write(
        self, teacher: Teacher, entry: OutboxEntry, class_id: str, assignment_id: str
    ) -> Outcome | Conflict:
        if entry.status == "done":
            after = entry.result.get("after", {}) if entry.result else {}
            screen = await self.open(teacher, class_id, assignment_id, after=entry.submission_id)
            return Outcome(screen, "good", _saved_text(after))
        current = await self.open(teacher, class_id, assignment_id, entry.submission_id)
        if entry.status == "conflict" and isinstance(current, GradingView):
            return Conflict(current)
        if entry.status == "failed":
            return Outcome(current, "attention", "Gradebot could not save this grade: " + _failure_text(entry))
        return Outcome(
            current,
            "warning",
            "Saving… Microsoft Graph is slow right now. Your grade is safe with Gradebot and will be saved "
            "automatically; this card updates when it lands.",
        )

    # Return, return for revision, excuse ------------------------------------------------------------------------

    async def act(
        self,
        teacher: Teacher,
        kind: ActionKind,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        *,
        confirmed: bool,
        nonce: str,
        card: CardRef,
    ) -> Outcome | Confirm:
        view = await self.open(teacher, class_id, assignment_id, submission_id)
        if not isinstance(view, GradingView):
            raise NotFoundError("That submission")
        if not confirmed:
            return Confirm(kind, view)
        entry = await self._record(
            teacher,
            kind,
            class_id,
            assignment_id,
            submission_id,
            f"{kind}:{teacher.aad_object_id}:{submission_id}:{nonce}",
            {"card": card.payload()},
        )
        entry = await self._writer.apply_within(entry, self._token(teacher), self._budget_s)
        verb = {RETURN: "Returned to", REASSIGN: "Returned for revision to", EXCUSE: "Excused"}[kind]
        if entry.status == "done":
            screen = await self.open(teacher, class_id, assignment_id, after=submission_id)
            return Outcome(screen, "good", f"{verb} {view.student_name}.")
        current = await self.open(teacher, class_id, assignment_id, submission_id)
        if entry.status == "failed":
            return Outcome(current, "attention", "Gradebot could not do that: " + _failure_text(entry))
        return Outcome(current, "warning", "Working on it… Microsoft Graph is slow; this card updates when it's done.")

    async def return_all(
        self,
        teacher: Teacher,
        class_id: str,
        assignment_id: str,
        *,
        confirmed: bool,
        expected: int,
        nonce: str,
        card: CardRef,
    ) -> Outcome | Confirm:
        """Return every graded-not-returned submission of the assignment (after confirming the count)."""
        education_class, assignment = await self._assignment(teacher, class_id, assignment_id)
        client = self._education.client(teacher)
        submissions = await client.list_submissions(class_id, assignment_id)
        targets = tuple(s.id for s in submissions if grading_state(s) is GradingState.GRADED_NOT_RETURNED)
        screen = AllGraded(education_class, assignment, len(targets))
        if not targets:
            return Outcome(screen, "good", "Everything graded is already returned.")
        if not confirmed or expected != len(targets):
            return Confirm("returnAll", screen, len(targets), targets)
        entries = [
            await self._record(
                teacher,
                RETURN,
                class_id,
                assignment_id,
                sid,
                f"returnAll:{teacher.aad_object_id}:{nonce}:{sid}",
                {"card": card.payload(), "auditAction": "returnAll"},
            )
            for sid in targets
        ]
        finished = await self._writer.apply_many(entries, self._token(teacher), self._budget_s)
        done = sum(1 for e in finished if e.status == "done")
        after = await self.open(teacher, class_id, assignment_id)
        if done == len(entries):
            return Outcome(after, "good", f"Returned {done} submissions of {assignment.display_name}.")
        failed = sum(1 for e in finished if e.status == "failed")
        if failed:
            return Outcome(after, "attention", f"Returned {done}; {failed} could not be returned. Try those again.")
        return Outcome(after, "warning", f"Returned {done} so far; the other {len(entries) - done} are on their way.")

    # Undo --------------------------------------------------------------------------------------------------------

    async def undo(self, teacher: Teacher, nonce: str, card: CardRef) -> Outcome | None:
        """Restore the teacher's last saved grade while it is not yet returned; None when there is nothing to undo."""
        record = await self._store.last_undoable(teacher.aad_object_id, UNDOABLE)
        if record is None:
            return None
        client = self._education.client(teacher)
        await self._education.require_teacher(teacher, record.class_id)
        try:
            submission = await client.get_submission(
                record.class_id, record.assignment_id, record.submission_id, expand=("outcomes",)
            )
        except GraphNotFoundError as exc:
            raise NotFoundError("That submission") from exc
        if submission.status is SubmissionStatus.RETURNED and not has_unreturned_grade(submission.outcomes):
            raise UserError("That grade has already been returned to the student, so it can't be undone here.")
        before = record.before
        change = GradeChange(
            points=None if before.get("points") is None else Decimal(str(before["points"])),
            feedback=before.get("feedback") if before.get("feedback") is not None else None,
            levels=tuple(RubricSelection(str(q), str(c)) for q, c in before.get("levels") or ()),
            known_modified=None,
            force=True,
            clear=tuple(
                name
                for name in ("points", "feedback")
                if record.after.get(name) is not None and before.get(name) is None
            ),
        )
        entry = await self._record(
            teacher,
            GRADE,
            record.class_id,
            record.assignment_id,
            record.submission_id,
            f"undo:{record.id}",
            {**change.payload(), "card": card.payload(), "auditAction": "undo", "undoes": record.id},
        )
        entry = await self._writer.apply_within(entry, self._token(teacher), self._budget_s)
        if entry.status == "done":
            await self._store.mark_undone(record.id, self._education.clock())
        screen = await self.open(teacher, record.class_id, record.assignment_id, record.submission_id)
        if entry.status == "done":
            return Outcome(screen, "good", "Undone: the grade is back to what it was before.")
        if entry.status == "failed":
            return Outcome(screen, "attention", "Gradebot could not undo that: " + _failure_text(entry))
        return Outcome(screen, "warning", "Undoing… Microsoft Graph is slow; this card updates when it's done.")

    # Helpers -------------------------------------------------------------------------------------------------------

    def _token(self, teacher: Teacher) -> TokenProvider:
        return teacher.token

    async def _record(
        self,
        teacher: Teacher,
        kind: str,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        key: str,
        payload: dict[str, Any],
    ) -> OutboxEntry:
        self._education.forget_lists(teacher)
        entry, _ = await self._writer.record(
            NewOutboxEntry(
                idempotency_key=key,
                kind=kind,
                teacher_id=teacher.aad_object_id,
                tenant_id=teacher.tenant_id,
                class_id=class_id,
                assignment_id=assignment_id,
                submission_id=submission_id,
                payload=payload,
            )
        )
        return entry


def _check_levels(levels: tuple[RubricSelection, ...], rubric: Rubric | None) -> None:
    if rubric is None:
        raise ActionDataError("This assignment has no rubric any more. Open it again.")
    qualities = {q.quality_id for q in rubric.qualities}
    columns = {level.level_id for level in rubric.levels}
    for selection in levels:
        if selection.quality_id not in qualities or selection.column_id not in columns:
            raise ActionDataError("The rubric changed since this card was shown. Open it again.")


def _saved_text(after: dict[str, Any]) -> str:
    parts = []
    if after.get("points") is not None:
        parts.append(f"{after['points']:g} points")
    if after.get("feedback"):
        parts.append("feedback")
    if after.get("levels"):
        parts.append("rubric levels")
    saved = " and ".join(parts) if parts else "the grade"
    return f"Saved {saved} as a draft. Students see it only after you return it."


def _failure_text(entry: OutboxEntry) -> str:
    reason = entry.last_error or "Microsoft Graph refused it"
    return reason.rstrip(".") + "."
