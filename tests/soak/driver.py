"""The soak itself: teachers (Rosa and David, co-teaching Chemistry 201) grade from cards through POST /api/messages
while the sandbox injects faults and Gradebot is killed with SIGKILL and restarted; afterwards Graph is compared
with what the teachers typed, and the sandbox's write journal says whether anything was written twice.

Definitions (what the printed counts mean):

- A *typed intent* is one set of values a teacher typed and saved (points unique per submission, feedback text
  unique in the run). Double presses, replays after a failed or lost answer, and "Keep mine" after a conflict
  carry the same values and belong to the same intent. *Applied twice*: an intent whose points or feedback reached
  Graph more than once (counted from the sandbox's journal of applied PATCHes, `/_sandbox/graph/writes`).
- *Returns twice*: a submission returned more often than teachers confirmed a Return for it (at most once each).
- *Lost*: a submission whose working points/feedback in Graph (read with a teacher token) are not those of the last
  intent typed for it. An intent does not count when the teacher was told it was not saved — a conflict card, or
  "could not save" — in the invoke answer or in a later update of that card; such a message also settles the same
  teacher's earlier intents for that submission (the card showed them what is saved now).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import httpx

from sandbox.directory import SchoolClass, User
from sandbox.seed import default_school
from storage import open_store
from storage.records import OutboxEntry
from tests.bot.activities import card_action, message, personal_conversation
from tests.soak.databases import Engine, outbox_rows
from tests.soak.processes import BotProcess, SandboxProcess, free_port

Row = dict[str, Any]
Answer = Literal["saved", "saving", "conflict", "failed", "error"]
CONFLICT_UPDATE = "Not saved: someone else changed this grade"
FAILED_UPDATE = "Gradebot could not save this change"
INVOKE_RETRIES = 8


class SoakError(RuntimeError):
    """The soak could not be carried out (not a finding about Gradebot: those are counts in the report)."""


@dataclass(frozen=True)
class SoakConfig:
    engine: Engine
    writes: int
    """Save intents to type (each a new value for one submission)."""
    database_url: str = ""
    """Filled in by `run_soak`: a SQLite file, or PostgreSQL with a schema of the run's own."""
    sessions_per_teacher: int = 2
    kills: int = 2
    fault_rate: float = 0.2
    """Split evenly over 429 + Retry-After, 503, dropped connections (before or after the request ran) and slow
    answers."""
    slow_ms: float = 3000.0
    """Longer than Gradebot's invoke budget (2.5 s), so some cards answer "Saving…" and update later."""
    double_press_rate: float = 0.05
    replay_rate: float = 0.05
    return_rate: float = 0.12
    keep_mine_rate: float = 0.5
    think_s: float = 0.4
    drain_timeout_s: float = 240.0
    seed: int = 1


@dataclass(frozen=True)
class Target:
    """A submission a teacher may grade: ids from the seeded school (deterministic), its grading kind."""

    school_class: SchoolClass
    assignment_id: str
    submission_id: str
    max_points: float | None
    returnable: bool
    """Turned in at the start (a Return is offered for these, at most once per submission)."""

    @property
    def co_taught(self) -> bool:
        return len(self.school_class.teacher_ids) > 1


@dataclass
class Intent:
    serial: int
    teacher: User
    target: Target
    points: Decimal | None
    feedback: str
    key: str
    """How the outbox idempotency key Gradebot gives this press starts (grade:{teacher}:{submission}:{nonce})."""
    card_id: str
    order: int
    sent_at: float
    answer: Answer = "error"
    parent: int | None = None
    """For "Keep mine": the serial of the intent whose values it saves again."""


@dataclass
class ReturnIntent:
    teacher: User
    target: Target
    answer: str = "error"


@dataclass
class Report:
    engine: Engine
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    """One line per lost or doubled write: ids only."""

    def lines(self) -> list[str]:
        return [f"soak_{name} {value}" for name, value in self.counts.items()]


@dataclass
class Session:
    teacher: User
    number: int
    card_id: str = ""


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def card_actions(card: Any, verb: str) -> list[dict[str, Any]]:
    return [n for n in _walk(card) if isinstance(n, dict) and n.get("type") == "Action.Execute" and n["verb"] == verb]


def card_text(card: Any) -> str:
    return "\n".join(n for n in _walk(card) if isinstance(n, str))


def invoke_card(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict) and body.get("statusCode") == 200 and isinstance(body.get("value"), dict):
        return dict(body["value"])
    return None


def classify(card: dict[str, Any] | None) -> Answer:
    """What the teacher was told by the card that answered a Save."""
    if card is None:
        return "error"
    if card_actions(card, "resolveConflict"):
        return "conflict"
    text = card_text(card)
    if "could not save this grade" in text:
        return "failed"
    if "Saving…" in text:
        return "saving"
    if "as a draft" in text and "Saved " in text:
        return "saved"
    return "error"


def targets() -> dict[str, list[Target]]:
    """Per teacher id: the submissions of assigned assignments in the classes they teach, excused ones left out."""
    school = default_school()
    found: dict[str, list[Target]] = {}
    for school_class in school.directory.classes.values():
        for assignment in school.assignments_of(school_class.id):
            if school.assignment_status(assignment) != "assigned":
                continue
            for submission in assignment.submissions.values():
                status = submission.state.status
                if status == "excused":
                    continue
                target = Target(
                    school_class, assignment.id, submission.id, assignment.max_points, status == "submitted"
                )
                for teacher_id in school_class.teacher_ids:
                    found.setdefault(teacher_id, []).append(target)
    return found


def teachers() -> list[User]:
    """Everyone who teaches a class (Rosa and David in the seeded school), once each."""
    directory = default_school().directory
    ids = {t for c in directory.classes.values() for t in c.teacher_ids}
    return sorted((directory.users[t] for t in ids), key=lambda u: u.user_principal_name)


class Soak:
    def __init__(self, config: SoakConfig, sandbox: SandboxProcess, bot: BotProcess) -> None:
        self.config = config
        self.sandbox = sandbox
        self.bot = bot
        self.connector_url = f"{sandbox.base_url}/connector"
        self.random = random.Random(config.seed)
        self.run_id = uuid.uuid4().hex[:6]
        self.targets = targets()
        self.teachers = [t for t in teachers() if t.id in self.targets]
        self.intents: list[Intent] = []
        self.returns: list[ReturnIntent] = []
        self.returned: set[str] = set()
        self.used_points: dict[str, set[Decimal]] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.start_locks: dict[str, asyncio.Lock] = {}
        self.order = itertools.count(1)
        self.serials = itertools.count(1)
        self.started = 0
        self.progress = asyncio.Condition()
        self.bot_up = asyncio.Event()
        self.bot_up.set()
        self.stats: Counter[str] = Counter()
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(120.0, connect=5.0), trust_env=False)

    # -- the teachers' side ------------------------------------------------------------------------------------

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        """POST an activity until Gradebot answers it (while it is down, the same activity is sent again)."""
        while True:
            await self.bot_up.wait()
            try:
                response = await self.http.post(f"{self.bot.url}/api/messages", json=activity)
            except httpx.TransportError:
                self.stats["resent_after_no_answer"] += 1
                await asyncio.sleep(0.2)
                continue
            if response.status_code >= 500:
                self.stats["http_5xx"] += 1
                await asyncio.sleep(0.5)
                continue
            body = response.json() if response.headers.get("content-type", "").startswith("application/json") else None
            return response.status_code, body

    async def invoke(self, teacher: User, session: Session, verb: str, data: dict[str, Any]) -> Any:
        """A press of a card button: a new invoke activity with the button's data; its answer body."""
        return await self.send(card_action(teacher, verb, data, self.connector_url, reply_to_id=session.card_id))

    async def send(self, activity: dict[str, Any]) -> Any:
        self.stats["invokes"] += 1
        status, body = await self.post(activity)
        if status != 200:
            raise SoakError(f"an invoke was answered HTTP {status}")
        return body

    async def open_session(self, session: Session) -> None:
        """A card of its own in the teacher's 1:1 chat (sent through the connector, so it has an activity id that
        Gradebot can update when a write lands after its invoke was answered)."""
        conversation = personal_conversation(session.teacher)["id"]
        async with self.start_locks.setdefault(session.teacher.id, asyncio.Lock()):
            activity = message(session.teacher, "help", self.connector_url, expect_replies=False)
            await self.post(activity)
            for _ in range(100):
                response = await self.http.get(
                    f"{self.sandbox.base_url}/_sandbox/connector/activities", params={"conversationId": conversation}
                )
                sent = [a for a in response.json()["activities"] if a.get("replyToId") == activity["id"]]
                if sent:
                    session.card_id = str(sent[-1]["activityId"])
                    return
                await asyncio.sleep(0.05)
        raise SoakError("Gradebot never answered the session's first message through the connector")

    async def open_card(self, session: Session, target: Target) -> dict[str, Any]:
        """Open the grading card of one submission in place of the session's card (`showGrading`: a row of the
        ungraded list, `openGrading`, would open it as a new message below)."""
        data = {
            "classId": target.school_class.id,
            "assignmentId": target.assignment_id,
            "submissionId": target.submission_id,
        }
        for attempt in range(INVOKE_RETRIES):
            card = invoke_card(await self.invoke(session.teacher, session, "showGrading", data))
            saves = card_actions(card, "grade") if card is not None else []
            if card is not None and saves and saves[0]["data"]["submissionId"] == target.submission_id:
                return card
            self.stats["open_retried"] += 1
            await asyncio.sleep(0.3 * (attempt + 1))
        raise SoakError("a grading card would not open")

    def new_values(self, target: Target, serial: int) -> tuple[Decimal | None, str]:
        points: Decimal | None = None
        if target.max_points is not None:
            used = self.used_points.setdefault(target.submission_id, set())
            steps = int(target.max_points * 100)
            while True:
                points = Decimal(self.random.randint(0, steps)) / 100
                if points not in used:
                    used.add(points)
                    break
        words = self.random.sample(["clear", "careful", "thorough", "brief", "neat", "bold", "steady", "sharp"], 2)
        return points, f"Soak {self.run_id} n{serial}: {' '.join(words)} work."

    async def save(self, session: Session, target: Target, serial: int) -> None:
        card = await self.open_card(session, target)
        save = card_actions(card, "grade")[0]
        await asyncio.sleep(self.random.uniform(0, self.config.think_s))  # others may grade meanwhile
        points, feedback = self.new_values(target, serial)
        inputs = {"feedback": feedback, **({"points": str(points)} if points is not None else {})}
        data = {**save["data"], **inputs}
        async with self.locks.setdefault(target.submission_id, asyncio.Lock()):
            intent = Intent(
                serial,
                session.teacher,
                target,
                points,
                feedback,
                f"grade:{session.teacher.id}:{target.submission_id}:{data['nonce']}",
                session.card_id,
                next(self.order),
                time.time(),
            )
            self.intents.append(intent)
            answer_card = await self.press(session, "grade", data)
            intent.answer = classify(answer_card)
            if intent.answer == "conflict" and self.random.random() < self.config.keep_mine_rate:
                assert answer_card is not None
                mine = next(a for a in card_actions(answer_card, "resolveConflict") if a["data"]["choice"] == "mine")
                child = Intent(
                    next(self.serials),
                    session.teacher,
                    target,
                    points,
                    feedback,
                    f"grade:{session.teacher.id}:{target.submission_id}:{mine['data']['nonce']}",
                    session.card_id,
                    next(self.order),
                    time.time(),
                    parent=serial,
                )
                self.intents.append(child)
                self.stats["keep_mine"] += 1
                child.answer = classify(await self.press(session, "resolveConflict", mine["data"]))

    async def press(self, session: Session, verb: str, data: dict[str, Any]) -> dict[str, Any] | None:
        """Press a button: sometimes twice at once (a double click: two invokes with the same data); an error answer
        makes the teacher press it again; sometimes the very same invoke activity arrives once more (a replay)."""
        activity = card_action(session.teacher, verb, data, self.connector_url, reply_to_id=session.card_id)
        if self.random.random() < self.config.double_press_rate:
            self.stats["double_presses"] += 1
            again = {**activity, "id": str(uuid.uuid4())}
            answers = [await done for done in asyncio.as_completed([self.send(activity), self.send(again)])]
            card = invoke_card(answers[-1])  # Teams shows the answer that came last
        else:
            card = invoke_card(await self.send(activity))
        for attempt in range(INVOKE_RETRIES):
            if classify(card) != "error":
                break
            self.stats["pressed_again_after_error"] += 1
            await asyncio.sleep(0.3 * (attempt + 1))
            card = invoke_card(await self.invoke(session.teacher, session, verb, data))
        if self.random.random() < self.config.replay_rate:
            self.stats["replays"] += 1
            await self.send(activity)
        return card

    async def give_back(self, session: Session, target: Target) -> None:
        """Return one submission through the confirm step (each submission at most once in the run)."""
        async with self.locks.setdefault(target.submission_id, asyncio.Lock()):
            if target.submission_id in self.returned:
                return
            self.returned.add(target.submission_id)
            card = await self.open_card(session, target)
            step = card_actions(card, "return")[0]
            confirm = invoke_card(await self.invoke(session.teacher, session, "return", step["data"]))
            yes = [a for a in card_actions(confirm, "return") if a["data"].get("confirmed")] if confirm else []
            if not yes:
                self.stats["return_not_confirmable"] += 1
                return
            intent = ReturnIntent(session.teacher, target)
            self.returns.append(intent)
            for attempt in range(INVOKE_RETRIES):
                answer = invoke_card(await self.invoke(session.teacher, session, "return", yes[0]["data"]))
                text = card_text(answer) if answer is not None else ""
                if "Returned to" in text:
                    intent.answer = "done"
                elif "Working on it" in text:
                    intent.answer = "pending"
                elif "could not do that" in text:
                    intent.answer = "failed"
                else:
                    await asyncio.sleep(0.3 * (attempt + 1))
                    continue
                break

    def pick(self, teacher: User) -> Target:
        pool = self.targets[teacher.id]
        shared = [t for t in pool if t.co_taught]
        if shared and self.random.random() < 0.4:
            return self.random.choice(shared[:8])  # a few Chemistry submissions both teachers keep grading
        return self.random.choice(pool)

    async def teacher_session(self, session: Session) -> None:
        await self.open_session(session)
        while True:
            async with self.progress:
                if self.started >= self.config.writes:
                    return
                self.started += 1
                self.progress.notify_all()
            target = self.pick(session.teacher)
            await self.save(session, target, next(self.serials))
            if target.returnable and self.random.random() < self.config.return_rate:
                await self.give_back(session, target)

    async def killer(self) -> None:
        """SIGKILL Gradebot mid-run `kills` times, each time starting it again on the same database."""
        for number in range(1, self.config.kills + 1):
            threshold = self.config.writes * number // (self.config.kills + 1)
            async with self.progress:
                await self.progress.wait_for(lambda threshold=threshold: self.started >= threshold)  # type: ignore[misc]
            self.bot_up.clear()
            await self.bot.kill()
            await asyncio.sleep(self.random.uniform(0.2, 1.0))
            await self.bot.start()
            self.bot_up.set()

    # -- afterwards --------------------------------------------------------------------------------------------

    async def drain(self) -> list[OutboxEntry]:
        """Wait until no write is pending in Gradebot's store and every teacher told "Saving…" has been told how it
        ended (the store's owed notices); returns whatever is still pending at the deadline."""
        deadline = time.monotonic() + self.config.drain_timeout_s
        async with await open_store(self.config.database_url) as store:
            while True:
                pending = [e for t in self.teachers for e in await store.pending_outbox_for(t.id)]
                owed = await store.owed_notices(1)
                if (not pending and not owed) or time.monotonic() > deadline:
                    return pending
                await asyncio.sleep(1.0)

    async def entries(self) -> dict[int, Row]:
        """Per intent serial, Gradebot's outbox entry for it: the key starts with the press's teacher, submission
        and card nonce, and the entry carries the typed feedback."""
        rows = await asyncio.to_thread(outbox_rows, self.config.database_url)
        found: dict[int, Row] = {}
        for intent in self.intents:
            for row in rows:
                if row["key"].startswith(intent.key) and row["payload"].get("feedback") == intent.feedback:
                    found[intent.serial] = row
        return found

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, f"{self.sandbox.base_url}{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def graph_truth(self) -> dict[str, tuple[Decimal | None, str | None]]:
        """Working points and feedback of every target submission, read over Graph with each class's teacher."""
        truth: dict[str, tuple[Decimal | None, str | None]] = {}
        tokens: dict[str, str] = {}
        classes = {t.school_class.id: t.school_class for pool in self.targets.values() for t in pool}
        assignments = sorted({(t.school_class.id, t.assignment_id) for pool in self.targets.values() for t in pool})
        for class_id, assignment_id in assignments:
            school_class = classes[class_id]
            teacher_id = school_class.teacher_ids[0]
            if teacher_id not in tokens:
                answer = await self.admin("POST", "/_sandbox/token", {"userId": teacher_id})
                tokens[teacher_id] = str(answer["access_token"])
            url: str | None = (
                f"{self.sandbox.base_url}/v1.0/education/classes/{school_class.id}/assignments/{assignment_id}"
                "/submissions?$expand=outcomes"
            )
            while url:
                response = await self.http.get(url, headers={"Authorization": f"Bearer {tokens[teacher_id]}"})
                response.raise_for_status()
                page = response.json()
                for submission in page["value"]:
                    points: Decimal | None = None
                    feedback: str | None = None
                    for outcome in submission.get("outcomes") or []:
                        kind = outcome.get("@odata.type", "")
                        if kind.endswith("educationPointsOutcome") and outcome.get("points"):
                            points = Decimal(str(outcome["points"]["points"]))
                        if kind.endswith("educationFeedbackOutcome") and outcome.get("feedback"):
                            feedback = outcome["feedback"]["text"]["content"]
                    truth[submission["id"]] = (points, feedback)
                url = page.get("@odata.nextLink")
        return truth

    async def told_later(self) -> list[tuple[str, float, str, str]]:
        """Card updates Gradebot sent after an invoke was answered: (card id, when, submission id, text)."""
        seen: list[tuple[str, float, str, str]] = []
        for teacher in self.teachers:
            conversation = personal_conversation(teacher)["id"]
            answer = await self.admin("GET", f"/_sandbox/connector/activities?conversationId={conversation}")
            for recorded in answer["activities"]:
                if recorded["operation"] != "update" or not recorded.get("activity"):
                    continue
                saves = card_actions(recorded["activity"], "grade")
                submission = str(saves[0]["data"]["submissionId"]) if saves else ""
                when = datetime.fromisoformat(str(recorded["timestamp"]).replace("Z", "+00:00")).timestamp()
                seen.append((str(recorded["activityId"]), when, submission, card_text(recorded["activity"])))
        return seen

    def dump(self, entries: dict[int, Row], truth: Any, journal: Any, updates: Any) -> None:
        """Everything the judgement used, for a person reading a failed run (`--keep` keeps it)."""
        data = {
            "intents": [_intent_json(i, entries.get(i.serial)) for i in self.intents],
            "returns": [
                {"teacher": r.teacher.id, "submission": r.target.submission_id, "answer": r.answer}
                for r in self.returns
            ],
            "graph": {sid: [str(p) if p is not None else None, f] for sid, (p, f) in truth.items()},
            "journal": journal,
            "cardUpdates": updates,
        }
        (self.bot.run_dir / "soak.json").write_text(json.dumps(data, indent=1))

    # -- the run -----------------------------------------------------------------------------------------------

    async def run(self) -> Report:
        started = time.monotonic()
        await self.admin("DELETE", "/_sandbox/graph/writes")
        await self.admin("POST", "/_sandbox/graph/stats/reset")
        sessions = [Session(t, n) for t in self.teachers for n in range(self.config.sessions_per_teacher)]
        killer = asyncio.get_running_loop().create_task(self.killer())
        try:
            await asyncio.gather(*(self.teacher_session(s) for s in sessions))
            await killer
        finally:
            if not killer.done():
                killer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await killer
        typed_at = time.monotonic()
        pending = await self.drain()
        await asyncio.sleep(2.0)  # the card update of the last write that landed
        stats = await self.admin("GET", "/_sandbox/graph/stats")
        await self.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 0, "throttleHourlyLimit": 0})
        report = await self.judge(pending)
        report.counts.update(
            {
                "kills": self.bot.kills,
                "invokes": self.stats["invokes"],
                "double_presses": self.stats["double_presses"],
                "replays": self.stats["replays"],
                "resent_after_no_answer": self.stats["resent_after_no_answer"],
                "pressed_again_after_error": self.stats["pressed_again_after_error"],
                "http_5xx": self.stats["http_5xx"],
                "graph_requests": int(stats["requests"]) + int(stats["rosterRequests"]),
                "faults_injected": sum(int(v) for v in stats["injectedFaults"].values()),
                "seconds_typing": round(typed_at - started),
                "seconds_draining": round(time.monotonic() - typed_at),
            }
        )
        return report

    async def judge(self, pending: list[OutboxEntry]) -> Report:
        report = Report(self.config.engine)
        entries = await self.entries()
        truth = await self.graph_truth()
        journal = (await self.admin("GET", "/_sandbox/graph/writes"))["writes"]
        updates = await self.told_later()
        self.dump(entries, truth, journal, updates)
        points_written: Counter[tuple[str, Decimal]] = Counter()
        feedback_written: Counter[tuple[str, str]] = Counter()
        returns_written: Counter[str] = Counter()
        for write in journal:
            if write["kind"] == "points" and write["value"] is not None:
                points_written[(write["submissionId"], Decimal(str(write["value"])))] += 1
            elif write["kind"] == "feedback" and write["value"] is not None:
                feedback_written[(write["submissionId"], str(write["value"]))] += 1
            elif write["kind"] == "return":
                returns_written[write["submissionId"]] += 1
            else:
                report.problems.append(f"unexpected {write['kind']} write on submission {write['submissionId']}")

        def told(intent: Intent, status: str) -> bool:
            if (status == "conflict" and intent.answer == "conflict") or (
                status == "failed" and intent.answer == "failed"
            ):
                return True
            wanted = CONFLICT_UPDATE if status == "conflict" else FAILED_UPDATE
            return any(
                card == intent.card_id
                and submission == intent.target.submission_id
                and when >= intent.sent_at - 1
                and wanted in text
                for card, when, submission, text in updates
            )

        conflicts = untold = failed = lost = 0
        by_submission: dict[str, list[Intent]] = {}
        for intent in self.intents:
            by_submission.setdefault(intent.target.submission_id, []).append(intent)
        for submission_id, intents in by_submission.items():
            intents.sort(key=lambda i: i.order)
            settled: set[int] = set()
            for intent in intents:
                entry = entries.get(intent.serial)
                status = str(entry["status"]) if entry is not None else "unrecorded"
                if status == "conflict":
                    conflicts += 1
                elif status == "failed":
                    failed += 1
                if status in ("conflict", "failed"):
                    if told(intent, status):
                        settled.update(
                            i.serial for i in intents if i.teacher.id == intent.teacher.id and i.order <= intent.order
                        )
                    else:
                        untold += status == "conflict"
                elif status == "unrecorded" and intent.answer == "error":
                    settled.add(intent.serial)  # the teacher saw an error and nothing was recorded
            remaining = [i for i in intents if i.serial not in settled]
            if not remaining:
                continue
            last = remaining[-1]
            points, feedback = truth.get(submission_id, (None, None))
            if feedback != last.feedback or (last.points is not None and points != last.points):
                lost += 1
                report.problems.append(
                    f"lost: submission {submission_id} does not hold intent n{last.serial} "
                    f"(teacher {last.teacher.id}, answered {last.answer}, "
                    f"outbox {entries[last.serial]['status'] if last.serial in entries else 'none'})"
                )

        applied_twice = 0
        groups = {i.serial: i for i in self.intents if i.parent is None}
        for intent in groups.values():
            sid = intent.target.submission_id
            times = feedback_written[(sid, intent.feedback)]
            if intent.points is not None:
                times = max(times, points_written[(sid, intent.points)])
            if times > 1:
                applied_twice += 1
                report.problems.append(f"applied {times}x: intent n{intent.serial} on submission {sid}")
        confirmed = Counter(r.target.submission_id for r in self.returns)
        returns_twice = sum(1 for sid, n in returns_written.items() if n > confirmed[sid])
        returns_lost = sum(
            1 for r in self.returns if r.answer in ("done", "pending") and returns_written[r.target.submission_id] == 0
        )
        for sid, n in returns_written.items():
            if n > confirmed[sid]:
                report.problems.append(f"returned {n}x: submission {sid} ({confirmed[sid]} confirmed)")
        report.counts.update(
            {
                "writes": len(groups),
                "keep_mine": sum(1 for i in self.intents if i.parent is not None),
                "submissions": len(by_submission),
                "lost": lost,
                "applied_twice": applied_twice,
                "returns": len(self.returns),
                "returns_twice": returns_twice,
                "returns_lost": returns_lost,
                "conflicts": conflicts,
                "conflicts_untold": untold,
                "failed": failed,
                "saving_cards": sum(1 for i in self.intents if i.answer == "saving"),
                "card_updates": len(updates),
                "pending": len(pending),
                "unexpected_writes": sum(1 for p in report.problems if p.startswith("unexpected")),
            }
        )
        return report


def _intent_json(intent: Intent, entry: Row | None) -> dict[str, Any]:
    return {
        "serial": intent.serial,
        "order": intent.order,
        "teacher": intent.teacher.id,
        "submission": intent.target.submission_id,
        "points": str(intent.points) if intent.points is not None else None,
        "feedback": intent.feedback,
        "card": intent.card_id,
        "sentAt": intent.sent_at,
        "answer": intent.answer,
        "parent": intent.parent,
        "outbox": None if entry is None else {k: entry[k] for k in ("id", "key", "status", "attempts")},
    }


def fault_flags(config: SoakConfig) -> list[str]:
    """A quarter each: 429 + Retry-After, 503, dropped connections (half before the request ran, half after it ran
    with the answer lost), slow answers."""
    share = config.fault_rate / 4
    return [
        "--throttle-limit=0",  # faults come from the rates below, not from Graph's budget
        "--throttle-hourly-limit=0",
        f"--throttle-rate={share}",
        "--throttle-retry-after-s=1",
        f"--error-rate={share}",
        "--error-statuses=503",
        f"--drop-rate={share / 2}",
        f"--lost-rate={share / 2}",
        f"--slow-rate={share}",
        f"--slow-ms={config.slow_ms}",
        f"--fault-seed={config.seed}",
    ]


async def run_soak(config: SoakConfig, run_dir: Path) -> Report:
    """One soak on one engine (logs in the existing `run_dir`): start the sandbox and Gradebot, type, kill, restart,
    drain, judge."""
    sandbox = SandboxProcess(run_dir / "sandbox.log", fault_flags(config))
    await sandbox.start()
    try:
        bot = BotProcess(run_dir, sandbox.base_url, config.database_url, free_port())
        await bot.start()
        soak = Soak(config, sandbox, bot)
        try:
            return await soak.run()
        finally:
            await soak.http.aclose()
            await bot.stop()
    finally:
        await sandbox.stop()
