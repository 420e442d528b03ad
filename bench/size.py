"""size: the largest activity Gradebot sends, as Teams counts it (UTF-16 of the serialized JSON; Teams refuses a
message over ~100 KB and advises staying under 80 KB), for classes of 35, 160 and 300 students.

The real bot (create_app on aiohttp, SQLite) is driven through POST /api/messages against the real sandbox, as
tests/bot does: the commands that answer with cards (help, classes, assignments, ungraded, remind), then every
button verb once on any card reached (grading card, return-all confirmation, next pages…), so a card added or
changed is measured without this file knowing it. Measured: every activity in an expectReplies answer, every invoke
answer and every activity Gradebot posted through the Bot Connector."""

from __future__ import annotations

import json
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from app import create_app
from bench.figures import Figure
from bench.school import SchoolShape, district_school
from bot.settings import Settings
from sandbox.app import Sandbox
from sandbox.connector import personal_conversation_id
from sandbox.directory import TENANT_ID, User

TITLE = "size: the largest activity Gradebot sends (UTF-16), classes of 35, 160 and 300 students"
CLASS_SIZES = (35, 160, 300)
ASSIGNMENTS, QUICK_ASSIGNMENTS = 40, 4
LIMIT_KB = 80
COMMANDS = ("help", "classes", "assignments", "ungraded", "remind")
MOST_PRESSES = 40
"""Button presses per class size: each verb is pressed once, on the first card that offers it."""


def utf16_kb(payload: Any) -> float:
    """Kilobytes as Teams counts a message: its JSON in UTF-16 (2 bytes a code unit), 1 KB = 1,000 bytes."""
    return len(json.dumps(payload, ensure_ascii=False).encode("utf-16-le")) / 1000


def _activity(teacher: User, service_url: str, **fields: Any) -> dict[str, Any]:
    """What Teams posts for `teacher` in their 1:1 chat with the bot."""
    return {
        "id": str(uuid.uuid4()),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": {"id": f"29:{teacher.id}", "name": teacher.display_name, "aadObjectId": teacher.id},
        "recipient": {"id": "28:gradebot", "name": "Gradebot"},
        "conversation": {
            "id": personal_conversation_id(teacher.id),
            "conversationType": "personal",
            "tenantId": TENANT_ID,
        },
        "channelData": {"tenant": {"id": TENANT_ID}},
        "locale": "en-US",
        **fields,
    }


def _actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every Action.Execute in a card, nested ones included."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute":
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _actions(value)


async def _largest(students: int, assignments: int) -> tuple[float, str]:
    """The largest activity (KB) and what sent it, for one teacher with one class of `students`."""
    school = district_school(SchoolShape(1, 1, assignments, students))
    teacher = next(u for u in school.directory.users.values() if school.directory.taught_by(u.id))
    school_class = school.directory.taught_by(teacher.id)[0]
    largest: tuple[float, str] = (0.0, "nothing")
    cards: list[dict[str, Any]] = []

    def note(payload: Any, what: str) -> None:
        nonlocal largest
        largest = max(largest, (utf16_kb(payload), what))

    with tempfile.TemporaryDirectory() as folder:
        async with Sandbox(school) as sandbox:
            settings = Settings.from_env(
                {},
                sandbox_url=sandbox.base_url,
                database_url=f"sqlite:///{Path(folder) / 'gradebot.db'}",
                reminders_enabled=False,
            )
            async with TestClient(TestServer(create_app(settings))) as client:

                async def post(activity: dict[str, Any], what: str) -> None:
                    response = await client.post("/api/messages", json=activity)
                    assert response.status == 200, f"{what}: HTTP {response.status}"
                    body = await response.json() if response.content_type == "application/json" else None
                    for sent in (body or {}).get("activities") or []:
                        note(sent, what)
                        cards.extend(a["content"] for a in sent.get("attachments") or [])
                    if body and "statusCode" in body:
                        note(body, what)
                        if isinstance(body.get("value"), dict):
                            cards.append(body["value"])

                url = sandbox.connector_url
                for command in COMMANDS:
                    text = f"{command} {school_class.display_name}" if command == "assignments" else command
                    await post(_activity(teacher, url, type="message", text=text, deliveryMode="expectReplies"), text)
                pressed: set[str] = set()
                for card in cards:  # grows while it is walked
                    for action in _actions(card):
                        verb = action.get("verb", "")
                        if verb in pressed or "sign" in verb.lower() or len(pressed) >= MOST_PRESSES:
                            continue
                        pressed.add(verb)
                        value = {"action": {"type": "Action.Execute", "verb": verb, "data": action.get("data", {})}}
                        invoke = _activity(
                            teacher, url, type="invoke", name="adaptiveCard/action", value=value | {"trigger": "manual"}
                        )
                        await post(invoke, f"button {verb}")
            for recorded in sandbox.connector.activities_in():
                if recorded.activity is not None:
                    note(recorded.activity, f"posted ({recorded.operation})")
    assert cards, f"{students} students: Gradebot answered with no card"
    assert {"openGrading", "showUngraded"} <= pressed, f"{students} students: no grading or ungraded buttons"
    return largest


async def measure(quick: bool) -> list[Figure]:
    figures: list[Figure] = []
    for students in CLASS_SIZES:
        kb, what = await _largest(students, QUICK_ASSIGNMENTS if quick else ASSIGNMENTS)
        print(f"#   {students} students: {kb:.1f} KB, from {what}", file=sys.stderr, flush=True)
        figures.append(Figure(f"size_kb_utf16_{students}", round(kb, 1), "kb", f"< {LIMIT_KB}", kb < LIMIT_KB))
    largest = max(figure.value for figure in figures)
    figures.insert(0, Figure("size_max_kb_utf16", largest, "kb", f"< {LIMIT_KB}", largest < LIMIT_KB))
    return figures
