"""The grading session's read side: the screen for one submission (or "all graded"), with its place among the
work waiting, the student's name, the rubric and any write still on its way — read fresh from Graph each time.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bot.kernel.errors import NotFoundError
from bot.kernel.turn import Teacher
from bot.school.progress import GradingState, grading_state
from bot.school.service import EducationService
from graph.client import SubmissionRef
from graph.errors import GraphNotFoundError
from graph.models import Assignment, EducationClass, Rubric, Submission
from storage.records import OutboxEntry
from storage.store import Store


@dataclass(frozen=True, slots=True)
class GradingView:
    """One submission to grade, with everything the grading card shows: its 1-based `position` among the `waiting`
    submissions (0 when this one is not waiting), how many of the assignment's submissions have a grade (`graded`,
    returned or not: "3 graded · 8 to go") or one not yet returned (`returnable`), and the writes for this
    submission still queued in the outbox (`pending`)."""

    education_class: EducationClass
    assignment: Assignment
    submission: Submission
    student_name: str
    rubric: Rubric | None
    position: int
    waiting: int
    graded: int
    returnable: int
    pending: tuple[OutboxEntry, ...] = ()

    @property
    def subject(self) -> tuple[EducationClass, Assignment, Submission, str]:
        """What every grading card starts from: the class, the assignment, the submission and the student's name."""
        return (self.education_class, self.assignment, self.submission, self.student_name)


@dataclass(frozen=True, slots=True)
class AllGraded:
    education_class: EducationClass
    assignment: Assignment
    returnable: int


Screen = GradingView | AllGraded
Known = tuple[EducationClass, Assignment]
"""The class (teacher checked) and assignment a use-case has just read, so the next screen need not read them again."""


class GradingSession:
    """Reads the grading screens, fresh from Graph with the teacher's token."""

    def __init__(self, education: EducationService, store: Store) -> None:
        self.education = education
        self._store = store

    async def assignment(self, teacher: Teacher, class_id: str, assignment_id: str) -> Known:
        """The class (checked: the caller teaches it) and the assignment, fresh from Graph."""
        education_class = await self.education.require_teacher(teacher, class_id)
        try:
            assignment = await self.education.client(teacher).get_assignment(class_id, assignment_id)
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
        known: Known | None = None,
        listed: tuple[list[Submission], str] | None = None,
    ) -> Screen:
        """The grading screen: the given submission, else the next one waiting (after `after`, oldest first).

        `known` is the class and assignment just read; `listed` the assignment's submissions read while a save of one
        of them (named) was written — that one counts as graded, not returned."""
        education_class, assignment = known or await self.assignment(teacher, class_id, assignment_id)
        client = self.education.client(teacher)
        if listed is None:
            submissions, students = await asyncio.gather(
                client.list_submissions(class_id, assignment_id), self.education.students(client, class_id)
            )
        else:
            submissions, students = listed[0], await self.education.students(client, class_id)
        saved = listed[1] if listed else None

        def state(submission: Submission) -> GradingState:
            return GradingState.GRADED_NOT_RETURNED if submission.id == saved else grading_state(submission)

        waiting = sorted(
            (s for s in submissions if state(s) is GradingState.NEEDS_GRADING),
            key=lambda s: (s.submitted_at.timestamp() if s.submitted_at else float("inf"), s.id),
        )
        returnable = sum(1 for s in submissions if state(s) is GradingState.GRADED_NOT_RETURNED)
        graded = returnable + sum(1 for s in submissions if state(s) is GradingState.RETURNED)
        ids = [s.id for s in waiting]
        if after in ids:
            ids = ids[ids.index(after) + 1 :] + ids[: ids.index(after)]
        target = submission_id if submission_id is not None else next(iter(ids), None)
        if target is None:
            return AllGraded(education_class, assignment, returnable)
        if target not in {s.id for s in submissions}:
            raise NotFoundError("That submission")
        submission = await client.get_submission(SubmissionRef(class_id, assignment_id, target))
        has_rubric = submission.outcomes is not None and submission.outcomes.rubric is not None
        rubric = await client.get_rubric(class_id, assignment_id) if has_rubric else None
        pending = await self._store.pending_outbox_for(teacher.aad_object_id)
        return GradingView(
            education_class=education_class,
            assignment=assignment,
            submission=submission,
            student_name=students.get(submission.student_id or "", "A student"),
            rubric=rubric,
            position=next((i + 1 for i, s in enumerate(waiting) if s.id == target), 0),
            waiting=len(waiting),
            graded=graded,
            returnable=returnable,
            pending=tuple(e for e in pending if e.submission_id == target),
        )

    async def view(self, teacher: Teacher, class_id: str, assignment_id: str, submission_id: str) -> GradingView:
        """The screen of exactly this submission."""
        screen = await self.open(teacher, class_id, assignment_id, submission_id)
        if not isinstance(screen, GradingView):
            raise NotFoundError("That submission")
        return screen
