"""A scripted teacher's session against the real bot (the sandbox and Gradebot's aiohttp app over HTTP, clocks
fixed): every card Gradebot answers with or sends, by name, with per-run values (nonces, write ids, Graph's write
times) made stable. docs/cards/ holds what it returns; tests/docs/test_pictures.py checks that it still does."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from app import PARTS, create_app
from bot.settings import Settings
from sandbox.connector import personal_conversation_id
from sandbox.directory import User
from sandbox.school import Actor, PointsOutcome
from sandbox.seed import default_school
from tests.bot.activities import card_action, message
from tests.bot.conftest import Clock, World, actions_of, cards_of, elements_of, replies, start_sandbox
from tests.cards.schema import card_errors

# Monday 9 March 2026, 15:00 UTC (16:00 in Berlin, the teacher's client time zone in tests/bot/activities.py).
NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
Cards = dict[str, dict[str, Any]]


class SessionError(AssertionError):
    """The bot answered a step of the session with something the script cannot go on from."""


@contextlib.asynccontextmanager
async def running_world(*, dev_sso: bool = True) -> AsyncIterator[World]:
    """The seeded school at NOW and a Gradebot on it, as tests/bot/conftest.py's `make_world` builds them."""
    sandbox = start_sandbox(default_school(now=NOW))
    await sandbox.start()
    clock = Clock()
    clock.fixed = NOW
    with tempfile.TemporaryDirectory(prefix="gradebot-pictures-") as folder:
        settings = Settings.from_env(
            {},
            sandbox_url=sandbox.base_url,
            database_url=f"sqlite:///{Path(folder) / 'gradebot.db'}",
            reminders_enabled=False,
        )
        client = TestClient(TestServer(create_app(settings, clock=clock, dev_sso=dev_sso)))
        await client.start_server()
        try:
            yield World(sandbox, client, clock, settings.database_url)
        finally:
            await client.close()
            await sandbox.stop()


class Session:
    """Rosa Martinez (teacher of Chemistry 201 and Biology 101) talking to Gradebot; `cards` collects the answers."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.rosa, self.david = world.user("rosa"), world.user("david")
        self.url = world.sandbox.connector_url
        self.cards: Cards = {}

    def keep(self, name: str, card: dict[str, Any]) -> dict[str, Any]:
        if name in self.cards:
            raise SessionError(f"two cards named {name!r}")
        errors = card_errors(card)
        if errors:
            raise SessionError(f"{name}: the card fails the Adaptive Cards 1.5 schema:\n" + "\n".join(errors[:10]))
        self.cards[name] = card
        return card

    async def say(self, name: str, text: str, *, user: User | None = None, **where: Any) -> dict[str, Any]:
        """Rosa (or `user`) types `text` 1:1 (or in a class channel: `school_class=`); keep the one card answered."""
        status, body = await self.world.post(message(user or self.rosa, text, self.url, **where))
        return self.keep(name, _one_card(name, status, body))

    async def press(
        self, name: str, card: dict[str, Any], verb: str, inputs: dict[str, Any] | None = None, *, index: int = 0
    ) -> dict[str, Any]:
        """Press the card's `index`-th `verb` button as Teams does: its data merged with the card's inputs, as they
        stand or as `inputs` types them."""
        buttons = [a for a in actions_of(card) if a["verb"] == verb]
        if len(buttons) <= index:
            raise SessionError(f"{name}: the card has no button {verb!r} #{index + 1}")
        inputs_shown = [e for e in elements_of(card) if str(e.get("type")).startswith("Input.")]
        shown = {e["id"]: e["value"] for e in inputs_shown if "value" in e}
        data = {**buttons[index].get("data", {}), **shown, **(inputs or {})}
        status, body = await self.world.post(card_action(self.rosa, verb, data, self.url))
        if status != 200 or not isinstance(body, dict) or body.get("type") != "application/vnd.microsoft.card.adaptive":
            raise SessionError(f"{name}: pressing {verb!r} answered HTTP {status}: {body!r}")
        return self.keep(name, dict(body["value"]))

    async def open_below(self, name: str, card: dict[str, Any], verb: str, *, index: int = 0) -> dict[str, Any]:
        """Press a button that leaves its card as it is and posts the view it opens as a new message below."""
        buttons = [a for a in actions_of(card) if a["verb"] == verb]
        if len(buttons) <= index:
            raise SessionError(f"{name}: the card has no button {verb!r} #{index + 1}")
        status, body = await self.world.post(card_action(self.rosa, verb, buttons[index].get("data", {}), self.url))
        if status != 200 or not isinstance(body, dict) or body.get("value") != "Opened below.":
            raise SessionError(f"{name}: pressing {verb!r} answered HTTP {status}: {body!r}")
        return self.keep(name, self.last_posted(name))

    def last_posted(self, name: str, operation: str = "send") -> dict[str, Any]:
        """The card of the last activity Gradebot posted (or, with operation="update", rewrote) in a chat."""
        kinds = ("send", "reply") if operation == "send" else (operation,)
        done = [a for a in self.world.sandbox.connector.activities if a.operation in kinds]
        found = cards_of([done[-1].activity]) if done and done[-1].activity else []
        if len(found) != 1:
            raise SessionError(f"{name}: the last {operation} holds {len(found)} cards")
        return found[0]


def _one_card(name: str, status: int, body: Any) -> dict[str, Any]:
    """The one card an expectReplies answer holds."""
    found = cards_of(replies(body)) if status == 200 else []
    if len(found) != 1:
        raise SessionError(f"{name}: expected one card, got HTTP {status} with {len(found)}: {body!r}")
    return found[0]


async def _teacher(session: Session) -> None:
    """Rosa adds Gradebot, lists her work, grades (save, undo, return all, a co-teacher's change), sets reminders and
    gets a digest, asks in a class channel, hits an error, types nonsense, signs out; a student asks too."""
    world = session.world
    status, body = await world.post(_installed(session))
    session.keep("welcome", _one_card("welcome", status, body))
    await session.say("classes", "classes")
    picker = await session.say("assignments-pick-class", "assignments")
    await session.press("assignments", picker, "pickClass", index=1)
    ungraded = await session.say("ungraded", "ungraded")
    students = await session.press("ungraded-students", ungraded, "showWaiting")
    await session.open_below("grading-from-list", students, "openGrading")
    await session.open_below("grading-again", students, "openGrading")  # the same student's card, opened again
    del session.cards["grading-again"]  # the same picture as grading-from-list; the older card now says so:
    session.keep("superseded", session.last_posted("superseded", "update"))
    grading = await session.say("grading", "grade Stoichiometry")
    refused = await session.press("points-over-maximum", grading, "grade", {"points": "150", "feedback": "Units!"})
    saved = await session.press(
        "saved", refused, "grade", {"points": "18", "feedback": "Units on every line — well done."}
    )
    await session.say("undo", "undo")
    await session.press("return-all-confirm", saved, "returnAll")
    _david_grades_meanwhile(session, saved, points=14.0)
    await session.press("conflict", saved, "grade", {"points": "16", "feedback": ""})
    reminders = await session.say("reminders", "remind")
    await session.press("reminders-invalid", reminders, "saveReminders", {"time": "25:99", "minWaiting": "-4"})
    await session.say("reminders-on", "remind on")
    session.keep("digest", await _digest(session, at=NOW + timedelta(days=1, hours=-0.5)))  # Tue 15:30 in Berlin
    await session.say("channel", "ungraded", school_class=world.school_class("CHEM201"))
    await session.press("error", ungraded, "openGrading", {"assignmentId": "no-such-assignment"})
    await session.say("unknown-command", "grades please")
    await session.say("not-a-teacher", "ungraded", user=world.user("quinn"))
    await session.say("signed-out", "signout")


def _david_grades_meanwhile(session: Session, card: dict[str, Any], points: float) -> None:
    """David Okafor, co-teacher, grades the submission on Rosa's card in Teams Assignments before she saves."""
    data = next(a["data"] for a in actions_of(card) if a["verb"] == "grade")
    school, chem = session.world.school, session.world.school_class("CHEM201")
    submission = school.submission(chem.id, data["assignmentId"], data["submissionId"])
    outcome = next(o for o in submission.outcomes if isinstance(o, PointsOutcome))
    school.set_points(chem.id, data["assignmentId"], submission.id, outcome.id, points, by=Actor.user(session.david.id))


def _installed(session: Session) -> dict[str, Any]:
    """What Teams sends when a teacher adds Gradebot to their 1:1 chat: installationUpdate, action "add"."""
    activity = message(session.rosa, "", session.url) | {"type": "installationUpdate", "action": "add"}
    del activity["text"], activity["textFormat"]
    return activity


async def _digest(session: Session, at: datetime) -> dict[str, Any]:
    """The reminder worker's sweep at the teacher's reminder time: the digest it posts in her 1:1 chat."""
    report = await session.world.client.app[PARTS].reminders.run_once(at)
    chat = session.world.sandbox.connector.activities_in(personal_conversation_id(session.rosa.id))
    found = cards_of([posted.activity for posted in chat[-1:] if posted.activity])
    if session.rosa.id not in report.sent or len(found) != 1:
        raise SessionError(f"digest: the sweep at {at} sent {report.sent}, the last post holds {len(found)} cards")
    return found[0]


async def _newcomer(session: Session) -> None:
    """Before any sign-in (Teams SSO not available): the sign-in card."""
    await session.say("sign-in", "ungraded")


async def teacher_session() -> Cards:
    """Run the whole session; the cards by name, in the order a teacher meets them, with per-run values stabilised."""
    cards: Cards = {}
    for dev_sso, script in ((False, _newcomer), (True, _teacher)):
        async with running_world(dev_sso=dev_sso) as world:
            session = Session(world)
            await script(session)
            cards |= {name: stable(card) for name, card in session.cards.items()}
    return cards


RUN_VALUES = frozenset({"nonce", "writeId", "knownModified"})
"""Keys whose values differ from run to run: per-render nonces, write ids, Graph's lastModified of a grade."""


def stable(node: Any, key: str = "") -> Any:
    """The card with every RUN_VALUES string replaced by "<key>"."""
    if isinstance(node, dict):
        return {k: stable(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [stable(v) for v in node]
    return f"<{key}>" if key in RUN_VALUES and isinstance(node, str) else node
