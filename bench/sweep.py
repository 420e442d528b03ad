"""The reminder sweep from stored waiting sets: a district swept on school days with students turning work in and
teachers grading and returning in between; Graph requests per class, 429s, and every digest against a full read."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from bench.figures import Figure
from bot.kernel.turn import Teacher
from bot.reminders.schedule import default_schedule, digest_entries, meets_threshold
from bot.reminders.sweep import Reminders
from bot.reminders.waiting import ClassSweeper
from bot.school.service import EducationService
from bot.settings import Settings
from cards.reminders import digest_card
from graph.connection import GraphHttp, RequestBudget, TokenProvider
from sandbox.app import Sandbox
from sandbox.directory import User
from sandbox.faults import FaultPlan
from sandbox.school import FEEDBACK_OUTCOME_ID, Actor, ItemBody, School, SchoolError, Submission
from sandbox.seed import generate_school
from storage import open_store
from storage.records import ConversationRecord, ReminderSchedule
from storage.store import Store

TITLE = "Reminder sweep: one Graph request per class from stored waiting sets"
START = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)
"""A Monday; the first sweep reads every class in full, each later school day's sweep is measured."""
NO_LATENCY = FaultPlan(latency_ms=0.0, jitter_ms=0.0)
UNTHROTTLED = replace(NO_LATENCY, throttle_limit=0, throttle_hourly_limit=0)
"""While the reference full reads run (not measured) Graph does not throttle; each sweep then starts afresh."""


@dataclass(frozen=True, slots=True)
class District:
    teachers: int
    classes_per_teacher: int = 4
    assignments: int = 8
    students: int = 25
    school_days: int = 10
    """Sweeps after the first (full) one, one per school day."""


FULL = District(teachers=50)
QUICK = District(teachers=2, assignments=6, students=12, school_days=6)


class SimulatedClock:
    """The sandbox's and Gradebot's shared clock, moved by the benchmark."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass
class DigestSink:
    """The Teams side: which card each teacher's 1:1 chat received in this sweep."""

    cards: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def send_card(self, reference: Mapping[str, Any], card: dict[str, Any]) -> str | None:
        self.cards[str(reference["conversation"]["id"]).removeprefix("a:bench-")] = card
        return None

    async def open_personal_chat(self, service_url: str, tenant_id: str, user_teams_id: str) -> dict[str, Any]:
        raise AssertionError("every teacher's chat is in the store already")


def district_school(shape: District, clock: SimulatedClock) -> tuple[School, list[User]]:
    """A generated school whose classes are dealt to `shape.teachers` teachers, `classes_per_teacher` each."""
    classes = shape.teachers * shape.classes_per_teacher
    school = generate_school(classes, shape.assignments, shape.students, now=clock.now)
    school.clock = clock
    directory = school.directory
    teachers = sorted((u for u in directory.users.values() if u.role == "teacher"), key=lambda u: u.id)
    for number, school_class in enumerate(sorted(directory.classes.values(), key=lambda c: c.id)):
        school_class.teacher_ids = [teachers[number // shape.classes_per_teacher].id]
    return school, teachers[: shape.teachers]


def school_day_activity(school: School, rng: random.Random, day: int) -> None:
    """Per class: three turn-ins, two grades, a return; every third day one class in four publishes new work."""
    for number, school_class in enumerate(sorted(school.directory.classes.values(), key=lambda c: c.id)):
        _class_day(school, school_class.id, school_class.teacher_ids[0], rng, day if number % 4 == day % 4 else 0)


def _class_day(school: School, class_id: str, teacher_id: str, rng: random.Random, publish_day: int) -> None:
    teacher = Actor.user(teacher_id)
    if publish_day and publish_day % 3 == 0:
        created = school.create_assignment(class_id, f"Day {publish_day} exit ticket", by=teacher, max_points=10)
        school.publish(class_id, created.id, by=teacher)
    submissions = [s for a in school.assignments_of(class_id) for s in a.submissions.values()]
    rng.shuffle(submissions)

    def with_status(*statuses: str) -> list[Submission]:
        return [s for s in submissions if s.state.status in statuses]

    seen = ItemBody("Seen: well argued.")
    _each(with_status("working", "reassigned"), 3, lambda s: school.submit(*_ids(s), by=Actor.user(s.student_id)))
    _each(with_status("submitted"), 2, lambda s: school.set_feedback(*_ids(s), FEEDBACK_OUTCOME_ID, seen, by=teacher))
    _each(with_status("submitted"), 1, lambda s: school.return_submission(*_ids(s), by=teacher))


def _ids(submission: Submission) -> tuple[str, str, str]:
    return submission.class_id, submission.assignment_id, submission.id


def _each(candidates: list[Submission], count: int, act: Callable[[Submission], object]) -> None:
    """`act` on the first `count` candidates that take it (a closed assignment refuses late work)."""
    done = 0
    for submission in candidates:
        if done == count:
            return
        try:
            act(submission)
        except SchoolError:
            continue
        done += 1


async def _seed(store: Store, sandbox: Sandbox, teachers: list[User], now: datetime) -> dict[str, ReminderSchedule]:
    """Every teacher wants a digest every day at the sweep's minute, in UTC, and has a 1:1 chat with Gradebot."""
    schedules = {}
    for teacher in teachers:
        schedule = default_schedule(teacher.id, sandbox.directory.tenant_id, "UTC", now)
        schedule = replace(schedule, days=frozenset(range(7)), local_time=now.strftime("%H:%M"))
        await store.save_schedule(schedule)
        schedules[teacher.id] = schedule
        conversation_id = f"a:bench-{teacher.id}"
        await store.save_conversation(
            ConversationRecord(
                conversation_id=conversation_id,
                kind="personal",
                tenant_id=schedule.tenant_id,
                service_url=f"{sandbox.base_url}/connector",
                bot_id="28:bench",
                user_aad_id=teacher.id,
                team_id=None,
                class_id=None,
                reference={"conversation": {"id": conversation_id}},
                updated_at=now,
            )
        )
    return schedules


async def _no_pause(seconds: float) -> None:
    """Teams send pacing is the same whichever way the digest was computed."""


@dataclass
class Tally:
    sweeps: int = 0
    classes: int = 0
    assignment_requests: int = 0
    roster_requests: int = 0
    throttled: int = 0
    digests: int = 0
    mismatches: list[str] = field(default_factory=list)


async def measure(quick: bool) -> list[Figure]:
    """Sweep the district once in full, then on each school day after activity; raises AssertionError when a
    digest differs from the one a full read gives or a count misses its target."""
    shape = QUICK if quick else FULL
    clock = SimulatedClock(START)
    school, teachers = district_school(shape, clock)
    async with Sandbox(school, faults=UNTHROTTLED, page_size=10) as sandbox, httpx.AsyncClient() as admin:
        tokens = {
            t.id: str(
                (await admin.post(f"{sandbox.base_url}/_sandbox/token", json={"userId": t.id})).json()["access_token"]
            )
            for t in teachers
        }
        store = await open_store("sqlite:///:memory:")
        graph = f"{sandbox.base_url}/v1.0"
        paced = GraphHttp(graph, budget=RequestBudget(Settings.from_env({}).graph_request_budget))
        unpaced = GraphHttp(graph)
        try:
            run = _Run(sandbox, store, paced, unpaced, clock, tokens, await _seed(store, sandbox, teachers, clock.now))
            await run.first_sweep()
            rng = random.Random(11)
            day = 0
            while run.tally.sweeps < shape.school_days:
                day += 1
                clock.now = START + timedelta(days=day, hours=-6)
                school_day_activity(school, rng, day)
                clock.now = START + timedelta(days=day)
                if clock.now.weekday() < 5:
                    await run.sweep_day()
        finally:
            await paced.aclose()
            await unpaced.aclose()
            await store.close()
    return _figures(run.tally)


@dataclass
class _Run:
    sandbox: Sandbox
    store: Store
    paced: GraphHttp
    """Graph as the product uses it: its own request budget (GRAPH_REQUEST_BUDGET's default)."""
    unpaced: GraphHttp
    """For what is not measured: the first full read and the reference reads."""
    clock: SimulatedClock
    tokens: dict[str, str]
    schedules: dict[str, ReminderSchedule]
    sink: DigestSink = field(default_factory=DigestSink)
    tally: Tally = field(default_factory=Tally)

    def provider(self, tenant_id: str, teacher_id: str) -> TokenProvider:
        async def token(refresh: bool = False) -> str:
            return self.tokens[teacher_id]

        return token

    @property
    def teachers(self) -> list[Teacher]:
        return [
            Teacher(s.tenant_id, s.teacher_id, self.provider(s.tenant_id, s.teacher_id))
            for s in self.schedules.values()
        ]

    async def first_sweep(self) -> None:
        """Every class read in full, as the first sweep does (not measured)."""
        education = EducationService(self.unpaced)
        sweeper = ClassSweeper(self.store, education)
        for teacher in self.teachers:
            for education_class in await education.taught_classes(teacher):
                await sweeper.waiting(teacher, education_class, self.clock.now)

    async def sweep_day(self) -> None:
        """One measured sweep (Graph throttling as documented), then each teacher's digest from a full read."""
        # A day after the last sweep nothing of its in-process caches (rosters: 5 minutes) is left.
        reminders = Reminders(
            self.store,
            EducationService(self.paced),
            self.sink,
            self.provider,
            owner="bench",
            interval_s=60.0,
            sign_in_note=lambda tenant_id, teacher_id: {},
            budget=self.paced.budget,
            sleep=_no_pause,
            clock=self.clock,
        )
        faults, tally, now = self.sandbox.faults, self.tally, self.clock.now
        faults.plan = NO_LATENCY
        faults.reset_stats()
        self.sink.cards.clear()
        report = await reminders.run_once(now)
        tally.sweeps += 1
        tally.classes += len(self.sandbox.directory.classes)
        tally.assignment_requests += faults.stats.requests - faults.stats.roster_requests
        tally.roster_requests += faults.stats.roster_requests
        tally.throttled += faults.stats.throttled
        tally.digests += len(report.sent)
        faults.plan = UNTHROTTLED
        reference = EducationService(self.unpaced)
        for teacher in self.teachers:
            schedule = self.schedules[teacher.aad_object_id]
            entries = digest_entries(await reference.ungraded(teacher, None), schedule.min_age_days, now)
            shown = meets_threshold(schedule, entries, now)
            expected = digest_card(entries, ZoneInfo("UTC"), now) if shown else None
            if self.sink.cards.get(teacher.aad_object_id) != expected:
                tally.mismatches.append(f"{now.date()} teacher {teacher.aad_object_id}")


def _figures(tally: Tally) -> list[Figure]:
    per_class = tally.assignment_requests / tally.classes
    figures = [
        Figure("sweep_requests_per_class", round(per_class, 2), "req", "<= 1.1", per_class <= 1.1),
        Figure("sweep_roster_requests_per_class", round(tally.roster_requests / tally.classes, 2), "req"),
        Figure("sweep_throttled", tally.throttled, "req", "0", tally.throttled == 0),
        Figure("sweep_digests_equal", int(not tally.mismatches), "bool", "1", not tally.mismatches),
        Figure("sweep_digests_sent", tally.digests, "digests"),
    ]
    assert not tally.mismatches, f"digests differ from a full read: {tally.mismatches[:5]}"
    assert tally.throttled == 0, f"{tally.throttled} requests were throttled"
    return figures
