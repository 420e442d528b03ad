"""Each class's waiting set for the reminder sweep: read in full once, then kept current from the class's
getRecentlyModifiedSubmissions, one Graph request per class per sweep (why that equals a full read: ClassSweeper)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.kernel.turn import Teacher
from bot.school.progress import GradingState, grading_state, lateness
from bot.school.service import OPEN_STATUSES, EducationService
from cards.lists import UngradedItem
from graph.client import EducationClient
from graph.errors import GraphNotFoundError
from graph.models import (
    Assignment,
    AssignmentStatus,
    EducationClass,
    Submission,
    SubmissionStatus,
    format_datetime,
    parse,
    parse_datetime,
)
from storage.records import ClassSweep
from storage.store import Store

FULL_AFTER = timedelta(days=6)
"""A class last swept longer ago than this is read in full: getRecentlyModifiedSubmissions reaches 7 days back (a
day's margin for clocks and slow background jobs)."""
REREAD_AFTER = FULL_AFTER
"""A class's assignment list (due dates, names, statuses, deletions) is re-read once it is this old."""
OVERLAP = timedelta(hours=1)
"""Each sweep asks for changes from this long before the last one: Graph's clock and actions still settling."""


@dataclass
class WaitingSet:
    """What the sweep knows about one class: its assignments (stored as Graph's JSON) and what waits to be graded, by
    ids (student names are never stored: the roster is read when a digest names them)."""

    assignments: dict[str, Assignment] = field(default_factory=dict)
    assignments_at: datetime | None = None
    waiting: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    """submission id → (assignment id, student id, turned in at or "")."""

    @classmethod
    def load(cls, data: dict[str, Any]) -> WaitingSet:
        waiting = {sid: (str(a), str(s), str(t)) for sid, (a, s, t) in data.get("waiting", {}).items()}
        assignments = {key: parse(Assignment, value) for key, value in data.get("assignments", {}).items()}
        return cls(assignments, parse_datetime(data.get("assignmentsAt")), waiting)

    def dump(self) -> dict[str, Any]:
        return {
            "assignments": {key: _wire(assignment) for key, assignment in self.assignments.items()},
            "assignmentsAt": format_datetime(self.assignments_at) if self.assignments_at else None,
            "waiting": {sid: list(entry) for sid, entry in self.waiting.items()},
        }

    def know(self, assignments: list[Assignment], now: datetime) -> None:
        """The class's whole assignment list: work of assignments no longer in it leaves the waiting set."""
        self.assignments = {a.id: a for a in assignments}
        self.assignments_at = now
        self.waiting = {sid: entry for sid, entry in self.waiting.items() if entry[0] in self.assignments}

    def note(self, submission: Submission, assignment_id: str) -> None:
        """One submission as Graph shows it now: in the set while it needs grading, out of it otherwise."""
        if grading_state(submission) is GradingState.NEEDS_GRADING:
            turned_in = format_datetime(submission.submitted_at) if submission.submitted_at else ""
            self.waiting[submission.id] = (assignment_id, submission.student_id or "", turned_in)
        else:
            self.waiting.pop(submission.id, None)

    def is_open(self, assignment_id: str, now: datetime) -> bool:
        """Known and open now: a scheduled assignment counts from its assignDateTime on (Graph flips it then)."""
        if (assignment := self.assignments.get(assignment_id)) is None:
            return False
        opens_at = assignment.assign_at
        due_to_open = assignment.status is AssignmentStatus.SCHEDULED and opens_at is not None and opens_at <= now
        return due_to_open or assignment.status in OPEN_STATUSES

    def open_waiting(self, now: datetime) -> dict[str, tuple[str, str, str]]:
        """The waiting work of assignments open now (a full read of the class lists only theirs)."""
        return {sid: entry for sid, entry in self.waiting.items() if self.is_open(entry[0], now)}

    def items(self, education_class: EducationClass, now: datetime, students: dict[str, str]) -> list[UngradedItem]:
        """The waiting work of open assignments as a full read lists it, students named from `students`."""
        items = []
        for submission_id, (assignment_id, student_id, turned_in) in self.open_waiting(now).items():
            assignment = self.assignments[assignment_id]
            submitted_at = parse_datetime(turned_in)
            submission = Submission(submission_id, SubmissionStatus.SUBMITTED, student_id or None, submitted_at)
            name = students.get(student_id, "A student")
            items.append(UngradedItem(education_class, assignment, submission, name, lateness(submission, assignment)))
        return items


def _wire(assignment: Assignment) -> dict[str, Any]:
    """An assignment in Graph's JSON, as `parse(Assignment, …)` reads it back."""
    moments = {"dueDateTime": assignment.due, "closeDateTime": assignment.close, "assignDateTime": assignment.assign_at}
    return {
        "id": assignment.id,
        "displayName": assignment.display_name,
        "status": assignment.status.value,
        "grading": None if assignment.max_points is None else {"maxPoints": assignment.max_points},
        **{name: format_datetime(value) if value else None for name, value in moments.items()},
        "webUrl": assignment.web_url,
    }


@dataclass
class ClassSweeper:
    """Brings one class's waiting set up to date (in full or from the recent changes) and stores it.

    - Every change that can put a submission into, or take it out of, "waiting to be graded" (a turn-in, a grade, a
      return, a reassign, an excuse) moves its lastModifiedDateTime, so it comes back from the call, read newest first
      down to OVERLAP before the last sweep. Graph keeps 7 days of them: a class last swept more than FULL_AFTER ago,
      or never, or stamped later than now (a clock set back), is read in full again.
    - The full read takes the submissions of every assignment but drafts (inactive and scheduled ones too), so the
      waiting set is complete for every assignment that existed then; a later one (published since) has only
      submissions created since, which the call returns once they change. An assignment the set does not know, or
      knows as not open, is read (one GET) when one of its submissions turns up waiting: a newly published
      assignment, a reactivated one with new work.
    - What moves no submission (an assignment's due date or name changed, its deactivation, reactivation or deletion)
      is picked up when the class's assignment list is re-read, REREAD_AFTER the last read: until then the digest may
      show the old due date (a "late" it no longer is) or leave out or keep work of an assignment switched off or on.
      Reading the list on every sweep would double the cost (two requests per class).
    """

    store: Store
    education: EducationService

    async def waiting(self, teacher: Teacher, education_class: EducationClass, now: datetime) -> list[UngradedItem]:
        """The class's work waiting to be graded as of `now`, as `EducationService.ungraded` would list it."""
        client = self.education.client(teacher)
        stored = await self.store.get_class_sweep(education_class.id)
        if stored is None or not timedelta(0) <= now - stored.swept_at <= FULL_AFTER:
            state, full_at = await self._full(client, education_class.id, now), now
        else:
            state, full_at = WaitingSet.load(stored.waiting_set), stored.full_at
            await self._update(client, education_class.id, state, stored.swept_at, now)
        await self.store.save_class_sweep(ClassSweep(education_class.id, state.dump(), full_at, now))
        students = await self.education.students(client, education_class.id) if state.open_waiting(now) else {}
        return state.items(education_class, now, students)

    async def _full(self, client: EducationClient, class_id: str, now: datetime) -> WaitingSet:
        state = WaitingSet()
        state.know(await client.list_assignments(class_id), now)
        published = [a.id for a in state.assignments.values() if a.status is not AssignmentStatus.DRAFT]
        settled = await client.list_submissions_many([(class_id, a) for a in published])
        for assignment_id, result in zip(published, settled, strict=True):
            for submission in result.unwrap():
                state.note(submission, assignment_id)
        return state

    async def _update(
        self, client: EducationClient, class_id: str, state: WaitingSet, swept_at: datetime, now: datetime
    ) -> None:
        recent = await client.recently_modified_submissions(class_id, swept_at - OVERLAP)
        if state.assignments_at is None or now - state.assignments_at >= REREAD_AFTER:
            state.know(await client.list_assignments(class_id), now)
        for submission in recent:
            state.note(submission, submission.assignment_id)
        unknown = {s.assignment_id for s in recent if s.id in state.waiting and not state.is_open(s.assignment_id, now)}
        for assignment_id in sorted(unknown):
            try:
                state.assignments[assignment_id] = await client.get_assignment(class_id, assignment_id)
            except GraphNotFoundError:  # deleted since: so is its work
                state.assignments.pop(assignment_id, None)
                state.waiting = {sid: entry for sid, entry in state.waiting.items() if entry[0] != assignment_id}
