"""The three measured scenarios, each run by Gradebot's own code and by the naive client on the same data:
ungraded work across one teacher's classes, returning every graded submission of an assignment, and a reminder
sweep over a district. Each checks that both approaches computed the same thing before reporting numbers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.host import HostMode, SandboxHost, SeededTeacher, open_sandbox
from bench.measure import Comparison, Measurement, SweepBudget, measure
from bench.naive import NaiveGraph, naive_return_each, naive_ungraded
from bench.recording import RecordingTransport
from bench.school import SchoolShape
from bot.kernel.turn import Teacher
from bot.reminders.schedule import default_schedule
from bot.reminders.sweep import Reminders
from bot.reminders.waiting import ClassSweeper
from bot.school.progress import GradingState, UngradedItem, grading_state
from bot.school.service import OPEN_STATUSES, EducationService
from bot.settings import Settings
from graph.client import EducationClient, PointsPatch, SubmissionRef
from graph.connection import GraphHttp, RequestBudget, TokenProvider
from graph.models import SubmissionStatus
from sandbox.faults import FaultPlan
from storage import open_store
from storage.records import ConversationRecord
from storage.store import Store

GRAPH_READ_TIMEOUT_S = 10.0
GRAPH_MAX_CONCURRENCY = 8
"""The product's defaults (bot/settings.py: GRAPH_TIMEOUT_S, GRAPH_MAX_CONCURRENCY)."""


class BenchMismatchError(Exception):
    """Gradebot and the naive client computed different results: the numbers would compare different work."""


@dataclass(frozen=True, slots=True)
class BenchOptions:
    shape: SchoolShape
    """The district for scenarios A and C (A uses its first teacher)."""
    plan: FaultPlan
    mode: HostMode = "subprocess"
    page_size: int = 10
    naive_teachers: int | None = None
    """Teachers the naive sweep covers (None = all); its totals are then scaled to the whole district."""
    district_teachers: int = 50
    """District size for the throttle-budget arithmetic."""

    def __post_init__(self) -> None:
        if self.naive_teachers is not None and self.naive_teachers < 1:
            raise ValueError("--naive-teachers must be at least 1")
        if self.district_teachers < 1 or self.page_size < 1:
            raise ValueError("--district-teachers and --page-size must be at least 1")


class TeacherTokens:
    """Delegated Graph tokens minted by the sandbox's identity helper, one per teacher, fetched once."""

    def __init__(self, host: SandboxHost) -> None:
        self._host = host
        self._tokens: dict[str, str] = {}

    async def get(self, user_id: str, refresh: bool = False) -> str:
        if refresh or user_id not in self._tokens:
            self._tokens[user_id] = await self._host.token(user_id)
        return self._tokens[user_id]

    def provider(self, user_id: str) -> TokenProvider:
        async def provide(refresh: bool = False) -> str:
            return await self.get(user_id, refresh)

        return provide


def _clock() -> datetime:
    return datetime.now(UTC)


def _gradebot_http(
    host: SandboxHost, transport: httpx.AsyncBaseTransport | None = None, budget: RequestBudget | None = None
) -> GraphHttp:
    """Graph access configured as the product configures it (Settings' defaults), with its request budget."""
    return GraphHttp(
        host.graph_url,
        read_timeout=GRAPH_READ_TIMEOUT_S,
        max_concurrency=GRAPH_MAX_CONCURRENCY,
        transport=transport,
        budget=budget or RequestBudget(Settings().graph_request_budget),
    )


def _naive_http(transport: RecordingTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=transport, timeout=GRAPH_READ_TIMEOUT_S, trust_env=False)


def _teacher(host: SandboxHost, tokens: TeacherTokens, seeded: SeededTeacher) -> Teacher:
    return Teacher(host.tenant_id, seeded.id, "", "", tokens.provider(seeded.id))


def _same(what: str, gradebot: object, naive: object) -> None:
    if gradebot != naive:
        raise BenchMismatchError(f"{what}: Gradebot and the naive client disagree")


# -- A. ungraded across all of a teacher's classes ------------------------------------------------------------------


async def ungraded_for_teacher(host: SandboxHost, tokens: TeacherTokens, seeded: SeededTeacher) -> Comparison:
    """`EducationService.ungraded(teacher, None)` against the naive N+1 walk, for one teacher."""
    await tokens.get(seeded.id)
    recorder = RecordingTransport(GRAPH_MAX_CONCURRENCY)
    async with _gradebot_http(host, recorder) as http:
        service = EducationService(http, _clock)
        teacher = _teacher(host, tokens, seeded)
        gradebot, items = await measure(host, recorder.exchanges, lambda: service.ungraded(teacher, None))
    naive_recorder = RecordingTransport(1)
    async with _naive_http(naive_recorder) as client:
        graph = NaiveGraph(client, host.graph_url, await tokens.get(seeded.id))
        naive, found = await measure(host, naive_recorder.exchanges, lambda: naive_ungraded(graph))
    waiting = {(item.submission.id, item.student_name) for item in items}
    _same("ungraded submissions", waiting, {(item.submission_id, item.student_name) for item in found})
    return Comparison(
        "ungraded",
        f"ungraded, 1 teacher × {len(seeded.class_ids)} classes",
        gradebot,
        naive,
        {"classes": len(seeded.class_ids), "ungraded": len(waiting)},
    )


# -- B. return every graded submission of an assignment -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ReturnWork:
    class_id: str
    assignment_id: str
    targets: tuple[str, ...]


async def _grade_everything_waiting(host: SandboxHost, tokens: TeacherTokens) -> tuple[SeededTeacher, _ReturnWork]:
    """Setup (not measured): the teacher gives points to every submission waiting; those are the ones to return."""
    seeded = (await host.teachers())[0]
    class_id = seeded.class_ids[0]
    async with _gradebot_http(host) as http:
        client = EducationClient(http, tokens.provider(seeded.id))
        assignment = next(
            a for a in await client.list_assignments(class_id) if a.status in OPEN_STATUSES and a.is_points
        )
        points = (assignment.max_points or 10.0) * 0.8
        patches = [
            PointsPatch(SubmissionRef(class_id, assignment.id, s.id), s.outcomes.points.id, points)
            for s in await client.list_submissions(class_id, assignment.id)
            if grading_state(s) is GradingState.NEEDS_GRADING and s.outcomes and s.outcomes.points
        ]
        for settled in await client.patch_outcomes_many(patches):
            settled.unwrap()
        submissions = await client.list_submissions(class_id, assignment.id)
    targets = tuple(s.id for s in submissions if grading_state(s) is GradingState.GRADED_NOT_RETURNED)
    return seeded, _ReturnWork(class_id, assignment.id, targets)


async def _returned(host: SandboxHost, tokens: TeacherTokens, seeded: SeededTeacher, work: _ReturnWork) -> set[str]:
    async with _gradebot_http(host) as http:
        submissions = await EducationClient(http, tokens.provider(seeded.id)).list_submissions(
            work.class_id, work.assignment_id, expand_outcomes=False
        )
    return {s.id for s in submissions if s.id in work.targets and s.status is SubmissionStatus.RETURNED}


async def _return_with_gradebot(
    host: SandboxHost, tokens: TeacherTokens, seeded: SeededTeacher, work: _ReturnWork
) -> Measurement:
    refs = [(work.class_id, work.assignment_id, sid) for sid in work.targets]
    recorder = RecordingTransport(GRAPH_MAX_CONCURRENCY)
    async with _gradebot_http(host, recorder) as http:
        client = EducationClient(http, tokens.provider(seeded.id))
        measured, settled = await measure(host, recorder.exchanges, lambda: client.return_many(refs))
    for item in settled:
        item.unwrap()
    return measured


async def _return_naively(
    host: SandboxHost, tokens: TeacherTokens, seeded: SeededTeacher, work: _ReturnWork
) -> Measurement:
    recorder = RecordingTransport(1)
    async with _naive_http(recorder) as session:
        graph = NaiveGraph(session, host.graph_url, await tokens.get(seeded.id))
        measured, _ = await measure(
            host, recorder.exchanges, lambda: naive_return_each(graph, work.class_id, work.assignment_id, work.targets)
        )
    return measured


ReturnApproach = Callable[[SandboxHost, TeacherTokens, SeededTeacher, _ReturnWork], Awaitable[Measurement]]


async def _return_on_fresh_class(
    options: BenchOptions, shape: SchoolShape, approach: ReturnApproach
) -> tuple[Measurement, _ReturnWork, set[str]]:
    async with open_sandbox(shape, options.plan, mode=options.mode, page_size=options.page_size) as host:
        tokens = TeacherTokens(host)
        seeded, work = await _grade_everything_waiting(host, tokens)
        measured = await approach(host, tokens, seeded, work)
        return measured, work, await _returned(host, tokens, seeded, work)


async def return_all_graded(options: BenchOptions) -> Comparison:
    """`EducationClient.return_many` ($batch) against one POST at a time, each on a fresh copy of the same class."""
    shape = SchoolShape(1, 1, 1, options.shape.students, options.shape.seed)
    gradebot, work, gradebot_returned = await _return_on_fresh_class(options, shape, _return_with_gradebot)
    naive, naive_work, naive_returned = await _return_on_fresh_class(options, shape, _return_naively)
    _same("submissions to return", set(work.targets), set(naive_work.targets))
    _same("submissions returned", gradebot_returned, naive_returned)
    _same("every graded submission returned", gradebot_returned, set(work.targets))
    return Comparison(
        "returnAll",
        f"return all graded, 1 assignment × {shape.students} students",
        gradebot,
        naive,
        {"returned": len(work.targets)},
    )


# -- C. a reminder sweep over a district ------------------------------------------------------------------------------


class _ObservedEducation(EducationService):
    """The real service, with each teacher's ungraded list as the sweep computed it (to compare afterwards)."""

    def __init__(self, http: GraphHttp, clock: Callable[[], datetime]) -> None:
        super().__init__(http, clock)
        self.computed: dict[str, list[UngradedItem]] = {}


class _DigestSink:
    """Stands in for Teams delivery (not what this benchmark measures): counts the digest cards handed over."""

    def __init__(self) -> None:
        self.cards = 0

    async def send_card(self, reference: Mapping[str, Any], card: dict[str, Any]) -> str | None:
        self.cards += 1
        return f"bench-{self.cards}"

    async def open_personal_chat(self, service_url: str, tenant_id: str, user_teams_id: str) -> dict[str, Any]:
        return {"conversation": {"id": f"a:bench-{user_teams_id}"}, "bot": {"id": "28:bench"}}


async def _no_pause(seconds: float) -> None:
    """Teams send pacing is left out: it is the same for any Graph strategy."""


async def _seed_schedules(
    reminders_store: Store, host: SandboxHost, teachers: Sequence[SeededTeacher], now: datetime
) -> None:
    for seeded in teachers:
        # Every day at the sweep's minute, so each teacher is due now.
        schedule = default_schedule(seeded.id, host.tenant_id, "UTC", now)
        await reminders_store.save_schedule(
            replace(schedule, days=frozenset(range(7)), local_time=now.strftime("%H:%M"))
        )
        conversation_id = f"a:bench-{seeded.id}"
        await reminders_store.save_conversation(
            ConversationRecord(
                conversation_id=conversation_id,
                kind="personal",
                tenant_id=host.tenant_id,
                service_url=f"{host.base_url}/connector",
                bot_id="28:bench",
                user_aad_id=seeded.id,
                team_id=None,
                class_id=None,
                reference={"conversation": {"id": conversation_id}},
                updated_at=now,
            )
        )


async def district_sweep(host: SandboxHost, tokens: TeacherTokens, options: BenchOptions) -> Comparison:
    """`Reminders.run_once` over every teacher (real SQLite store) against the naive walk teacher after teacher."""
    teachers = await host.teachers()
    for seeded in teachers:
        await tokens.get(seeded.id)
    now = _clock()
    recorder = RecordingTransport(GRAPH_MAX_CONCURRENCY)
    store = await open_store("sqlite:///:memory:")
    try:
        await _seed_schedules(store, host, teachers, now)
        async with _gradebot_http(host, recorder) as http:
            education = _ObservedEducation(http, _clock)
            sink = _DigestSink()
            reminders = Reminders(
                store,
                education,
                sink,
                lambda tenant_id, teacher_id: tokens.provider(teacher_id),
                owner="bench",
                interval_s=60.0,
                sign_in_note=lambda tenant_id, teacher_id: {"type": "AdaptiveCard"},
                budget=http.budget,
                sleep=_no_pause,
            )
            gradebot, report = await measure(host, recorder.exchanges, lambda: reminders.run_once(now))
            # The sweep keeps each class's waiting set in the store: read back what it computed (not measured).
            sweeper = ClassSweeper(store, education)
            for seeded in teachers:
                teacher = _teacher(host, tokens, seeded)
                classes = await education.taught_classes(teacher)
                education.computed[seeded.id] = [i for c in classes for i in await sweeper.waiting(teacher, c, now)]
    finally:
        await store.close()
    sampled = teachers[: options.naive_teachers] if options.naive_teachers else teachers
    naive_recorder = RecordingTransport(1)
    naive_found: dict[str, set[tuple[str, str]]] = {}

    async def naive_sweep() -> None:
        async with _naive_http(naive_recorder) as client:
            for seeded in sampled:
                graph = NaiveGraph(client, host.graph_url, await tokens.get(seeded.id))
                naive_found[seeded.id] = {(i.submission_id, i.student_name) for i in await naive_ungraded(graph)}

    naive_measured, _ = await measure(host, naive_recorder.exchanges, naive_sweep)
    for seeded in sampled:
        if seeded.id in report.failed:
            continue
        computed = {(i.submission.id, i.student_name) for i in education.computed.get(seeded.id, [])}
        _same(f"ungraded for teacher {seeded.id}", computed, naive_found[seeded.id])
    naive = naive_measured
    if len(sampled) < len(teachers):
        naive = naive_measured.scaled(len(teachers) / len(sampled), f"{len(sampled)} of {len(teachers)} teachers")
    admitted = gradebot.graph_requests - gradebot.throttled
    naive_admitted = naive_measured.graph_requests - naive_measured.throttled
    budget = SweepBudget(
        options.district_teachers,
        admitted / len(teachers),
        naive_admitted / len(sampled),
        gradebot.assignment_service_requests / len(teachers),
        naive_measured.assignment_service_requests / len(sampled),
    )
    shape = options.shape
    return Comparison(
        "sweep",
        f"reminder sweep, {len(teachers)} teachers × {shape.classes_per_teacher} classes",
        gradebot,
        naive,
        {
            "teachers": len(teachers),
            "naiveTeachersMeasured": len(sampled),
            "digestsSent": len(report.sent),
            "nothingWaiting": len(report.nothing_waiting),
            "failedTeachers": len(report.failed),
            "ungraded": sum(len(items) for items in education.computed.values()),
            "budget": budget.to_json(),
        },
    )


async def run_all(options: BenchOptions, progress: Callable[[str], None] = lambda line: None) -> list[Comparison]:
    """Scenarios A and C on one district sandbox, B on two fresh copies of one class."""
    comparisons: list[Comparison] = []
    progress(f"starting the sandbox ({options.shape.describe()}, {options.mode})")
    async with open_sandbox(options.shape, options.plan, mode=options.mode, page_size=options.page_size) as host:
        tokens = TeacherTokens(host)
        first = (await host.teachers())[0]
        progress("A. ungraded across one teacher's classes")
        comparisons.append(await ungraded_for_teacher(host, tokens, first))
        progress("C. reminder sweep over the district")
        sweep = await district_sweep(host, tokens, options)
    progress("B. return all graded submissions of an assignment")
    comparisons.append(await return_all_graded(options))
    comparisons.append(sweep)
    return comparisons
