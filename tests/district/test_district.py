"""A district: two Gradebot instances (`python app.py`) on one PostgreSQL database, as behind a load balancer, with the
sandbox (`python -m sandbox`) as Microsoft's cloud — grades saved through one instance land once while the other holds
the reminder lease; an instance killed (SIGKILL) with writes in flight while Graph is slow leaves them to the other,
each applied once; two sweeps at the same moment send each digest once; instances starting together migrate a new
database once (they queue on the advisory lock); a database newer than the code is refused with a clear message.

Each test prints `district_…` counts (entries drained, duplicates, lost…) for the lead to quote. PostgreSQL only:
skipped without the server, failed instead under GRADEBOT_REQUIRE_POSTGRES=1 (CI).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from bot.reminders.schedule import default_schedule
from sandbox.directory import TENANT_ID
from storage import open_store
from storage.migrations import MIGRATIONS
from storage.records import UserProfile
from tests.district.instances import (
    HEALTHY_GRAPH,
    District,
    app_command,
    migration_lock_held,
    migrators_waiting,
    new_token_key,
    require_postgres,
    run_sql,
    schema_exists,
    wait_for,
)
from tests.soak.databases import soak_database
from tests.soak.driver import Intent, Session, Soak, SoakConfig, Target, card_actions, card_text, classify
from tests.soak.driver import teachers as soak_teachers
from tests.soak.processes import SandboxProcess
from tests.soak.run import MUST_BE_ZERO

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio(loop_scope="module")]

GRADES = 12
"""Grade writes saved through instance 1 in the first test (three cards per teacher at once), under 20% Graph
faults: 429s, 503s, dropped connections, answers lost after the write, slow answers."""
IN_FLIGHT = 6
"""Writes instance 1 holds when it is killed: half still reading the submission, half with their PATCH sent."""
SLOW_WRITE_MS = 10_000
"""How slow Graph's PATCHes are in the kill test: far beyond the invoke budget (2.5 s), so every card answers
"Saving…", and the instance is killed before they are applied."""
SLOW_READ_MS = 30_000
"""How slow the outbox's reads are there: the instance is killed long before they are answered."""
SWEEP_AT = "2026-11-30T15:30:00+01:00"
"""A Monday, 15:30 in Berlin: every seeded teacher's digest slot."""
LATEST = MIGRATIONS[-1].version


def show(capsys: pytest.CaptureFixture[str], scenario: str, counts: dict[str, Any]) -> None:
    """The counts on the terminal even when the test passes (CI logs keep them)."""
    with capsys.disabled():
        print("", *(f"district_{scenario}_{name} {value}" for name, value in counts.items()), sep="\n")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def district(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[District]:
    """The sandbox, then instance 2 (which takes the reminder lease: its loop ticks every second), then instance 1."""
    require_postgres()
    root = tmp_path_factory.mktemp("district")
    with soak_database("postgres", root) as database_url:
        sandbox = SandboxProcess(root / "sandbox.log", ["--throttle-limit=0", "--throttle-hourly-limit=0"])
        await sandbox.start()
        try:
            district = District(root, sandbox, database_url, new_token_key())
            reminders = {"REMINDERS": "on", "REMINDER_INTERVAL_S": "1"}
            district.second = district.instance("instance-2", **reminders)
            district.first = district.instance("instance-1", **reminders)
            try:
                await district.second.start()
                await wait_for("instance 2 to take the reminder lease", district.lease_holder)
                await district.first.start()
                yield district
            finally:
                await asyncio.gather(district.first.stop(), district.second.stop())
        finally:
            await sandbox.stop()


def fault_plan(config: SoakConfig) -> dict[str, Any]:
    """The soak's fault mix (tests/soak/driver.py `fault_flags`) as the sandbox's JSON plan."""
    share = config.fault_rate / 4
    return {
        **HEALTHY_GRAPH,
        "throttleRate": share,
        "throttleRetryAfterS": 1,
        "errorRate": share,
        "errorStatuses": [503],
        "dropRate": share / 2,
        "lostRate": share / 2,
        "slowRate": share,
        "slowMs": config.slow_ms,
        "seed": config.seed,
    }


async def test_grades_saved_through_one_instance_land_once_while_the_other_holds_the_reminder_lease(
    district: District, capsys: pytest.CaptureFixture[str]
) -> None:
    holder = district.lease_holder()
    config = SoakConfig(
        "postgres",
        GRADES,
        district.database_url,
        sessions_per_teacher=3,
        kills=0,
        think_s=0.1,
        drain_timeout_s=90,
        seed=11,
    )
    await district.admin("PUT", "/_sandbox/graph/faults", fault_plan(config))
    soak = Soak(config, district.sandbox, district.first)  # both instances' outbox loops retry what failed
    try:
        report = await soak.run()
        entries = await soak.entries()
    finally:
        await soak.http.aclose()

    counts = report.counts
    finished = [row for row in entries.values() if row["status"] in ("done", "conflict", "failed")]
    shown = ("writes", "lost", "returns", "returns_twice", "conflicts", "saving_cards", "faults_injected")
    show(
        capsys,
        "grades",
        {"entries_drained": len(finished), "duplicates": counts["applied_twice"], **{n: counts[n] for n in shown}},
    )
    assert holder is not None and district.lease_holder() == holder, "the reminder lease changed hands"
    assert report.counts["writes"] == GRADES
    assert {name: report.counts[name] for name in MUST_BE_ZERO} == dict.fromkeys(MUST_BE_ZERO, 0), "\n".join(
        report.problems
    )


def _in_flight_targets(soak: Soak) -> list[tuple[Session, Target]]:
    """IN_FLIGHT submissions with points, split between the teachers, each graded by one teacher only."""
    chosen: list[tuple[Session, Target]] = []
    sessions = [Session(teacher, 0) for teacher in soak.teachers]
    for session in sessions:
        pool = [t for t in soak.targets[session.teacher.id] if t.max_points is not None and not t.co_taught]
        chosen += [(session, target) for target in pool[: IN_FLIGHT // len(sessions)]]
    assert len(chosen) == IN_FLIGHT
    return chosen


def _slow_graph(index: int, target: Target) -> list[dict[str, Any]]:
    """Even writes: the outbox's read of the submission (a Save's only read of it) is slow, so the instance dies
    before it writes. Odd writes: both PATCHes (points, feedback) are slow, so the instance dies with
    them sent — Graph applies them afterwards, and nobody hears."""
    submission = target.submission_id
    if index % 2 == 0:
        read = f"/submissions/{submission}(\\?|$)"
        return [{"fault": "delay", "delayMs": SLOW_READ_MS, "count": 1, "method": "GET", "pathRegex": read}]
    write = f"/submissions/{submission}/outcomes/"
    return [{"fault": "delay", "delayMs": SLOW_WRITE_MS, "count": 2, "method": "PATCH", "pathRegex": write}]


async def _save(soak: Soak, session: Session, target: Target, card: dict[str, Any]) -> Intent:
    """Press Save on an open grading card with new values (as the soak's teachers do)."""
    save = card_actions(card, "grade")[0]
    serial = next(soak.serials)
    points, feedback = soak.new_values(target, serial)
    data = {**save["data"], "points": str(points), "feedback": feedback}
    key = f"grade:{session.teacher.id}:{target.submission_id}:{data['nonce']}"
    intent = Intent(
        serial, session.teacher, target, points, feedback, key, session.card_id, next(soak.order), time.time()
    )
    soak.intents.append(intent)
    intent.answer = classify(await soak.press(session, "grade", data))
    return intent


async def test_an_instance_killed_with_writes_in_flight_while_graph_is_slow_leaves_them_to_the_other(
    district: District, capsys: pytest.CaptureFixture[str]
) -> None:
    config = SoakConfig(
        "postgres",
        IN_FLIGHT,
        district.database_url,
        kills=0,
        fault_rate=0.0,
        double_press_rate=0.0,
        replay_rate=0.0,
        drain_timeout_s=60,
        seed=12,
    )
    soak = Soak(config, district.sandbox, district.first)
    await district.admin("PUT", "/_sandbox/graph/faults", HEALTHY_GRAPH)
    await district.admin("DELETE", "/_sandbox/graph/faults/script")
    await district.admin("DELETE", "/_sandbox/graph/writes")
    try:
        chosen = _in_flight_targets(soak)
        sessions = list({id(session): session for session, _ in chosen}.values())
        await asyncio.gather(*(soak.open_session(session) for session in sessions))
        cards = [await soak.open_card(session, target) for session, target in chosen]
        script = [fault for index, (_, target) in enumerate(chosen) for fault in _slow_graph(index, target)]
        await district.admin("POST", "/_sandbox/graph/faults/script", script)

        intents = await asyncio.gather(*(_save(soak, s, t, card) for (s, t), card in zip(chosen, cards, strict=True)))
        assert [intent.answer for intent in intents] == ["saving"] * IN_FLIGHT
        left = await soak.entries()
        assert sorted(str(left[i.serial]["status"]) for i in intents) == ["inflight"] * IN_FLIGHT
        await district.first.kill()
        killed_at = time.time()

        # Graph finishes the PATCHes it had received; then the dead instance's entry leases (90 s) run out — moved
        # back in the database rather than waited for.
        sent = [intent for index, intent in enumerate(intents) if index % 2 == 1]
        await wait_for("Graph to apply the PATCHes the killed instance had sent", lambda: _landed(district, sent))
        ids = [int(left[intent.serial]["id"]) for intent in intents]
        run_sql(
            district.database_url,
            "UPDATE outbox SET lease_until = now() - interval '1 second' WHERE id = ANY(%s) AND status = 'inflight'",
            (ids,),
        )
        pending = await soak.drain()
        report = await soak.judge(pending)
        journal = (await district.admin("GET", "/_sandbox/graph/writes"))["writes"]
        finished = await soak.entries()
        updates = [u for u in await soak.told_later() if u[1] >= killed_at - 1]
        script_left = (await district.admin("GET", "/_sandbox/graph/faults/script"))["script"]
    finally:
        await soak.http.aclose()
        await district.admin("DELETE", "/_sandbox/graph/faults/script")

    points: Counter[tuple[str, Decimal | None]] = Counter(
        (w["submissionId"], Decimal(str(w["value"]))) for w in journal if w["kind"] == "points"
    )
    feedback = Counter((w["submissionId"], str(w["value"])) for w in journal if w["kind"] == "feedback")
    times = {
        i.serial: (points[(i.target.submission_id, i.points)], feedback[(i.target.submission_id, i.feedback)])
        for i in intents
    }
    drained = sum(1 for i in intents if finished[i.serial]["status"] == "done" and finished[i.serial]["attempts"] >= 2)
    counts = {
        "entries_left_in_flight": len(intents),
        "entries_drained": drained,
        "duplicates": sum(1 for pair in times.values() if max(pair) > 1),
        "lost": report.counts["lost"],
        "never_applied": sum(1 for pair in times.values() if min(pair) == 0),
        "card_updates_after_kill": len(updates),
    }
    show(capsys, "killed", counts)
    assert script_left == [], "the slow Graph was not met as planned"
    assert times == {intent.serial: (1, 1) for intent in intents}, "\n".join(report.problems)
    assert (counts["entries_drained"], counts["duplicates"], counts["lost"]) == (IN_FLIGHT, 0, 0)
    assert report.counts["pending"] == 0 and report.counts["applied_twice"] == 0
    told = {(card, submission) for card, _, submission, text in updates if "Saving…" not in text}
    assert {(intent.card_id, intent.target.submission_id) for intent in intents} <= told, (
        "a teacher told 'Saving…' was not told how the write ended"
    )
    await district.first.start()  # the district has two instances again


async def _landed(district: District, intents: list[Intent]) -> bool:
    journal = (await district.admin("GET", "/_sandbox/graph/writes"))["writes"]
    written = {(w["submissionId"], str(w["value"])) for w in journal if w["kind"] == "feedback"}
    return all((intent.target.submission_id, intent.feedback) in written for intent in intents)


async def test_two_instances_sweeping_reminders_at_the_same_moment_send_each_digest_once(
    district: District, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    teachers = soak_teachers()
    now = datetime.now(UTC)
    with soak_database("postgres", tmp_path) as database_url:
        async with await open_store(database_url) as store:
            for teacher in teachers:
                # Seen in a class team (so a 1:1 chat can be opened), a digest due every day at 15:30 in Berlin.
                profile = UserProfile(teacher.id, TENANT_ID, None, "Europe/Berlin", now, f"29:{teacher.id}")
                await store.save_user_profile(replace(profile, service_url=f"{district.sandbox.base_url}/connector"))
                schedule = default_schedule(teacher.id, TENANT_ID, "Europe/Berlin", now)
                await store.save_schedule(replace(schedule, days=frozenset(range(7))))
        await district.admin("PUT", "/_sandbox/graph/faults", {**HEALTHY_GRAPH, "latencyMs": 100})
        env = district.instance("sweeps", database_url, REMINDER_DATA_ACCESS="application").env
        try:
            runs = await asyncio.gather(*(app_command(env, "remind-once", "--at", SWEEP_AT) for _ in range(2)))
        finally:
            await district.admin("PUT", "/_sandbox/graph/faults", HEALTHY_GRAPH)
        assert [run.returncode for run in runs] == [0, 0], "\n".join(run.stderr[-2000:] for run in runs)
        reports = [json.loads(run.stdout) for run in runs]
        recorded = run_sql(database_url, "SELECT teacher_id, slot_key FROM digests ORDER BY teacher_id")
        chats = dict(run_sql(database_url, "SELECT conversation_id, user_aad_id FROM conversations"))

    sent = Counter(teacher for report in reports for teacher in report["sent"])
    digests = await _digests(district)
    delivered = {
        teacher.id: digests[chat]
        for chat, teacher_id in chats.items()
        for teacher in teachers
        if teacher.id == teacher_id
    }
    counts = {
        "teachers": len(teachers),
        "sweeps_holding_the_lease": sum(1 for report in reports if report["held_lease"]),
        "digests_sent": sum(delivered.values()),
        "duplicates": sum(n - 1 for n in delivered.values() if n > 1),
        "lost": sum(1 for n in delivered.values() if n == 0),
    }
    show(capsys, "sweeps", counts)
    assert delivered == {teacher.id: 1 for teacher in teachers}
    assert sum(digests.values()) == len(teachers), "a digest went to a conversation that is no teacher's 1:1 chat"
    assert sent == Counter(teacher.id for teacher in teachers)
    assert sorted(teacher for teacher, _ in recorded) == sorted(teacher.id for teacher in teachers)


async def _digests(district: District) -> Counter[str]:
    """Digests (cards headed "Grading reminder") the Bot Connector delivered, per conversation."""
    record = await district.admin("GET", "/_sandbox/connector/activities")
    return Counter(
        str(a["conversationId"])
        for a in record["activities"]
        if a["operation"] in ("send", "reply") and "Grading reminder" in card_text(a.get("activity")).splitlines()
    )


async def test_instances_starting_together_on_a_new_database_queue_for_its_migration(
    district: District, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with soak_database("postgres", tmp_path) as database_url:
        instances = [district.instance(f"starting-{n}", database_url) for n in range(2)]
        try:
            with migration_lock_held(database_url):
                starting = [asyncio.ensure_future(instance.start()) for instance in instances]
                await wait_for(
                    "every starting instance to wait for the migration lock",
                    lambda: migrators_waiting(database_url) == len(instances),
                )
                migrated_while_locked = schema_exists(database_url)
            await asyncio.gather(*starting)
            versions = run_sql(database_url, "SELECT version FROM schema_version ORDER BY version")
        finally:
            await asyncio.gather(*(instance.stop() for instance in instances))

    show(capsys, "migrations", {"instances_queued": len(instances), "steps_applied_once": len(versions)})
    assert not migrated_while_locked
    assert versions == [(step.version,) for step in MIGRATIONS]


async def test_a_database_migrated_by_a_newer_gradebot_is_refused_with_a_clear_message(
    district: District, tmp_path: Path
) -> None:
    with soak_database("postgres", tmp_path) as database_url:
        async with await open_store(database_url):
            pass
        newer = "INSERT INTO schema_version (version, name) VALUES (%s, 'a newer release')"
        run_sql(database_url, newer, (LATEST + 1,))
        env = district.instance("older", database_url).env

        run = await app_command(env)
        versions = run_sql(database_url, "SELECT max(version) FROM schema_version")

    assert run.returncode == 2, run.stderr[-3000:]
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("Gradebot cannot start: the database is at schema version"), run.stderr[-3000:]
    assert f"schema version {LATEST + 1}, newer than this Gradebot knows ({LATEST})" in last
    assert "Traceback" not in run.stderr
    assert versions == [(LATEST + 1,)]
