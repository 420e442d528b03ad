"""Fuzzing the whole bot with hypothesis through the real aiohttp app and the real sandbox: every card verb's payload
(types, sizes, unicode, missing and extra keys, forged ids), command text, and hostile HTTP bodies. Each example
must get a clear answer (a 4xx for a broken request; a card or text for a teacher, never the generic apology), never
an HTTP 500, and invalid input must write nothing to Graph (write requests counted in the sandbox, state compared).

One world per test: hypothesis runs in a worker thread and hands each example to the test's event loop. Examples
are bounded and derandomized, so the same suite draws the same examples (hypothesis also mixes in constants from
the modules loaded so far, so running a subset may draw other, equally valid ones); each test prints how many ran."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.faults import ScriptedFault
from sandbox.school import Submission
from tests.bot.activities import card_action, invoke, message
from tests.bot.conftest import World, card_text, cards_of, replies
from tests.cards.schema import card_errors

T = TypeVar("T")

APOLOGY = "something went wrong on Gradebot's side"
CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE = "application/vnd.microsoft.activity.message"
LOGIN_REQUEST = "application/vnd.microsoft.activity.loginRequest"
PRECONDITION_FAILED = "application/vnd.microsoft.error.preconditionFailed"
WRITE_TAPS = (
    ScriptedFault(kind="delay", delay_ms=0, count=10**9, method="PATCH", path_regex=r"/outcomes/"),
    ScriptedFault(kind="delay", delay_ms=0, count=10**9, method="POST", path_regex=r"/(return|reassign|excuse)$"),
)


# --- running hypothesis against one world --------------------------------------------------------------------------


async def explore(
    strategy: st.SearchStrategy[T], check: Callable[[T], Coroutine[Any, Any, None]], examples: int
) -> int:
    """Run `check` on `examples` generated values (fewer if the strategy runs dry) and return how many ran.

    Hypothesis runs in a worker thread and submits each example to this event loop, so one world (sandbox,
    app, store) serves every example and failures still shrink to a minimal example."""
    loop = asyncio.get_running_loop()
    ran = 0

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(example: T) -> None:
        nonlocal ran
        ran += 1
        asyncio.run_coroutine_threadsafe(check(example), loop).result(timeout=60)

    await asyncio.to_thread(run)
    return ran


@dataclass
class Ledger:
    """What the fuzz saw: answers by kind, and the sandbox's record of Graph writes and submission state."""

    world: World
    answers: Counter[str] = field(default_factory=Counter)
    state_before: dict[str, Any] = field(default_factory=dict)

    def start(self) -> None:
        self.world.sandbox.faults.add_script(WRITE_TAPS)
        self.state_before = self.school_state()

    def school_state(self) -> dict[str, Any]:
        school = self.world.school
        submissions: list[Submission] = [
            s for c in school.directory.classes.values() for s in school.submissions_of(c.id)
        ]
        return {s.id: copy.deepcopy((s.state, s.outcomes)) for s in submissions}

    def graph_writes(self) -> int:
        left = {(f.method, f.path_regex): f.count for f in self.world.sandbox.faults.script}
        return sum(tap.count - left.get((tap.method, tap.path_regex), 0) for tap in WRITE_TAPS)

    def report(self, name: str, ran: int) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.answers.items()))
        return f"fuzz {name}: {ran} examples ({kinds}); Graph writes {self.graph_writes()}"


NOT_UNICODE = "The body contains text that is not valid Unicode."


def _refused_as_not_unicode(status: int, body: Any, ledger: Ledger) -> bool:
    """A lone surrogate (\\ud800) cannot come from a keyboard: the edge answers 400 before any turn."""
    if status == 400 and isinstance(body, dict) and body.get("error") == NOT_UNICODE:
        ledger.answers["400 not Unicode"] += 1
        return True
    return False


def _assert_clear_invoke_answer(status: int, body: Any, ledger: Ledger) -> None:
    if _refused_as_not_unicode(status, body, ledger):
        return
    assert status == 200, (status, body)
    assert isinstance(body, dict), body
    kind = body.get("type")
    assert kind in (CARD, MESSAGE, LOGIN_REQUEST, PRECONDITION_FAILED), body
    text = card_text(body.get("value"))
    assert APOLOGY not in text, text
    if kind == CARD:
        assert card_errors(body["value"]) == [], body["value"]
    ledger.answers[{CARD: "card", MESSAGE: "text", LOGIN_REQUEST: "sign-in", PRECONDITION_FAILED: "412"}[kind]] += 1


def _assert_clear_message_answer(status: int, body: Any, ledger: Ledger) -> None:
    if _refused_as_not_unicode(status, body, ledger):
        return
    assert status == 200, (status, body)
    activities = replies(body)
    assert activities, "a message must get an answer"
    assert APOLOGY not in json.dumps(activities), activities
    for card in cards_of(activities):
        assert card_errors(card) == [], card
    ledger.answers["card" if cards_of(activities) else "text"] += 1


def _finish(ledger: Ledger, name: str, ran: int, minimum: int, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\n{ledger.report(name, ran)}")
    assert ran >= minimum, ledger.report(name, ran)
    assert ledger.graph_writes() == 0, ledger.report(name, ran)
    assert ledger.school_state() == ledger.state_before, "invalid input changed a submission in the sandbox"


def _no_turn_failed(caplog: pytest.LogCaptureFixture) -> None:
    failures = [r.getMessage() for r in caplog.records if r.name.startswith("bot.teams") and r.levelno >= logging.ERROR]
    assert failures == [], failures[:3]


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- value strategies ---------------------------------------------------------------------------------------------

_HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "null",
        "../../etc/passwd",
        "a/b",
        "%2e%2e%2f",
        "a?$filter=true",
        "a#b",
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "\u202eevil",
        "\x00",
        "Ω≈ç√∫",
        "🙂" * 50,
        "x" * 5000,
        "1e999",
        "NaN",
        "-0",
        "0x10",
        "٣",
        "７",
    ]
)
_TEXT = st.text(max_size=300) | _HOSTILE_TEXT
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
_JSON = st.recursive(
    _SCALAR, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=5), max_leaves=20
)
_EXTRA_KEYS = st.dictionaries(st.text(max_size=40) | st.sampled_from(["level_x", "level_", "__proto__"]), _JSON)
_FORGED_ID = (
    st.uuids().map(str) | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}", fullmatch=True) | _TEXT | _SCALAR
)
_BAD_NONCE = _SCALAR.filter(lambda v: not (isinstance(v, str) and re.fullmatch(r"[A-Za-z0-9_-]{8,64}", v)))
_NOT_BOOL = _JSON.filter(lambda v: not isinstance(v, bool))
_BAD_POINTS = st.one_of(
    st.integers(max_value=-1),
    st.integers(min_value=11),
    st.floats(max_value=-0.001),
    st.floats(min_value=10.001),
    st.just(float("nan")),
    st.just(float("inf")),
    st.sampled_from(["-1", "10.5", "11", "1e3", "7.123", "seven", "7,5", "NaN", "Infinity", "--1", "1" * 40, "٣"]),
    st.booleans(),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=3),
)
_BAD_FEEDBACK = st.one_of(
    st.text(min_size=4001, max_size=4100).filter(lambda t: len(t.strip()) > 4000),
    st.text(min_size=1, max_size=50).map(lambda t: t + "\x07"),
    st.integers(),
    st.lists(st.text(max_size=5), min_size=1, max_size=3),
    st.booleans(),
)
_BAD_TIMESTAMP = _SCALAR.filter(lambda v: v is not None and not (isinstance(v, str) and not v.strip()))


# --- payloads -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Targets:
    """Real ids in the seeded school: the teacher's own, and another teacher's class."""

    class_id: str
    assignment_id: str
    submission_id: str
    rubric_assignment_id: str
    rubric_submission_id: str
    quality_ids: tuple[str, ...]
    level_ids: tuple[str, ...]
    other_class_id: str
    other_assignment_id: str
    other_submission_id: str


def _targets(world: World) -> Targets:
    school = world.school
    bio, hist = world.school_class("BIO101"), world.school_class("HIST9")

    def named(class_id: str, name: str) -> Any:
        return next(a for a in school.assignments_of(class_id) if a.display_name == name)

    def submitted(assignment: Any) -> str:
        subs = assignment.submissions.values() if isinstance(assignment.submissions, dict) else assignment.submissions
        return str(next(s.id for s in subs if school.shown_state(s).status == "submitted"))

    worksheet, lab = named(bio.id, "Cell structure worksheet"), named(bio.id, "Microscope lab report")
    rubric = school.rubric_of(lab)
    assert rubric is not None
    essay = named(hist.id, "Primary source analysis")
    return Targets(
        bio.id,
        worksheet.id,
        submitted(worksheet),
        lab.id,
        submitted(lab),
        tuple(q.quality_id for q in rubric.qualities),
        tuple(level.level_id for level in rubric.levels),
        hist.id,
        essay.id,
        submitted(essay),
    )


def _nonce() -> st.SearchStrategy[str]:
    return st.from_regex(r"[A-Za-z0-9_-]{8,64}", fullmatch=True)


def _valid_write(verb: str, t: Targets) -> st.SearchStrategy[dict[str, Any]]:
    """Well-formed data for a write verb on the teacher's own submission (the fuzz then breaks it)."""
    ids = {"classId": t.class_id, "assignmentId": t.assignment_id, "submissionId": t.submission_id}
    if verb == "grade":
        return st.fixed_dictionaries(
            {
                **{k: st.just(v) for k, v in ids.items()},
                "points": st.sampled_from(["7", "", "9.5", 3]),
                "feedback": st.sampled_from(["Good work.", "", "Ünïcødé 🙂"]),
                "knownModified": st.just(""),
                "force": st.booleans(),
                "nonce": _nonce(),
            }
        )
    if verb in ("return", "reassign", "excuse"):
        return st.fixed_dictionaries(
            {**{k: st.just(v) for k, v in ids.items()}, "confirmed": st.just(True), "nonce": _nonce()}
        )
    if verb == "returnAll":
        return st.fixed_dictionaries(
            {
                "classId": st.just(t.class_id),
                "assignmentId": st.just(t.assignment_id),
                "confirmed": st.just(True),
                "expectedCount": st.integers(0, 30),
                "nonce": _nonce(),
            }
        )
    assert verb == "resolveConflict"
    return st.fixed_dictionaries(
        {
            **{k: st.just(v) for k, v in ids.items()},
            "choice": st.just("mine"),
            "points": st.just("7"),
            "feedback": st.just("Fine."),
            "nonce": _nonce(),
        }
    )


_INVALID_FIELDS: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "grade": {
        "points": _BAD_POINTS,
        "feedback": _BAD_FEEDBACK,
        "knownModified": _BAD_TIMESTAMP,
        "force": _NOT_BOOL,
        "nonce": _BAD_NONCE,
    },
    "return": {"confirmed": _NOT_BOOL, "nonce": _BAD_NONCE},
    "reassign": {"confirmed": _NOT_BOOL, "nonce": _BAD_NONCE},
    "excuse": {"confirmed": _NOT_BOOL, "nonce": _BAD_NONCE},
    "returnAll": {
        "confirmed": _NOT_BOOL,
        "nonce": _BAD_NONCE,
        "expectedCount": st.integers(max_value=-1)
        | st.integers(min_value=100_001)
        | _TEXT.filter(lambda s: re.fullmatch(r"\d{1,9}(?:\.0*)?", s.strip(), re.ASCII) is None),
    },
    "resolveConflict": {
        "choice": _JSON.filter(lambda v: v not in ("mine", "theirs")),
        "points": _BAD_POINTS,
        "feedback": _BAD_FEEDBACK,
        "nonce": _BAD_NONCE,
    },
}
_ID_KEYS = {
    "grade": ("classId", "assignmentId", "submissionId"),
    "return": ("classId", "assignmentId", "submissionId"),
    "reassign": ("classId", "assignmentId", "submissionId"),
    "excuse": ("classId", "assignmentId", "submissionId"),
    "returnAll": ("classId", "assignmentId"),
    "resolveConflict": ("classId", "assignmentId", "submissionId"),
}


@st.composite
def broken_write(draw: st.DrawFn, t: Targets) -> tuple[str, dict[str, Any]]:
    """A write verb whose data is invalid or aimed at something the teacher may not touch: forged ids, one
    invalid field, or a missing required key — with extra keys of any kind around it."""
    verb = draw(st.sampled_from(["grade", "grade", *sorted(_INVALID_FIELDS)]))
    data = dict(draw(_valid_write(verb, t)))
    how = draw(st.sampled_from(["forge", "forge", "invalid", "invalid", "missing", "other-teacher"]))
    protected: set[str] = set()
    if how == "forge":
        for key in draw(st.lists(st.sampled_from(_ID_KEYS[verb]), min_size=1, unique=True)):
            data[key] = draw(_FORGED_ID)
            protected.add(key)
    elif how == "other-teacher":
        data.update({"classId": t.other_class_id, "assignmentId": t.other_assignment_id})
        if "submissionId" in data:
            data["submissionId"] = t.other_submission_id
        protected.update({"classId", "assignmentId"})
    elif how == "invalid":
        key = draw(st.sampled_from(sorted(_INVALID_FIELDS[verb])))
        data[key] = draw(_INVALID_FIELDS[verb][key])
        protected.add(key)
    else:
        required = [k for k in data if k not in ("points", "feedback")]
        missing = draw(st.sampled_from(required))
        del data[missing]
        protected.add(missing)
    extras = draw(_EXTRA_KEYS)
    if verb == "grade" and how not in ("forge", "other-teacher"):
        # Rubric inputs (`level_*`) are only harmless next to an invalid field; keep them out otherwise.
        extras = {k: v for k, v in extras.items() if not str(k).startswith("level_")}
    if verb == "grade" and how in ("forge", "other-teacher") and draw(st.booleans()):
        extras[f"level_{draw(st.sampled_from(t.quality_ids))}"] = draw(st.sampled_from(t.level_ids) | _FORGED_ID)
    return verb, {**{k: v for k, v in extras.items() if k not in data and k not in protected}, **data}


READ_VERBS = (
    "pickClass",
    "showAssignments",
    "showUngraded",
    "refreshView",
    "openGrading",
    "skip",
    "undo",
    "snooze",
    "remindOff",
    "saveReminders",
    "signIn",
)


@st.composite
def any_read(draw: st.DrawFn, t: Targets) -> tuple[str, Any]:
    """A verb that writes nothing to Graph (or an unknown one), with anything at all for data."""
    verb = draw(st.sampled_from(READ_VERBS)) if draw(st.integers(0, 5)) else draw(_TEXT)
    plausible = {
        "classId": draw(st.sampled_from([t.class_id, t.other_class_id]) | _FORGED_ID),
        "assignmentId": draw(st.sampled_from([t.assignment_id, t.rubric_assignment_id]) | _FORGED_ID),
        "submissionId": draw(st.sampled_from([t.submission_id, t.rubric_submission_id]) | _FORGED_ID),
        "next": draw(st.sampled_from(["assignments", "ungraded", "grade"]) | _JSON),
        "view": draw(st.sampled_from(["assignments", "ungraded"]) | _JSON),
        "page": draw(st.integers(-5, 20_000) | _JSON),
        "days": draw(st.sampled_from([1, 7, "mon,tue", ""]) | _JSON),
        "time": draw(st.sampled_from(["07:30", "25:00"]) | _JSON),
        "timezone": draw(st.sampled_from(["Europe/Berlin", "Europe", "America/Argentina"]) | _JSON),
        "enabled": draw(st.sampled_from(["true", "false", True]) | _JSON),
        "minWaiting": draw(st.sampled_from(["1", "0", "1001"]) | _JSON),
        "minAgeDays": draw(st.sampled_from(["0", "366"]) | _JSON),
        "classIds": draw(st.sampled_from(["", t.class_id, t.other_class_id]) | _JSON),
        "quietStart": draw(st.sampled_from(["", "22:00"]) | _JSON),
        "quietEnd": draw(st.sampled_from(["", "06:00"]) | _JSON),
        "query": draw(_JSON),
        "nonce": draw(_nonce() | _JSON),
    }
    keys = draw(st.lists(st.sampled_from(sorted(plausible)), unique=True))
    data: Any = {**draw(_EXTRA_KEYS), **{k: plausible[k] for k in keys}}
    if draw(st.integers(0, 9)) == 0:
        data = draw(_JSON)  # not even an object
    elif draw(st.integers(0, 19)) == 0:
        data = {f"k{i}": i for i in range(draw(st.integers(150, 260)))}
    return verb, data


def _invoke_envelope(draw: st.DrawFn, world: World, verb: Any, data: Any) -> dict[str, Any]:
    rosa = world.user("rosa")
    shared = draw(st.integers(0, 4)) == 0
    activity = card_action(
        rosa,
        verb,
        data,
        world.sandbox.connector_url,
        school_class=world.school_class("BIO101") if shared else None,
        trigger=draw(st.sampled_from(["manual", "automatic"])),
    )
    value = activity["value"]
    choice = draw(st.integers(0, 19))
    if choice == 0:
        value["state"] = draw(_JSON)
    elif choice == 1:
        value["authentication"] = draw(_JSON | st.fixed_dictionaries({"token": _TEXT}))
    elif choice == 2:
        value["action"] = draw(_JSON)
    elif choice == 3:
        activity["value"] = draw(_JSON)
    elif choice == 4:
        activity["replyToId"] = draw(_TEXT)
    return activity


# --- the tests ------------------------------------------------------------------------------------------------------


async def test_fuzzed_card_actions_get_a_clear_answer_and_write_nothing(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = _targets(world)
    ledger = Ledger(world)
    ledger.start()

    @st.composite
    def activities(draw: st.DrawFn) -> dict[str, Any]:
        verb, data = draw(broken_write(targets) | any_read(targets))
        return _invoke_envelope(draw, world, verb, data)

    verbs: Counter[str] = Counter()

    async def check(activity: dict[str, Any]) -> None:
        action = _object(_object(activity.get("value")).get("action"))
        verbs[str(action.get("verb"))[:20]] += 1
        status, body = await world.post(activity)
        _assert_clear_invoke_answer(status, body, ledger)

    ran = await explore(activities(), check, examples=400)
    with capsys.disabled():
        print(f"\nverbs: {verbs.most_common(25)}")
    _no_turn_failed(caplog)
    _finish(ledger, "card actions", ran, 400, capsys)
    # The tap is live: one valid grade afterwards is counted (so the 0 above means nothing was written).
    valid = {"points": "7", "feedback": "ok", "knownModified": "", "force": False, "nonce": "fuzz-control-1"}
    ids = {"classId": targets.class_id, "assignmentId": targets.assignment_id, "submissionId": targets.submission_id}
    status, body = await world.post(
        card_action(world.user("rosa"), "grade", {**ids, **valid}, world.sandbox.connector_url)
    )
    assert status == 200 and "Saved" in card_text(body.get("value")), body
    assert ledger.graph_writes() >= 1


_COMMAND_WORDS = ("help", "classes", "assignments", "ungraded", "grade", "undo", "remind", "remind on", "remind off")


async def test_fuzzed_command_text_gets_a_clear_answer_and_writes_nothing(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger(world)
    ledger.start()
    rosa, bio = world.user("rosa"), world.school_class("BIO101")

    @st.composite
    def messages(draw: st.DrawFn) -> dict[str, Any]:
        word = draw(st.sampled_from(_COMMAND_WORDS) | st.just(""))
        rest = draw(_TEXT | st.text(min_size=1000, max_size=30_000).map(lambda t: t[:30_000]))
        text = f"{word} {rest}" if word else rest
        shared = draw(st.integers(0, 3)) == 0
        zone = draw(st.sampled_from([None, "Europe/Berlin", "Europe", "x" * 300]) | _TEXT)
        activity = message(
            rosa, text, world.sandbox.connector_url, school_class=bio if shared else None, timezone=zone or None
        )
        if draw(st.integers(0, 9)) == 0:
            activity["entities"] = draw(st.lists(st.none() | st.dictionaries(_TEXT, _JSON), max_size=4))
        return activity

    async def check(activity: dict[str, Any]) -> None:
        status, body = await world.post(activity)
        _assert_clear_message_answer(status, body, ledger)

    ran = await explore(messages(), check, examples=200)
    _no_turn_failed(caplog)
    _finish(ledger, "command text", ran, 200, capsys)


_ACTIVITY_KEYS = (
    "type",
    "name",
    "id",
    "channelId",
    "from",
    "recipient",
    "conversation",
    "channelData",
    "text",
    "value",
    "entities",
    "attachments",
    "replyToId",
    "deliveryMode",
    "localTimezone",
    "locale",
    "membersAdded",
    "action",
)


async def test_fuzzed_http_bodies_never_get_a_500(
    world: World, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = Ledger(world)
    ledger.start()
    rosa, bio = world.user("rosa"), world.school_class("BIO101")
    url = world.sandbox.connector_url
    service_urls = st.sampled_from([url, url + "/../x", "http://127.0.0.1:9/", "", "ftp://127.0.0.1/", "x"]) | _SCALAR
    templates = [
        message(rosa, "help", url),
        message(rosa, "ungraded", url, school_class=bio),
        message(rosa, "help", url, expect_replies=False),
        card_action(rosa, "showUngraded", {"page": 0}, url),
        invoke(rosa, "signin/tokenExchange", {"id": "x", "token": "y"}, url),
        invoke(rosa, "signin/verifyState", {"state": "123456"}, url),
        {**message(rosa, "", url), "type": "conversationUpdate", "membersAdded": [{"id": "28:gradebot"}]},
        {**message(rosa, "", url), "type": "installationUpdate", "action": "add"},
    ]

    @st.composite
    def bodies(draw: st.DrawFn) -> tuple[bytes, str]:
        kind = draw(st.integers(0, 9))
        if kind == 0:
            return draw(st.binary(max_size=2000)), "application/json"
        if kind == 1:
            return json.dumps(draw(_JSON)).encode(), "application/json"
        activity = copy.deepcopy(draw(st.sampled_from(templates)))
        for key in draw(st.lists(st.sampled_from(_ACTIVITY_KEYS), min_size=1, max_size=4, unique=True)):
            if draw(st.booleans()):
                activity.pop(key, None)
            else:
                activity[key] = draw(_JSON | st.just("\ud800"))  # a lone surrogate: legal JSON, not Unicode
        if draw(st.integers(0, 4)) == 0:
            activity["serviceUrl"] = draw(service_urls)
        if draw(st.integers(0, 4)) == 0 and isinstance(activity.get("from"), dict):
            activity["from"] = {**activity["from"], "aadObjectId": draw(_FORGED_ID)}
        raw = json.dumps(activity, allow_nan=True).encode("utf-8", "surrogatepass")
        return raw, draw(st.sampled_from(["application/json"] * 9 + ["text/plain"]))

    async def check(example: tuple[bytes, str]) -> None:
        raw, content_type = example
        connector_before = len(world.sandbox.connector.activities)
        response = await world.client.post("/api/messages", data=raw, headers={"Content-Type": content_type})
        # 404 / 412 are the sign-in invokes' own answers (state not found, token not exchanged).
        assert response.status in (200, 201, 400, 404, 412, 415), (response.status, await response.text())
        body = await response.json() if response.content_type == "application/json" else None
        if response.status in (400, 415):
            assert isinstance(body, dict) and body.get("error"), body
            ledger.answers[str(response.status)] += 1
        else:
            assert APOLOGY not in json.dumps(body), body
            ledger.answers[str(response.status)] += 1
        sent = [a.activity for a in world.sandbox.connector.activities[connector_before:]]
        assert APOLOGY not in json.dumps(sent), sent

    ran = await explore(bodies(), check, examples=400)
    _no_turn_failed(caplog)
    _finish(ledger, "HTTP bodies", ran, 400, capsys)
