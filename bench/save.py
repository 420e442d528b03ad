"""One Save's cost: a teacher presses Save grade (points and feedback) on a grading card and gets the next card —
Graph requests and round trips for the whole use-case (`Grading.grade`: check, durable write, next screen)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory

from bench.figures import Figure
from bench.host import SandboxHost, open_sandbox, product_http
from bench.school import SchoolShape
from bench.timeline import Timeline
from bot.grading.grading import Grading, Outcome
from bot.grading.session import GradingSession, GradingView
from bot.grading.writes import GradeChange, GradeWrites
from bot.kernel.turn import CardRef, Teacher
from bot.outbox.queue import Outbox
from bot.school.service import EducationService
from cards.blocks import new_nonce
from cards.grading import last_change
from graph.client import SubmissionRef
from sandbox.faults import FaultPlan
from storage import open_store
from storage.records import OutboxEntry

TITLE = "One Save: Save grade (points + feedback) and the next grading card"
SHAPE = SchoolShape(teachers=1, classes_per_teacher=1, assignments=2, students=35)
BEFORE_GRAPH_REQUESTS = 12
BEFORE_ROUND_TRIPS = 11
"""Measured on this scenario before the Save was reworked: the submission read three times, the assignment twice, and
the next card's submission list (4 pages of 10 in the sandbox) only after the write."""
QUICK_GRAPH_REQUESTS = 9
QUICK_ROUND_TRIPS = 5
"""What a Save costs now (quick mode asserts it does not grow): the list is read alongside the check and the write,
the assignment once, the submission once (the outbox's conflict check), nothing read back after the write."""
SAVES = 3


@dataclass(frozen=True, slots=True)
class SaveCost:
    graph_requests: float
    round_trips: float


async def _nobody_waits(entry: OutboxEntry) -> bool:
    """Every Save here lands within its turn, so no card waits for a late write."""
    return True


async def _one_save(host: SandboxHost, store_path: Path) -> SaveCost:
    seeded = (await host.teachers())[0]
    token = await host.token(seeded.id)

    async def provide(refresh: bool = False) -> str:
        return token

    teacher = Teacher(host.tenant_id, seeded.id, provide)
    recorder = Timeline()
    store = await open_store(f"sqlite:///{store_path}")
    try:
        async with contextlib.aclosing(product_http(host, recorder)) as http:
            education = EducationService(http)
            session = GradingSession(education, store)
            outbox = Outbox(
                store,
                http,
                lambda _tenant, _teacher: teacher.token,
                GradeWrites(store),
                owner="bench",
                clock=lambda: datetime.now(UTC),
                on_settled=_nobody_waits,
            )
            grading = Grading(session, outbox, store)
            class_id = seeded.class_ids[0]
            assignment = next(a for a in await education.client(teacher).list_assignments(class_id) if a.is_points)
            screen = await session.open(teacher, class_id, assignment.id)  # the card the teacher presses Save on
            requests, trips = 0, 0
            for _ in range(SAVES):
                assert isinstance(screen, GradingView), "the benchmark class ran out of work to grade"
                ref = SubmissionRef(class_id, assignment.id, screen.submission.id)
                points = Decimal(str((assignment.max_points or 10) * 0.8))
                known = last_change(screen.submission.outcomes)[0]
                typed = GradeChange(points, "Clear and well argued.", (), known, False)
                await host.reset()
                recorder.spans.clear()
                outcome = await grading.grade(
                    teacher,
                    ref,
                    typed,
                    nonce=new_nonce(),
                    card=CardRef("bench", None, False),
                )
                stats = await host.stats()
                assert isinstance(outcome, Outcome) and outcome.undo is not None, "the save did not land"
                requests += stats.requests
                trips += recorder.critical_path()
                screen = outcome.screen
            await outbox.stop()
    finally:
        await store.close()
    return SaveCost(requests / SAVES, trips / SAVES)


async def measure(quick: bool) -> list[Figure]:
    """Three Saves in a row on one assignment (warm caches, as after opening the card), averaged."""
    plan = FaultPlan(latency_ms=10.0 if quick else 100.0, jitter_ms=0.0)
    async with open_sandbox(SHAPE, plan, mode="in-process" if quick else "subprocess") as host:
        with TemporaryDirectory() as folder:
            cost = await _one_save(host, Path(folder) / "save.db")
    requests_target = BEFORE_GRAPH_REQUESTS / 2
    trips_target = BEFORE_ROUND_TRIPS / 2
    figures = [
        Figure(
            "save_graph_requests",
            cost.graph_requests,
            "req",
            f"<= {requests_target:g} (before: {BEFORE_GRAPH_REQUESTS})",
            cost.graph_requests <= requests_target,
        ),
        Figure(
            "save_round_trips",
            cost.round_trips,
            "rtt",
            f"<= {trips_target:g} (before: {BEFORE_ROUND_TRIPS})",
            cost.round_trips <= trips_target,
        ),
    ]
    if quick:
        assert cost.graph_requests <= QUICK_GRAPH_REQUESTS, figures[0].line()
        assert cost.round_trips <= QUICK_ROUND_TRIPS, figures[1].line()
    return figures
