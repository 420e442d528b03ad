"""The reminder lease while a sweep runs, driven step by step: two `Reminders` (two instances) share one store (both
engines) and a clock the test moves; the Graph reads are real (the sandbox), each digest's delivery "takes" the time
the test gives it. A long sweep keeps its lease (renewed between teachers, not at every one), and a sweep whose lease
was taken over stops rather than read and send beside the new holder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.reminders.schedule import default_schedule
from bot.reminders.sweep import LEASE_NAME, Reminders, SweepReport
from bot.school.service import EducationService
from graph.connection import GraphHttp, TokenProvider
from sandbox.app import Sandbox
from sandbox.directory import TENANT_ID
from sandbox.seed import generate_school
from storage import Store
from storage.records import ConversationRecord
from tests.bot.conftest import start_sandbox
from tests.storage.conftest import Database, stored_time

SWEEP_AT = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
"""Every teacher's slot (08:00 UTC, every day) is due at this instant."""
INTERVAL_S = 60.0
TTL = timedelta(seconds=180)
"""The lease a sweep takes with a 60 s interval (three intervals)."""
TEACHERS = 5


class Clock:
    """The instances' clock: stands still until the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


Hook = Callable[[str], Awaitable[None]]


@dataclass
class Connector:
    """Teams as the instances see it: every card sent, by whom, to which teacher; `during_send` runs inside a send
    (the time a delivery takes, and what another instance does meanwhile)."""

    sent: list[tuple[str, str]] = field(default_factory=list)
    during_send: dict[str, Hook] = field(default_factory=dict)

    def messenger(self, instance: str) -> Messenger:
        return Messenger(self, instance)


@dataclass
class Messenger:
    connector: Connector
    instance: str

    async def send_card(self, reference: Mapping[str, Any], card: dict[str, Any]) -> str | None:
        teacher = str(reference["user"]["aadObjectId"])
        hook = self.connector.during_send.get(self.instance)
        if hook is not None:
            await hook(teacher)
        self.connector.sent.append((self.instance, teacher))
        return f"activity-{len(self.connector.sent)}"

    async def open_personal_chat(self, service_url: str, tenant_id: str, user_teams_id: str) -> dict[str, Any]:
        raise AssertionError("every teacher has a 1:1 chat already")


@dataclass
class District:
    store: Store
    database: Database
    sandbox: Sandbox
    graph: GraphHttp
    clock: Clock
    connector: Connector
    teachers: list[str]
    tokens: dict[str, str]

    def instance(self, name: str) -> Reminders:
        async def no_pause(seconds: float) -> None:
            return None

        def provider(tenant_id: str, teacher_id: str) -> TokenProvider:
            async def token(refresh: bool = False) -> str:
                return self.tokens[teacher_id]

            return token

        return Reminders(
            self.store,
            EducationService(self.graph),
            self.connector.messenger(name),
            provider,
            owner=name,
            interval_s=INTERVAL_S,
            sign_in_note=lambda tenant_id, teacher_id: {"type": "AdaptiveCard"},
            sleep=no_pause,
            clock=self.clock,
        )

    def lease(self) -> tuple[str, datetime]:
        ((holder, until),) = self.database.execute(f"SELECT holder, expires_at FROM leases WHERE name = '{LEASE_NAME}'")
        return str(holder), stored_time(until)

    def digests_per_teacher(self) -> dict[str, int]:
        return {teacher: sum(1 for _, t in self.connector.sent if t == teacher) for teacher in self.teachers}


@pytest.fixture
async def district(database: Database) -> AsyncIterator[District]:
    """Five teachers with a digest due at SWEEP_AT, a 1:1 chat each and a Graph token each."""
    sandbox = start_sandbox(generate_school(classes=2 * TEACHERS, assignments_per_class=1, students_per_class=3))
    await sandbox.start()
    graph = GraphHttp(sandbox.graph_url)
    try:
        teachers = sorted({t for c in sandbox.school.directory.classes.values() for t in c.teacher_ids})
        assert len(teachers) == TEACHERS
        tokens: dict[str, str] = {}
        async with httpx.AsyncClient(trust_env=False) as http:
            for teacher in teachers:
                answer = await http.post(f"{sandbox.base_url}/_sandbox/token", json={"userId": teacher})
                tokens[teacher] = str(answer.raise_for_status().json()["access_token"])
        async with await database.open() as store:
            for teacher in teachers:
                schedule = default_schedule(teacher, TENANT_ID, "UTC", SWEEP_AT)
                await store.save_schedule(replace(schedule, days=frozenset(range(7)), local_time="08:00"))
                await store.save_conversation(_personal_chat(teacher, sandbox.connector_url))
            yield District(store, database, sandbox, graph, Clock(SWEEP_AT), Connector(), teachers, tokens)
    finally:
        await graph.aclose()
        await sandbox.stop()


def _personal_chat(teacher: str, service_url: str) -> ConversationRecord:
    conversation = f"a:{teacher}"
    return ConversationRecord(
        conversation_id=conversation,
        kind="personal",
        tenant_id=TENANT_ID,
        service_url=service_url,
        bot_id="28:gradebot",
        user_aad_id=teacher,
        team_id=None,
        class_id=None,
        reference={
            "conversation": {"id": conversation, "conversationType": "personal", "tenantId": TENANT_ID},
            "user": {"id": f"29:{teacher}", "aadObjectId": teacher},
            "bot": {"id": "28:gradebot"},
            "serviceUrl": service_url,
            "channelId": "msteams",
        },
        updated_at=SWEEP_AT,
    )


async def test_a_sweep_longer_than_its_lease_keeps_it_and_no_other_instance_takes_over(district: District) -> None:
    first, second = district.instance("instance-1"), district.instance("instance-2")
    meanwhile: list[SweepReport] = []

    async def slow_delivery(teacher: str) -> None:
        district.clock.now += timedelta(seconds=70)  # 5 teachers × 70 s: the sweep outlasts the 180 s lease
        meanwhile.append(await second.run_once(district.clock()))  # the other instance's tick, mid-sweep

    district.connector.during_send["instance-1"] = slow_delivery
    report = await first.run_once(district.clock())

    assert report.held_lease and not report.lease_lost
    assert [r.held_lease for r in meanwhile] == [False] * TEACHERS, "another instance took the lease mid-sweep"
    assert sorted(report.sent) == district.teachers
    assert district.digests_per_teacher() == dict.fromkeys(district.teachers, 1)
    holder, until = district.lease()
    assert holder == "instance-1" and until > district.clock(), "the lease outlives the sweep that holds it"


async def test_a_quick_sweep_takes_its_lease_once_and_does_not_renew_it_at_every_teacher(district: District) -> None:
    first = district.instance("instance-1")

    async def quick_delivery(teacher: str) -> None:
        district.clock.now += timedelta(seconds=5)

    district.connector.during_send["instance-1"] = quick_delivery
    report = await first.run_once(district.clock())

    assert sorted(report.sent) == district.teachers
    assert district.lease() == ("instance-1", SWEEP_AT + TTL), "renewed although most of the lease was left"


async def test_a_sweep_whose_lease_was_taken_over_stops_before_the_next_teacher(district: District) -> None:
    first, second = district.instance("instance-1"), district.instance("instance-2")
    second_sending = asyncio.Event()
    let_second_go = asyncio.Event()
    takeover: list[asyncio.Task[SweepReport]] = []

    async def stuck_delivery(teacher: str) -> None:
        if takeover:
            return
        district.clock.now += TTL + timedelta(seconds=20)  # one delivery outlasts the whole lease
        takeover.append(asyncio.ensure_future(second.run_once(district.clock())))
        await second_sending.wait()  # the other instance holds the lease now and is sending its first digest

    async def second_delivery(teacher: str) -> None:
        second_sending.set()
        await let_second_go.wait()

    district.connector.during_send["instance-1"] = stuck_delivery
    district.connector.during_send["instance-2"] = second_delivery
    report = await first.run_once(district.clock())
    let_second_go.set()
    second_report = await takeover[0]

    assert second_report.held_lease
    assert report.lease_lost, "the sweep did not notice it lost its lease"
    assert len(report.sent) == 1, f"kept sending after losing the lease: {len(report.sent)} digests"
    assert sorted(report.sent + second_report.sent) == district.teachers
    assert district.digests_per_teacher() == dict.fromkeys(district.teachers, 1)
    assert district.lease()[0] == "instance-2"


async def test_a_sweep_as_if_at_another_time_still_respects_the_lease_of_a_running_instance(district: District) -> None:
    """`remind-once --at` sweeps as if at any instant; the lease it shares with running instances is on their clock."""
    running, operator = district.instance("instance-1"), district.instance("remind-once")
    assert (await running.run_once(district.clock())).held_lease

    tomorrow = await operator.run_once(district.clock() + timedelta(days=1))
    yesterday = await operator.run_once(district.clock() - timedelta(days=1))

    assert (tomorrow.held_lease, yesterday.held_lease) == (False, False)
    assert district.lease()[0] == "instance-1"
