"""What every room reads about a school, with the teacher's own token: taught classes, the teacher check, rosters,
a class's work in few round trips ($batch), assignments with progress and ungraded work (briefly cached)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from cachetools import TTLCache

from bot.kernel.errors import NotATeacherError
from bot.kernel.turn import Teacher
from bot.school.progress import GradingState, grading_state, lateness, oldest_first
from cards.lists import UngradedItem
from graph.batch import Settled
from graph.client import EducationClient
from graph.connection import GraphHttp
from graph.errors import GraphForbiddenError, GraphNotFoundError
from graph.models import Assignment, AssignmentStatus, EducationClass, Submission, SubmissionStatus

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
TEACHER_CACHE_S = 60.0
ROSTER_CACHE_S = 300.0
UNGRADED_CACHE_S = 30.0
"""Paging through a long ungraded list reuses it briefly; any write by the teacher drops it."""
# Assignments whose submissions exist and can hold turned-in work.
OPEN_STATUSES = frozenset({AssignmentStatus.ASSIGNED, AssignmentStatus.PUBLISHED})


@dataclass(frozen=True, slots=True)
class ClassWork:
    """One class's assignments with their submissions (outcomes expanded) and the student roster."""

    education_class: EducationClass
    assignments: list[Assignment]
    submissions: dict[str, list[Submission]]
    students: dict[str, str]


class EducationService:
    """Reads what a teacher may see, always with the teacher's own delegated Graph token."""

    def __init__(self, http: GraphHttp) -> None:
        self._http = http
        self._teachers: TTLCache[tuple[str, str], tuple[EducationClass, list[str]]]
        self._teachers = TTLCache(CACHE_SIZE, TEACHER_CACHE_S)
        self._rosters: TTLCache[str, dict[str, str]] = TTLCache(CACHE_SIZE, ROSTER_CACHE_S)
        self._lists: TTLCache[tuple[str, ...], list[UngradedItem]] = TTLCache(CACHE_SIZE, UNGRADED_CACHE_S)

    def client(self, teacher: Teacher) -> EducationClient:
        return EducationClient(self._http, teacher.token)

    async def taught_classes(self, teacher: Teacher) -> list[EducationClass]:
        client = self.client(teacher)
        mine = client.user_taught_classes(teacher.aad_object_id) if teacher.app_only else client.taught_classes()
        return sorted(await mine, key=lambda c: c.display_name.casefold())

    async def require_teacher(self, teacher: Teacher, class_id: str) -> EducationClass:
        """The class, if the caller teaches it (checked with Graph's /teachers); else NotATeacherError."""
        return (await self.class_and_teachers(teacher, class_id))[0]

    async def class_and_teachers(self, teacher: Teacher, class_id: str) -> tuple[EducationClass, list[str]]:
        """The class and its teachers' Entra ids, if the caller teaches it (read with their token, cached for them)."""
        cached = self._teachers.get((class_id, teacher.aad_object_id))
        if cached is not None:
            return cached
        client = self.client(teacher)
        try:
            teachers, education_class = await asyncio.gather(
                client.class_teachers(class_id), client.get_class(class_id)
            )
        except (GraphNotFoundError, GraphForbiddenError) as exc:
            raise NotATeacherError() from exc
        if teacher.aad_object_id not in {t.id for t in teachers}:
            log.info("refused: user %s is not a teacher of class %s", teacher.aad_object_id, class_id)
            raise NotATeacherError()
        found = self._teachers[(class_id, teacher.aad_object_id)] = (education_class, [t.id for t in teachers])
        return found

    async def students(self, client: EducationClient, class_id: str) -> dict[str, str]:
        """Student id → display name for a class (cached briefly)."""
        names = self._rosters.get(class_id)
        if names is None:
            names = self._rosters[class_id] = {m.id: m.display_name for m in await client.class_members(class_id)}
        return names

    async def class_work(
        self, teacher: Teacher, education_class: EducationClass, *, turned_in_only: bool = False
    ) -> ClassWork:
        """Assignments and their submissions in few round trips: each page of assignments starts the `$batch` of its
        submission lists as soon as it arrives, and the roster is read alongside, off the critical path.
        `turned_in_only` has Graph send only submissions now turned in (`submitted`), the only ones that can wait for
        a grade."""
        client = self.client(teacher)
        class_id = education_class.id
        roster = asyncio.ensure_future(self.students(client, class_id))
        batches: list[asyncio.Future[list[Settled[list[Submission]]]]] = []
        assignments: list[Assignment] = []
        try:
            async for page in client.assignment_pages(class_id):
                assignments.extend(page)
                opened = [(class_id, a.id) for a in page if a.status in OPEN_STATUSES]
                status = SubmissionStatus.SUBMITTED if turned_in_only else None
                batches.append(asyncio.ensure_future(client.list_submissions_many(opened, status=status)))
            settled = [result for batch in await asyncio.gather(*batches) for result in batch]
            students = await roster
        finally:
            roster.cancel()
            for batch in batches:
                batch.cancel()
        with_work = [a for a in assignments if a.status in OPEN_STATUSES]
        submissions = {a.id: result.unwrap() for a, result in zip(with_work, settled, strict=True)}
        return ClassWork(education_class, assignments, submissions, students)

    def forget_lists(self, teacher: Teacher) -> None:
        """The teacher changed something: their cached ungraded lists are stale."""
        for key in [key for key in self._lists if key[0] == teacher.aad_object_id]:
            self._lists.pop(key, None)

    async def ungraded(self, teacher: Teacher, class_ids: Sequence[str] | None) -> list[UngradedItem]:
        """Turned-in work waiting for a grade, oldest first, across the given classes (None = all taught)."""
        key = (teacher.aad_object_id, *(sorted(class_ids) if class_ids is not None else ["*"]))
        cached = self._lists.get(key)
        if cached is not None:
            return cached
        if class_ids is None:
            classes = await self.taught_classes(teacher)
        else:
            classes = list(await asyncio.gather(*(self.require_teacher(teacher, c) for c in class_ids)))
        works = await asyncio.gather(*(self.class_work(teacher, c, turned_in_only=True) for c in classes))
        items = self._lists[key] = oldest_first(
            UngradedItem(
                work.education_class,
                assignment,
                submission,
                work.students.get(submission.student_id or "", "A student"),
                lateness(submission, assignment),
            )
            for work in works
            for assignment in work.assignments
            for submission in work.submissions.get(assignment.id, [])
            if grading_state(submission) is GradingState.NEEDS_GRADING
        )
        return items
