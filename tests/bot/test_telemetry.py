"""Telemetry (issue 10): JSON log lines that name their turn (activity id, conversation hash, operation, outcome) and
never student data; spans for incoming turns and the Graph calls they make, with no query strings or ids in them;
metrics for the outbox's depth and age, reminder sweeps and digests, and Graph's 429s — all recorded in memory here
(tests/bot/telemetry_memory.py), and off, with nothing sent anywhere, unless Azure Monitor is configured."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind

from app import PARTS
from bot.reminders.schedule import default_schedule
from bot.telemetry.context import JsonFormatter, conversation_hash, note, scope
from bot.telemetry.export import path_template, scrubbed_url
from sandbox.directory import TENANT_ID
from sandbox.faults import ScriptedFault
from tests.bot import browser
from tests.bot.activities import card_action, message
from tests.bot.conftest import World, WorldFactory, card_text, invoke_card, replies
from tests.bot.grading_helpers import assignment_named, open_grading, press
from tests.bot.telemetry_memory import Recorded

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BATCH = r"/\$batch$"
MONDAY_1530 = datetime(2026, 11, 30, 14, 30, tzinfo=UTC)  # 15:30 in Berlin


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the console handler main() installed (LOG_FORMAT=json, see the privacy scan) writes, line by line."""
    root = logging.getLogger()
    console = next(
        h for h in root.handlers if isinstance(h, logging.StreamHandler) and isinstance(h.formatter, JsonFormatter)
    )
    buffer = io.StringIO()
    previous = console.setStream(buffer)
    try:
        yield buffer
    finally:
        console.setStream(previous)


def _entries(buffer: io.StringIO) -> list[dict[str, Any]]:
    lines = buffer.getvalue().splitlines()
    assert lines, "nothing was logged"
    entries = [json.loads(line) for line in lines]
    assert all(isinstance(entry, dict) for entry in entries)
    return entries


def _turn_line(entries: list[dict[str, Any]], activity_id: str) -> dict[str, Any]:
    (line,) = [e for e in entries if e.get("activity") == activity_id and e["message"].startswith("turn handled")]
    return line


async def test_each_log_line_is_one_json_object_naming_its_turn_by_ids_only(
    world: World, json_lines: io.StringIO
) -> None:
    rosa = world.user("rosa")
    activity = message(rosa, "ungraded", world.sandbox.connector_url)
    status, _ = await world.post(activity)
    assert status == 200

    entries = _entries(json_lines)
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= entry.keys(), entry
        datetime.fromisoformat(entry["time"])
    conversation_id = activity["conversation"]["id"]
    expected_hash = hashlib.sha256(conversation_id.encode()).hexdigest()[:16]
    turn = _turn_line(entries, activity["id"])
    assert turn["level"] == "INFO" and turn["logger"] == "bot.teams.activity"
    assert (turn["conversation"], turn["operation"], turn["outcome"]) == (expected_hash, "ungraded", "ok")
    assert len(turn["trace_id"]) == 32 and len(turn["span_id"]) == 16
    # Every line logged during the turn (Graph's requests included) carries the turn's ids.
    graph_lines = [e for e in entries if e["logger"].startswith("graph")]
    assert graph_lines and all(e.get("activity") == activity["id"] for e in graph_lines)
    assert all(e.get("conversation") == expected_hash for e in graph_lines)
    assert conversation_id not in json_lines.getvalue(), "the raw conversation id was logged"


async def test_the_operation_is_a_command_word_or_verb_never_what_was_typed(
    world: World, json_lines: io.StringIO
) -> None:
    rosa = world.user("rosa")
    student = next(u for u in world.school.directory.users.values() if u.role == "student")
    typed = message(rosa, f"{student.display_name} needs a look", world.sandbox.connector_url)
    assert (await world.post(typed))[0] == 200
    unknown = card_action(rosa, "rm -rf", {"x": 1}, world.sandbox.connector_url)
    assert (await world.post(unknown))[0] == 200
    shown = card_action(rosa, "showUngraded", {"page": 0}, world.sandbox.connector_url)
    assert (await world.post(shown))[0] == 200

    entries = _entries(json_lines)
    assert _turn_line(entries, typed["id"])["operation"] == "help"
    assert (_turn_line(entries, unknown["id"])["operation"], _turn_line(entries, unknown["id"])["outcome"]) == (
        "unknown verb",
        "invalid",
    )
    assert (_turn_line(entries, shown["id"])["operation"], _turn_line(entries, shown["id"])["outcome"]) == (
        "showUngraded",
        "ok",
    )
    assert student.display_name.split()[0] not in json_lines.getvalue()


async def test_outcomes_say_how_a_turn_ended(make_world: WorldFactory, json_lines: io.StringIO) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    needs_sign_in = card_action(rosa, "showUngraded", {"page": 0}, world.sandbox.connector_url)
    status, body = await world.post(needs_sign_in)
    assert status == 200 and body["statusCode"] == 401
    wrong_code = card_action(rosa, "showUngraded", {"page": 0}, world.sandbox.connector_url, state="000000")
    assert (await world.post(wrong_code))[0] == 200

    entries = _entries(json_lines)
    assert _turn_line(entries, needs_sign_in["id"])["outcome"] == "sign-in needed"
    assert _turn_line(entries, wrong_code["id"])["outcome"] == "sign-in code refused"


async def test_an_incoming_turn_and_its_graph_calls_are_spans_of_one_trace(world: World, telemetry: Recorded) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    status, body = await world.post(message(rosa, "ungraded", world.sandbox.connector_url))
    assert status == 200 and "Biology 101" in card_text(replies(body))

    spans = telemetry.spans()
    (turn,) = [s for s in spans if s.kind is SpanKind.SERVER and s.name == "POST /api/messages"]
    assert turn.attributes is not None
    assert (turn.attributes["http.route"], turn.attributes["http.status_code"]) == ("/api/messages", 200)
    assert turn.context is not None
    calls = [
        s for s in spans if s.kind is SpanKind.CLIENT and s.context and s.context.trace_id == turn.context.trace_id
    ]
    assert calls, [s.name for s in spans]
    names = {s.name for s in calls}
    assert "POST /v1.0/$batch" in names or any(n.startswith("GET /v1.0/education/") for n in names), names
    for span in calls:
        attributes = dict(span.attributes or {})
        url = str(attributes.get("http.url") or attributes.get("url.full"))
        assert url.startswith("http://127.0.0.1:") and "?" not in url, url
        assert bio.id not in span.name + url and rosa.id not in span.name + url, (span.name, url)
        assert attributes.get("http.status_code") == 200


async def test_a_sign_in_link_leaves_no_query_string_in_its_span(make_world: WorldFactory, telemetry: Recorded) -> None:
    world = await make_world(dev_sso=False)
    rosa = world.user("rosa")
    status, body = await world.post(card_action(rosa, "showUngraded", {"page": 0}, world.sandbox.connector_url))
    assert status == 200 and body["statusCode"] == 401
    link = body["value"]["buttons"][0]["value"]
    status, _, _ = await browser.start(world, link)
    assert status == 302

    (start,) = [s for s in telemetry.spans() if s.name == "GET /auth/start"]
    attributes = dict(start.attributes or {})
    assert attributes["http.target"] == "/auth/start"
    assert "?" not in str(attributes["http.url"]) and "link=" not in json.dumps(attributes)


async def test_the_outbox_reports_its_depth_and_the_age_of_its_oldest_write(world: World, telemetry: Recorded) -> None:
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    worksheet = assignment_named(world, bio, "Cell structure worksheet")
    card = await open_grading(world, rosa, bio, worksheet)
    world.sandbox.faults.add_script([ScriptedFault(status=503, count=40, method="POST", path_regex=BATCH)])
    recorded_at = datetime.now(UTC).replace(microsecond=0)
    world.clock.fixed = recorded_at
    status, body = await press(world, rosa, card, "grade", {"points": "9", "feedback": "Kept safe"})
    assert status == 200 and "Sav" in card_text(invoke_card(body))
    parts = world.client.app[PARTS]

    world.clock.fixed = recorded_at + timedelta(seconds=90)
    await parts.outbox.tick(parts.clock())
    assert telemetry.gauge("gradebot.outbox.depth") == 1
    assert telemetry.gauge("gradebot.outbox.oldest_age") == 90.0

    world.sandbox.faults.clear_script()
    world.clock.fixed = recorded_at + timedelta(hours=2)  # past every backoff: the write lands
    await parts.outbox.tick(parts.clock())
    assert telemetry.gauge("gradebot.outbox.depth") == 0
    assert telemetry.gauge("gradebot.outbox.oldest_age") == 0.0


async def test_429s_from_graph_are_counted_for_requests_and_batch_items(world: World, telemetry: Recorded) -> None:
    rosa = world.user("rosa")
    world.sandbox.faults.add_script(
        [
            ScriptedFault(status=429, retry_after_s=0.01, count=2, method="POST", path_regex=BATCH),
            ScriptedFault(status=429, retry_after_s=0.01, count=1, method="GET", path_regex="/submissions"),
        ]
    )
    status, body = await world.post(message(rosa, "ungraded", world.sandbox.connector_url))
    assert status == 200 and "Waiting to be graded" in card_text(replies(body))
    assert world.sandbox.faults.script == [], "every scripted 429 was answered"

    assert telemetry.total("gradebot.graph.throttled", **{"graph.batch_item": False}) == 2
    assert telemetry.total("gradebot.graph.throttled", **{"graph.batch_item": True}) == 1


async def test_a_reminder_sweep_is_timed_and_its_digests_counted(world: World, telemetry: Recorded) -> None:
    rosa = world.user("rosa")
    assert (await world.post(message(rosa, "help", world.sandbox.connector_url)))[0] == 200
    parts = world.client.app[PARTS]
    await parts.store.save_schedule(replace(default_schedule(rosa.id, TENANT_ID, "Europe/Berlin", MONDAY_1530)))

    report = await parts.reminders.run_once(MONDAY_1530)
    assert report.sent == [rosa.id]
    again = await parts.reminders.run_once(MONDAY_1530 + timedelta(minutes=1))
    assert again.sent == []

    assert telemetry.total("gradebot.reminders.digests_sent") == 1
    assert telemetry.total("gradebot.reminders.sweep.duration", **{"gradebot.lease_held": True}) == 2


def test_telemetry_is_off_without_a_connection_string_nothing_is_set_up_or_sent() -> None:
    """main() with no APPLICATIONINSIGHTS_CONNECTION_STRING, in a process of its own: no provider, no
    instrumentation, Azure Monitor never even imported."""
    script = """
import sys
from aiohttp import web
import httpx
from opentelemetry import metrics, trace
from bot import cli

original_application, original_send = web.Application, httpx.AsyncHTTPTransport.handle_async_request
served = []
code = cli.run(["serve"], serve=served.append, remind_once=None)
assert code == 0 and len(served) == 1, code
assert type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider", trace.get_tracer_provider()
assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider", metrics.get_meter_provider()
assert web.Application is original_application, "aiohttp was instrumented"
assert httpx.AsyncHTTPTransport.handle_async_request is original_send, "httpx was instrumented"
assert not [name for name in sys.modules if name.startswith("azure.monitor")], "Azure Monitor was imported"
print("off")
"""
    keep = {name: os.environ.get(name, "") for name in ("PATH", "HOME", "LANG")}  # noqa: TID251 - the child's environment
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env={**keep, "DATABASE_URL": "sqlite:///:memory:"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and result.stdout.strip() == "off", result.stderr[-3000:]


@pytest.mark.parametrize(
    ("path", "template"),
    [
        (
            "/v1.0/education/classes/8d3c1c1e-5e6f-4a1b-9c2d-0e1f2a3b4c5d/assignments/ab12cd34ef/submissions",
            "/v1.0/education/classes/{id}/assignments/{id}/submissions",
        ),
        (
            "/v1.0/education/classes/c1/assignments/a1/submissions/s1/outcomes/o1",
            "/v1.0/education/classes/{id}/assignments/{id}/submissions/{id}/outcomes/{id}",
        ),
        ("/beta/education/classes/c1/assignments/a1/submissions/s1/return", None),
        ("/v1.0/education/users/0f1e2d3c-aaaa-bbbb-cccc-1234567890ab/classes", "/v1.0/education/users/{id}/classes"),
        ("/v1.0/education/me/taughtClasses", "/v1.0/education/me/taughtClasses"),
        ("/v1.0/$batch", "/v1.0/$batch"),
        ("/v3/conversations/a%3A1xyz/activities/1712345678901", "/v3/conversations/{id}/activities/{id}"),
    ],
)
def test_paths_become_templates_without_ids(path: str, template: str | None) -> None:
    expected = template or "/beta/education/classes/{id}/assignments/{id}/submissions/{id}/return"
    assert path_template(path) == expected


def test_urls_lose_their_query_strings_and_fragments() -> None:
    url = "https://graph.microsoft.com/v1.0/education/classes/c1/assignments?$filter=status%20eq%20'x'&$skiptoken=abc#f"
    assert scrubbed_url(url) == "https://graph.microsoft.com/v1.0/education/classes/{id}/assignments"
    assert scrubbed_url("/auth/start?link=eyJhbGciOi.eyJzdWIiOi.c2ln") == "/auth/start"


def test_a_traceback_stays_on_one_line_and_text_is_kept_as_written() -> None:
    formatter = JsonFormatter()
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        record = logging.LogRecord("bot.x", logging.ERROR, __file__, 1, "Zoë's %s", ("turn",), sys.exc_info())
    with scope(activity="act-1", conversation_id="a:1conversation", operation="grade"):
        note(outcome="failed")
        line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "Zoë's turn" and "Zoë" in line
    assert (entry["activity"], entry["conversation"], entry["operation"], entry["outcome"]) == (
        "act-1",
        conversation_hash("a:1conversation"),
        "grade",
        "failed",
    )
    assert "ValueError: bad\nthing" in entry["exception"]
    assert "trace_id" not in entry, "no span was active"
