"""The privacy scan itself (tests/bot/privacy.py): it finds each kind of leak where it is, reports where and what
kind without the data, and stays quiet about look-alikes. Each test feeds a scan of its own (the autouse scan of
this test must stay clean), with a sandbox that the autouse scan does not watch."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider  # noqa: TID251 - a provider of this test's own, not the global one
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: TID251 - a provider of this test's own
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: TID251 - likewise

from sandbox.app import Sandbox
from sandbox.directory import User
from tests.bot.activities import card_action, message, personal_conversation
from tests.bot.conftest import start_sandbox
from tests.bot.privacy import Posted, PrivacyScan

JWT = "eyJhbGciOiJSUzI1NiJ9.eyJvaWQiOiIxMjMiLCJzY3AiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    started = start_sandbox()
    await started.start()
    yield started
    await started.stop()


def scan_of(sandbox: Sandbox) -> PrivacyScan:
    scan = PrivacyScan()
    scan.watch(sandbox)
    return scan


def log(scan: PrivacyScan, name: str, text: str, *args: Any) -> None:
    """A record as if `name` logged it (straight to the scan's handler, not through logging)."""
    scan.logs.handle(logging.LogRecord(name, logging.DEBUG, __file__, 1, text, args, None))


def a_student(sandbox: Sandbox) -> User:
    return next(u for u in sandbox.directory.users.values() if u.role == "student")


def a_teacher(sandbox: Sandbox) -> User:
    return next(u for u in sandbox.directory.users.values() if u.role == "teacher")


async def test_student_names_tokens_and_identity_secrets_in_logs_are_found_without_showing_them(
    sandbox: Sandbox,
) -> None:
    scan = scan_of(sandbox)
    student = a_student(sandbox)
    sandbox.identity.secrets_seen.append("verifier-0123456789-abcdefghij")
    log(scan, "bot.routes", "card for %s ready", student.display_name)
    log(scan, "graph.connection", "retrying with Authorization: Bearer %s", JWT)
    log(scan, "msal.token_cache", "token request data={'code_verifier': 'verifier-0123456789-abcdefghij'}")
    log(scan, "bot.outbox", "outbox 7 (grade) done for submission 1f3f46bc-e1f2-5d74-a602-7176c77da2c3")

    findings = scan.findings()
    assert [(f.where, f.kind) for f in findings] == [
        ("log line 1 (bot.routes)", "a student's name"),
        ("log line 2 (graph.connection)", "a token (JWT)"),
        ("log line 3 (msal.token_cache)", "an authorization code, refresh token or PKCE verifier"),
    ]
    report = "\n".join(str(f) for f in findings)
    for secret in (student.display_name, JWT, "verifier-0123456789-abcdefghij"):
        assert secret not in report
    assert "«a student's name»" in report and "«a token (JWT)»" in report


async def test_typed_feedback_and_points_are_found_but_not_their_look_alikes(sandbox: Sandbox) -> None:
    scan = scan_of(sandbox)
    teacher = a_teacher(sandbox)
    data = {"submissionId": "s1", "points": "7.5", "feedback": "Needs more evidence"}
    scan.posted.append(Posted(card_action(teacher, "grade", data, sandbox.connector_url), 200, None))
    scan.posted.append(Posted(card_action(teacher, "grade", {"points": "3", "feedback": "ok"}, "x"), 200, None))
    log(scan, "bot.outbox", "wrote %s", "Needs more evidence")
    log(scan, "bot.outbox", "payload points=7.5 for submission s1")
    log(scan, "bot.views", "score 7.5/10 shown")
    log(scan, "urllib3.connectionpool", '"PUT /connector/v3/conversations/a%3A1/activities/1 HTTP/1.1" 200')
    log(scan, "graph.connection", "graph GET /x -> 200 attempt=3 elapsed=0.075s status ok")

    assert [(f.where, f.kind) for f in scan.findings()] == [
        ("log line 1 (bot.outbox)", "typed feedback"),
        ("log line 2 (bot.outbox)", "typed points"),
        ("log line 3 (bot.views)", "typed points"),
    ]


async def test_activities_in_channels_are_scanned_and_personal_chats_are_not(sandbox: Sandbox) -> None:
    scan = scan_of(sandbox)
    student, teacher = a_student(sandbox), a_teacher(sandbox)
    channel = next(c for c in sandbox.directory.classes.values() if student.id in c.student_ids).team_id
    named = {"type": "message", "text": f"Waiting: {student.display_name}"}
    sandbox.connector.send(channel, named)
    sandbox.connector.send(personal_conversation(teacher)["id"], named)  # the teacher's own 1:1 chat may
    addressed = {"type": "message", "text": "Only teachers see details", "recipient": {"name": student.display_name}}
    sandbox.connector.send(channel, addressed)  # a reply names the student it answers: addressing, not content

    findings = scan.findings()
    assert len(findings) == 1 and findings[0].kind == "a student's name"
    assert findings[0].where.startswith("send of activity ") and "shared conversation" in findings[0].where


async def test_answers_in_channels_are_scanned_except_a_teachers_own_view(sandbox: Sandbox) -> None:
    scan = scan_of(sandbox)
    student, teacher = a_student(sandbox), a_teacher(sandbox)
    taught = next(c for c in sandbox.directory.classes.values() if teacher.id in c.teacher_ids)
    other = next(c for c in sandbox.directory.classes.values() if teacher.id not in c.teacher_ids)
    card = {"statusCode": 200, "value": {"body": [{"type": "TextBlock", "text": student.display_name}]}}
    ask = message(student, "ungraded", sandbox.connector_url, school_class=taught)
    scan.posted.append(Posted(ask, 200, {"activities": [{"type": "message", "text": student.display_name}]}))
    for who, school_class in ((teacher, taught), (teacher, other), (student, taught)):
        refresh = card_action(who, "refreshView", {}, sandbox.connector_url, school_class=school_class)
        refresh["value"]["trigger"] = "automatic"
        scan.posted.append(Posted(refresh, 200, card))
    # A button the teacher pressed in their own view of their class's team: also shown on their client only.
    pressed = card_action(teacher, "openGrading", {}, sandbox.connector_url, school_class=taught)
    scan.posted.append(Posted(pressed, 200, card))

    wheres = [f.where for f in scan.findings()]
    assert len(wheres) == 3
    assert wheres[0].startswith("expectReplies answer to activity ")
    assert all(w.startswith("invoke answer to activity ") for w in wheres[1:])


async def test_the_sandbox_is_another_service_and_its_log_lines_are_not_gradebots(sandbox: Sandbox) -> None:
    scan = scan_of(sandbox)
    log(scan, "sandbox.identity", "issued %s", JWT)
    assert scan.findings() == []


async def test_log_lines_are_scanned_as_the_json_production_writes_with_escaped_text_found_as_typed(
    sandbox: Sandbox,
) -> None:
    scan = scan_of(sandbox)
    teacher = a_teacher(sandbox)
    data = {"submissionId": "s1", "points": "6", "feedback": 'She wrote "cells" \\ twice'}
    scan.posted.append(Posted(card_action(teacher, "grade", data, sandbox.connector_url), 200, None))
    log(scan, "bot.outbox", "wrote %s", data["feedback"])

    (line,) = [line for _, line in scan.logs.lines]
    assert line.startswith('{"time": ') and data["feedback"] not in line, "JSON escapes the quotes"
    assert [(f.where, f.kind) for f in scan.findings()] == [("log line 1 (bot.outbox)", "typed feedback")]


async def test_spans_are_scanned_like_log_lines(sandbox: Sandbox) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    scan = PrivacyScan(spans=exporter.get_finished_spans)
    scan.watch(sandbox)
    student = a_student(sandbox)
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("GET /v1.0/education/classes/{id}/assignments"):
        pass
    with tracer.start_as_current_span("POST /api/messages") as span:
        span.add_event("exception", {"exception.message": f"no card for {student.display_name}"})
    with tracer.start_as_current_span("GET /auth/start", attributes={"http.url": f"https://x/?who={JWT}"}):
        pass

    assert [(f.where, f.kind) for f in scan.findings()] == [
        ("span 2 (POST /api/messages)", "a student's name"),
        ("span 3 (GET /auth/start)", "a token (JWT)"),
    ]
