"""Grading's use-cases: save a working grade, return / return for revision / excuse (after a confirm step),
return everything graded, and undo a save — every write through the outbox, every action re-checked on the server.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from bot.grading.rules import check_levels, check_points, snapshot, working_grade
from bot.grading.session import AllGraded, GradingSession, GradingView, Screen
from bot.grading.writes import GradeChange
from bot.kernel.errors import NotFoundError, UserError
from bot.kernel.turn import CardRef, Teacher
from bot.outbox.queue import Outbox
from bot.school.progress import GradingState, grading_state, has_unreturned_grade
from cards.blocks import new_nonce
from cards.grading import GradeValues, ReturnAllAction, Step, UndoAction, last_change, score_text, working_values
from graph.client import SubmissionRef
from graph.errors import GraphNotFoundError
from graph.models import Assignment, Outcomes, RubricSelection, SubmissionStatus, parse_datetime
from storage.records import AuditRecord, NewOutboxEntry, OutboxEntry
from storage.store import Store


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a grading action produced: the screen to show next and a banner about what happened; `undo` is the save
    that just landed (its write id), which the card offers to undo; after an undo, `entered` holds what the teacher
    had typed (shown in the fields instead of the grade) and `stale_card` the card (activity id) that reported the
    undone save, now out of date."""

    screen: Screen
    tone: Literal["good", "attention", "warning"] = "good"
    message: str | None = None
    undo: int | None = None
    entered: GradeValues | None = None
    stale_card: str | None = None


@dataclass(frozen=True, slots=True)
class Conflict:
    """Someone else changed the grade after the teacher's card was rendered: show both and let them choose. The
    `view` is read fresh, so its outcomes hold the other person's values."""

    view: GradingView


@dataclass(frozen=True, slots=True)
class UndoConflict:
    """The grade changed after the teacher saved it: undo would replace someone's later grade. Show all three and
    let the teacher choose ("Undo anyway" / "Keep the current grade"): `view` read fresh (what Graph holds now),
    the save being undone (`write_id`, what "Undo anyway" names), the working grades (`working_grade`) it wrote
    (`mine`) and undo puts back (`restores`), who changed it last (a teacher's name, "You", or "Someone else") and
    when (`known_modified`: "Undo anyway" replaces exactly that grade, not a later one)."""

    view: GradingView
    write_id: int | None
    mine: Mapping[str, Any]
    restores: Mapping[str, Any]
    changed_by: str
    known_modified: datetime | None


@dataclass(frozen=True, slots=True)
class Confirm:
    """The confirm step of return / returnAll / reassign / excuse, asked by `press`; for Return all, `released` names
    each student whose grade becomes visible, with that grade."""

    press: Step | ReturnAllAction
    screen: Screen
    released: tuple[tuple[str, GradeValues], ...] = ()


class Grading:
    """The grading use-cases, each checked against Graph and written through the outbox."""

    def __init__(self, session: GradingSession, outbox: Outbox, store: Store) -> None:
        self._session = session
        self._education = session.education
        self._outbox = outbox
        self._store = store

    async def grade(
        self, teacher: Teacher, ref: SubmissionRef, change: GradeChange, *, nonce: str, card: CardRef
    ) -> Outcome | Conflict:
        """Check what was typed against the assignment fresh from Graph, record it in the outbox, apply it within the
        invoke budget (the outbox re-reads the submission and checks for conflicts as it writes). The key covers what
        was typed: the same card pressed again with the same values is a replay (the first result comes back); with
        other values it is a new write. The next card's submission list is read alongside: read before the write
        landed, it counts the saved submission as graded."""
        client = self._education.client(teacher)
        listing = asyncio.ensure_future(client.list_submissions(ref.class_id, ref.assignment_id))
        try:
            known = await self._session.assignment(teacher, ref.class_id, ref.assignment_id)
            if change.points is not None:
                check_points(change.points, known[1].max_points)
            if change.levels:
                check_levels(change.levels, await client.get_rubric(ref.class_id, ref.assignment_id))
            key = f"grade:{teacher.aad_object_id}:{ref.submission_id}:{nonce}:{change.digest()}"
            entry = await self._write(teacher, "grade", ref, key, {**change.payload(), "card": card.payload()})
            listed = await listing
        finally:
            if not listing.done():
                listing.cancel()
            elif not listing.cancelled():
                listing.exception()  # seen: after a refusal (not a teacher, bad points) the read is not news
        class_id, assignment_id, submission_id = entry.class_id, entry.assignment_id, entry.submission_id
        result = entry.result or {}
        if entry.status == "done" and not result.get("superseded"):
            screen = await self._session.open(
                teacher, class_id, assignment_id, after=submission_id, known=known, listed=(listed, submission_id)
            )
            # `open` has just read the class roster: naming the student costs no Graph request.
            roster = await self._education.students(client, class_id)
            student_id = next((s.student_id for s in listed if s.id == submission_id), None)
            student = roster.get(student_id or "") or "the student"
            message = _saved_text(result.get("after", {}), known[1], student, screen)
            return Outcome(screen, "good", message, undo=entry.id)
        current = await self._session.open(teacher, class_id, assignment_id, submission_id, known=known)
        if entry.status == "done":
            return Outcome(
                current, "warning", "Not saved: a newer grade you saved for this student takes its place (shown here)."
            )
        if entry.status == "conflict" and isinstance(current, GradingView):
            return Conflict(current)
        saving = (
            "Saving… Microsoft Graph is slow right now. Your grade is safe with Gradebot and will be saved "
            "automatically; this card updates when it lands."
        )
        return _unfinished(entry, current, "save this grade", saving)

    async def act(self, teacher: Teacher, step: Step, card: CardRef) -> Outcome | Confirm:
        """Return, return for revision or excuse one submission (after a confirm step)."""
        kind, ref = step.VERB, SubmissionRef(step.class_id, step.assignment_id, step.submission_id)
        view = await self._session.view(teacher, *ref)
        if not step.confirmed:
            return Confirm(step, view)
        key = f"{kind}:{teacher.aad_object_id}:{step.submission_id}:{step.nonce}"
        entry = await self._write(teacher, kind, ref, key, {"card": card.payload()})
        verb = {"return": "Returned to", "reassign": "Returned for revision to", "excuse": "Excused"}[kind]
        if entry.status == "done":
            screen = await self._session.open(teacher, step.class_id, step.assignment_id, after=step.submission_id)
            return Outcome(screen, "good", f"{verb} {view.student_name}.")
        current = await self._session.open(teacher, *ref)
        return _unfinished(
            entry, current, "do that", "Working on it… Microsoft Graph is slow; this card updates when it's done."
        )

    async def return_all(self, teacher: Teacher, press: ReturnAllAction, card: CardRef) -> Outcome | Confirm:
        """Return every graded-not-returned submission of the assignment (after confirming the count)."""
        class_id, assignment_id = press.class_id, press.assignment_id
        education_class, assignment = await self._session.assignment(teacher, class_id, assignment_id)
        client = self._education.client(teacher)
        submissions, students = await asyncio.gather(
            client.list_submissions(class_id, assignment_id), self._education.students(client, class_id)
        )
        graded = [s for s in submissions if grading_state(s) is GradingState.GRADED_NOT_RETURNED]
        screen = AllGraded(education_class, assignment, len(graded))
        if not graded:
            return Outcome(screen, "good", "Everything graded is already returned.")
        if not press.confirmed or press.expected_count != len(graded):
            released = tuple(
                (students.get(s.student_id or "", "A student"), working_values(s.outcomes)) for s in graded
            )
            return Confirm(press, screen, released)
        payload = {"card": card.payload(), "auditAction": "returnAll"}
        entries = []
        for submission in graded:
            key = f"returnAll:{teacher.aad_object_id}:{press.nonce}:{submission.id}"
            ref = SubmissionRef(class_id, assignment_id, submission.id)
            entries.append(await self._record(teacher, "return", ref, key, payload))
        finished = await self._outbox.apply_group(entries, teacher.token)
        done = sum(1 for e in finished if e.status == "done")
        after = await self._session.open(teacher, class_id, assignment_id)
        if done == len(entries):
            return Outcome(after, "good", f"Returned {done} submissions of {assignment.display_name}.")
        failed = sum(1 for e in finished if e.status == "failed")
        if failed:
            return Outcome(after, "attention", f"Returned {done}; {failed} could not be returned. Try those again.")
        return Outcome(after, "warning", f"Returned {done} so far; the other {len(entries) - done} are on their way.")

    async def undo(self, teacher: Teacher, card: CardRef, press: UndoAction) -> Outcome | UndoConflict | None:
        """Undo one save while Graph still holds what it wrote and it is not yet returned.

        `write_id` names the save (an Undo button); without it, the teacher's newest save not undone yet (the
        `undo` command), or None when there is none. When the grade changed since the save, nothing is written and
        the teacher gets an UndoConflict; `anyway` (their choice on that card) replaces the grade it showed, changed
        last at `known_modified`, and nothing newer. The outbox enforces the same when the write is applied.
        """
        write_id, anyway, known_modified = press.write_id, press.anyway, press.known_modified
        if write_id is None:
            record = await self._store.last_undoable(teacher.aad_object_id, ("grade",))
            if record is None:
                return None
            saved = await self._store.get_outbox_by_key(record.outbox_key) if record.outbox_key else None
            write_id = saved.id if saved is not None else None
        else:
            saved, record = await self._saved_by(teacher, write_id)
        ref = SubmissionRef(record.class_id, record.assignment_id, record.submission_id)
        if record.undone_at is not None:
            view = await self._session.view(teacher, *ref)
            return Outcome(
                view, "good", f"Already undone: the grade for {view.student_name} is {_grade_text(view)} now."
            )
        await self._education.require_teacher(teacher, record.class_id)
        client = self._education.client(teacher)
        try:
            submission = await client.get_submission(ref, expand=("outcomes",))
        except GraphNotFoundError as exc:
            raise NotFoundError("That submission") from exc
        if submission.status is SubmissionStatus.RETURNED and not has_unreturned_grade(submission.outcomes):
            raise UserError("That grade has already been returned to the student, so it can't be undone here.")
        own_key = f"undo:{record.id}"
        for pending in await self._store.pending_outbox_for(teacher.aad_object_id):
            mine_too = pending.idempotency_key == own_key or pending.idempotency_key.startswith(f"{own_key}:")
            if pending.submission_id == record.submission_id and not mine_too:
                raise UserError(
                    "A change to this grade is still being saved to Teams Assignments. "
                    "Try undo again once it has landed."
                )
        if anyway:
            key = f"{own_key}:anyway:{press.nonce}"
        else:
            key = own_key
            earlier = await self._store.get_outbox_by_key(key)
            if earlier is not None and earlier.finished:  # it stopped (conflict, failure): this is a new try
                key = f"{own_key}:{press.nonce or new_nonce()}"
        before, mine = record.before, working_grade(record.after)
        change = dataclasses.replace(
            GradeChange.from_payload(before),  # the points, feedback and levels the save replaced
            known_modified=known_modified if anyway else parse_datetime(record.after.get("modifiedAt")),
            force=anyway and known_modified is None,
            clear=tuple(n for n in ("points", "feedback") if record.after.get(n) is not None and before.get(n) is None),
            expect=None if anyway else mine,
        )
        payload = {**change.payload(), "card": card.payload(), "auditAction": "undo", "undoes": record.id}
        entry = await self._write(teacher, "grade", ref, key, payload)
        view = await self._session.view(teacher, *ref)
        if entry.status == "conflict":
            outcomes = view.submission.outcomes
            return UndoConflict(
                view=view,
                write_id=write_id,
                mine=mine,
                restores=working_grade(before),
                changed_by=await self._changed_by(teacher, record.class_id, outcomes),
                known_modified=last_change(outcomes)[0],
            )
        if entry.status == "done" and not (entry.result or {}).get("superseded"):
            reported = (saved.payload.get("card") if saved is not None else None) or {}
            restored = _grade_text(view)
            back = f"'s grade is back to {restored}" if restored != "no grade" else " has no grade again"
            message = f"Undone: {view.student_name}{back}. What you had typed is still in the fields below."
            stale = reported.get("activityId") if not reported.get("shared") else None
            return Outcome(view, "good", message, entered=grade_values(mine), stale_card=stale)
        if entry.status == "done":
            return Outcome(view, "attention", "Not undone: a newer grade you saved for this student takes its place.")
        return _unfinished(
            entry, view, "undo that", "Undoing… Microsoft Graph is slow; this card updates when it's done."
        )

    async def _saved_by(self, teacher: Teacher, write_id: int) -> tuple[OutboxEntry, AuditRecord]:
        """The save `write_id` names and its audit record, checked to be this teacher's own landed save."""
        write = await self._store.get_outbox(write_id)
        if (
            write is None
            or write.teacher_id != teacher.aad_object_id
            or write.kind != "grade"
            or "undoes" in write.payload
        ):
            raise UserError("That Undo button doesn't name a grade you saved. Type `undo` to undo your last save.")
        for record in await self._store.list_audit(
            submission_id=write.submission_id, teacher_id=teacher.aad_object_id, limit=100
        ):
            if record.outbox_key == write.idempotency_key:
                return write, record
        if not write.finished:
            raise UserError("That grade is still being saved. You can undo it once it has landed.")
        raise UserError("That grade never reached Teams Assignments, so there is nothing to undo.")

    async def _changed_by(self, teacher: Teacher, class_id: str, outcomes: Outcomes | None) -> str:
        """Who changed the grade last, for the teacher's own eyes: "You", a class member's name, or "Someone else"."""
        by = last_change(outcomes)[1]
        user_id = by.user_id if by is not None else None
        if user_id is None:
            return "Someone else"
        if user_id == teacher.aad_object_id:
            return "You"
        names = await self._education.students(self._education.client(teacher), class_id)  # the class roster
        return names.get(user_id) or "Someone else"

    async def _write(
        self, teacher: Teacher, kind: str, ref: SubmissionRef, key: str, payload: dict[str, Any]
    ) -> OutboxEntry:
        """Record the write and apply it within the invoke budget (the outbox's INVOKE_BUDGET_S)."""
        entry = await self._record(teacher, kind, ref, key, payload)
        return await self._outbox.apply_within(entry, teacher.token)

    async def _record(
        self, teacher: Teacher, kind: str, ref: SubmissionRef, key: str, payload: dict[str, Any]
    ) -> OutboxEntry:
        self._education.forget_lists(teacher)
        return await self._outbox.record(
            NewOutboxEntry(key, kind, teacher.aad_object_id, teacher.tenant_id, *ref, payload)
        )


def grade_values(grade: Mapping[str, Any]) -> GradeValues:
    """A `working_grade` dict as the cards' GradeValues."""
    points = grade.get("points")
    return GradeValues(
        None if points is None else float(points),
        grade.get("feedback") or None,
        tuple(RubricSelection(str(q), str(c)) for q, c in grade.get("levels") or ()),
    )


def values_text(grade: Mapping[str, Any], max_points: float | None) -> str:
    """ "7/10 and feedback", "rubric levels", "no grade" — a working grade (or a `snapshot`) as the teacher reads it."""
    parts = []
    if grade.get("points") is not None:
        parts.append(score_text(float(grade["points"]), max_points))
    if grade.get("levels"):
        parts.append("rubric levels")
    if grade.get("feedback"):
        parts.append("feedback")
    return " and ".join(parts) if parts else "no grade"


def _saved_text(after: Mapping[str, Any], assignment: Assignment, student: str, next_screen: Screen) -> str:
    """What Graph holds after the save, for whom — and who is next, so the banner is not read as theirs."""
    saved = values_text(after, assignment.max_points)
    saved = "the grade" if saved == "no grade" else saved
    following = f" Next: {next_screen.student_name}." if isinstance(next_screen, GradingView) else ""
    return f"Saved {saved} for {student} as a draft; students see it only after you return it.{following}"


def _grade_text(view: GradingView) -> str:
    return values_text(snapshot(view.submission.outcomes), view.assignment.max_points)


def _unfinished(entry: OutboxEntry, screen: Screen, could_not: str, slow: str) -> Outcome:
    """A write that failed for good (saying why), or is still on its way (the card updates when it ends)."""
    if entry.status == "failed":
        reason = entry.last_error or "Microsoft Graph refused it"
        return Outcome(screen, "attention", f"Gradebot could not {could_not}: {reason.rstrip('.')}.")
    return Outcome(screen, "warning", slow)
