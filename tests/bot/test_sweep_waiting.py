"""Issue 11: the reminder sweep keeps each class's waiting set and brings it up to date from the class's recently
modified submissions — and what it lists always equals a full read of the class (the product's `ungraded`): after
turn-ins, grades, returns, a resubmission, a newly published assignment, more than a week without a sweep, a clock
that went back, and (after the weekly assignment re-read) a due date moved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from bot.kernel.turn import Teacher
from bot.reminders.waiting import REREAD_AFTER, ClassSweeper
from bot.school.progress import UngradedItem, oldest_first
from bot.school.service import EducationService
from graph.connection import GraphHttp
from sandbox.app import Sandbox
from sandbox.directory import User
from sandbox.school import Actor, PointsOutcome, SchoolError, Submission
from sandbox.seed import default_school
from storage import Store, open_store
from tests.bot.conftest import start_sandbox

T0 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
"""The seeded school's "now"; the first sweep runs two hours later (so its seed is not the last hour's changes)."""


class Clock:
    def __init__(self) -> None:
        self.now = T0 + timedelta(hours=2)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Sweeping:
    """A sandbox school, Gradebot's sweeper over a SQLite store, and Rosa (Biology 101, Chemistry 201)."""

    sandbox: Sandbox
    clock: Clock
    http: GraphHttp
    store: Store
    rosa: User
    teacher: Teacher

    requests: int = 0
    """Graph requests on the assignment service (the budget a sweep spends) by the last sweep."""

    async def swept(self) -> list[UngradedItem]:
        """What the sweep lists for Rosa now (her classes from Graph, each from its stored waiting set)."""
        sweeper = ClassSweeper(self.store, EducationService(self.http))
        classes = await EducationService(self.http).taught_classes(self.teacher)
        return oldest_first([i for c in classes for i in await sweeper.waiting(self.teacher, c, self.clock.now)])

    async def full_read(self) -> list[UngradedItem]:
        return await EducationService(self.http).ungraded(self.teacher, None)

    async def assert_sweep_equals_full_read(self) -> list[UngradedItem]:
        """Sweep (counting its requests), then check it against a full read of Rosa's classes."""
        self.sandbox.faults.reset_stats()
        swept = await self.swept()
        stats = self.sandbox.faults.stats
        self.requests = stats.requests - stats.roster_requests
        assert _shown(swept) == _shown(await self.full_read())
        return swept

    def submissions(self, status: str) -> list[Submission]:
        school = self.sandbox.school
        return [
            s
            for c in school.directory.taught_by(self.rosa.id)
            for a in school.assignments_of(c.id)
            if school.assignment_status(a) == "assigned"
            for s in a.submissions.values()
            if s.state.status == status
        ]

    def later(self, **delta: float) -> None:
        self.clock.now += timedelta(**delta)


def _shown(items: list[UngradedItem]) -> list[tuple[object, ...]]:
    """Everything a digest shows of each waiting item."""
    return [
        (
            i.education_class.id,
            i.education_class.display_name,
            i.assignment.id,
            i.assignment.display_name,
            i.assignment.due,
            i.submission.id,
            i.student_name,
            i.turned_in_at,
            i.late_by,
        )
        for i in items
    ]


def _turn_in(world: Sweeping, submission: Submission) -> bool:
    ids = (submission.class_id, submission.assignment_id, submission.id)
    try:
        world.sandbox.school.submit(*ids, by=Actor.user(submission.student_id))
    except SchoolError:
        return False  # closed, or no late work: another one will do
    return True


def _turn_in_some(world: Sweeping, count: int) -> list[Submission]:
    turned_in: list[Submission] = []
    for submission in world.submissions("working"):
        if len(turned_in) < count and _turn_in(world, submission):
            turned_in.append(submission)
    return turned_in


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[Sweeping]:
    clock = Clock()
    school = default_school(now=T0)
    school.clock = clock
    sandbox = start_sandbox(school)
    await sandbox.start()
    store = await open_store(f"sqlite:///{tmp_path / 'gradebot.db'}")
    http = GraphHttp(sandbox.graph_url)
    rosa = school.directory.user_by_upn("rosa.martinez@contoso-high.example")
    assert rosa is not None
    async with httpx.AsyncClient() as admin:
        token = (await admin.post(f"{sandbox.base_url}/_sandbox/token", json={"userId": rosa.id})).json()

    async def provide(refresh: bool = False) -> str:
        return str(token["access_token"])

    try:
        yield Sweeping(sandbox, clock, http, store, rosa, Teacher(school.directory.tenant_id, rosa.id, provide))
    finally:
        await http.aclose()
        await store.close()
        await sandbox.stop()


async def test_after_one_full_read_each_sweep_costs_one_request_per_class(world: Sweeping) -> None:
    first = await world.assert_sweep_equals_full_read()
    assert first and world.requests > 4  # no state yet: every class's assignments and their submissions read
    stored = await world.store.get_class_sweep(first[0].education_class.id)
    assert stored is not None and stored.full_at == stored.swept_at == world.clock.now

    world.later(hours=20)
    waiting = world.submissions("submitted")
    turned_in = _turn_in_some(world, 2)
    points = next(o for o in waiting[0].outcomes if isinstance(o, PointsOutcome))
    school = world.sandbox.school
    grader = Actor.user(world.rosa.id)
    school.set_points(waiting[0].class_id, waiting[0].assignment_id, waiting[0].id, points.id, 8.0, by=grader)
    school.return_submission(waiting[1].class_id, waiting[1].assignment_id, waiting[1].id, by=grader)
    world.later(hours=4)
    second = await world.assert_sweep_equals_full_read()
    assert world.requests == 2  # Biology and Chemistry: getRecentlyModifiedSubmissions once each
    listed = {i.submission.id for i in second}
    assert {s.id for s in turned_in} <= listed and not {waiting[0].id, waiting[1].id} & listed

    # The graded one goes back for revision and comes back: waiting again, though it was graded before.
    world.later(days=1)
    school.reassign(waiting[0].class_id, waiting[0].assignment_id, waiting[0].id, by=grader)
    world.later(hours=1)
    assert _turn_in(world, waiting[0])
    third = await world.assert_sweep_equals_full_read()
    assert waiting[0].id in {i.submission.id for i in third} and world.requests == 2


async def test_a_newly_published_assignment_is_read_when_its_first_work_waits(world: Sweeping) -> None:
    await world.assert_sweep_equals_full_read()
    school = world.sandbox.school
    biology = next(c for c in school.directory.taught_by(world.rosa.id) if c.class_code == "BIO101")
    by = Actor.user(world.rosa.id)
    world.later(hours=2)
    created = school.create_assignment(biology.id, "Osmosis lab", by=by, max_points=20, due_at=world.clock.now)
    school.publish(biology.id, created.id, by=by)
    world.later(hours=1)  # turned in after the due date: late
    assert _turn_in(world, next(iter(created.submissions.values())))
    world.later(days=1)
    swept = await world.assert_sweep_equals_full_read()
    new = [i for i in swept if i.assignment.id == created.id]
    assert len(new) == 1 and new[0].assignment.display_name == "Osmosis lab" and new[0].late_by is not None
    # Biology's recent changes are the 25 submissions publishing created (one page of up to 100), Chemistry's fit one
    # page, and the assignment it did not know is read once.
    assert world.requests == 1 + 1 + 1


async def test_a_class_not_swept_for_more_than_six_days_is_read_in_full_again(world: Sweeping) -> None:
    await world.assert_sweep_equals_full_read()
    world.later(days=6, hours=1)  # Graph's 7-day window, less a day's margin, has passed
    assert _turn_in_some(world, 3)
    swept = await world.assert_sweep_equals_full_read()
    assert world.requests > 4  # more than one getRecentlyModifiedSubmissions per class: assignments and submissions
    stored = await world.store.get_class_sweep(swept[0].education_class.id)
    assert stored is not None and stored.full_at == world.clock.now


async def test_a_clock_that_went_back_reads_in_full(world: Sweeping) -> None:
    world.later(days=2)
    await world.assert_sweep_equals_full_read()
    world.clock.now = T0  # e.g. `remind-once --at` an earlier moment: changes since then would be missed
    await world.assert_sweep_equals_full_read()
    assert world.requests > 4  # a full read: each class's assignments and their submissions


async def test_a_moved_due_date_shows_once_the_assignment_list_is_re_read(world: Sweeping) -> None:
    before = await world.assert_sweep_equals_full_read()
    late = next(i for i in before if i.late_by is not None)
    assignment = world.sandbox.school.assignments[late.assignment.id]
    world.later(days=1)
    assert assignment.due_at is not None
    assignment.due_at += timedelta(days=30)  # the teacher extends the deadline in Teams: no submission changes
    assignment.last_modified_at = world.clock.now
    stale = await world.swept()
    assert next(i for i in stale if i.submission.id == late.submission.id).late_by == late.late_by  # not yet seen
    world.later(days=REREAD_AFTER.days)
    fresh = await world.assert_sweep_equals_full_read()
    assert next(i for i in fresh if i.submission.id == late.submission.id).late_by is None
    assert world.requests == 2 + 2  # each class's recent submissions and its assignment list
