"""The privacy scan behind tests/bot's autouse fixture: what students could see (activities in channels and group
chats, answers to invokes there) and what operators read (every log line at DEBUG, as the JSON production writes, and
every span telemetry exports) must hold no student name, no grade or feedback a test typed, no token, authorization
code or PKCE verifier.

Findings name where the leak is and what kind of data it is; the matched data itself is replaced by «kind».
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan  # noqa: TID251 - spans as the in-memory exporter holds them

from bot.telemetry.context import JsonFormatter
from sandbox.app import Sandbox
from sandbox.directory import User

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")
MIN_TYPED_LENGTH = 6
"""Typed feedback shorter than this ("ok") would match ordinary words; tests type longer text when it matters."""
OWN_LOGGERS_ONLY_ABOVE = ("sandbox",)
"""The sandbox is another service (Graph, Entra, Teams): its log lines are not Gradebot's."""


@dataclass(frozen=True)
class Finding:
    where: str
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.where} holds {self.kind}: {self.excerpt}"


@dataclass
class Posted:
    """One activity a test posted to /api/messages and what Gradebot answered in the HTTP response."""

    activity: Mapping[str, Any]
    status: int
    body: Any


class LogCapture(logging.Handler):
    """Every record at DEBUG and above, formatted (exception text included) as an operator reads it: one JSON
    object per line, as production writes it (bot.telemetry.context)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[tuple[str, str]] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in OWN_LOGGERS_ONLY_ABOVE:
            return
        try:
            self.lines.append((record.name, self.format(record)))
        except Exception as exc:  # a record that cannot be formatted is itself worth a look
            self.lines.append((record.name, f"unformattable record ({type(exc).__name__}): {record.msg!r}"))


@dataclass
class Secrets:
    """What must not leak, each with the kind reported instead of it."""

    exact: dict[str, str] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], str]] = field(default_factory=list)

    def add_text(self, value: str, kind: str) -> None:
        text = value.strip()
        if len(text) >= MIN_TYPED_LENGTH:
            self.exact.setdefault(text, kind)

    def add_points(self, value: str) -> None:
        number = value.strip()
        if not re.fullmatch(r"\d+(\.\d+)?", number):
            return
        forms = {number, number.rstrip("0").rstrip(".") if "." in number else number}
        for form in forms:
            escaped = re.escape(form)
            self.patterns.append((re.compile(rf"points?\W{{1,16}}{escaped}(?![\d.])", re.IGNORECASE), "typed points"))
            self.patterns.append(
                (re.compile(rf"(?<![\w.]){escaped}\s*(/\s*\d|out of\b|points\b|pts\b)"), "typed points")
            )

    def find(self, text: str) -> Iterator[tuple[int, int, str]]:
        for value, kind in self.exact.items():
            start = text.find(value)
            while start >= 0:
                yield start, start + len(value), kind
                start = text.find(value, start + 1)
        for pattern, kind in [*self.patterns, (JWT, "a token (JWT)")]:
            for match in pattern.finditer(text):
                yield match.start(), match.end(), kind


def redacted(text: str, hits: list[tuple[int, int, str]], width: int = 240) -> str:
    """The text around the first hit, every hit replaced by «kind», cut to `width` characters."""
    hits = sorted(hits)
    first = hits[0][0]
    start = max(0, first - width // 2)
    out: list[str] = []
    cursor = start
    for begin, end, kind in hits:
        if begin < cursor:
            continue
        out.append(text[cursor:begin])
        out.append(f"«{kind}»")
        cursor = end
    out.append(text[cursor:])
    excerpt = "".join(out)
    return ("…" if start else "") + excerpt[:width] + ("…" if len(excerpt) > width else "")


def is_shared(conversation_id: str) -> bool:
    """Channels and group chats (Teams' 1:1 chat ids start with `a:`)."""
    return not conversation_id.startswith("a:")


class PrivacyScan:
    """Collects what a test exposed (logs, posts, sandboxes) and reports leaks of the test's secrets in it."""

    def __init__(self, spans: Callable[[], Sequence[ReadableSpan]] = tuple) -> None:
        self.logs = LogCapture()
        self.sandboxes: list[Sandbox] = []
        self.posted: list[Posted] = []
        self.spans = spans
        """The spans telemetry would export (names, attributes and events are scanned like log lines)."""

    def watch(self, sandbox: Sandbox) -> None:
        self.sandboxes.append(sandbox)

    def secrets(self) -> Secrets:
        found = Secrets()
        for sandbox in self.sandboxes:
            for user in sandbox.directory.users.values():
                if user.role == "student":
                    _add_student(found, user)
            for secret in _identity_secrets(sandbox):
                found.exact.setdefault(secret, "an authorization code, refresh token or PKCE verifier")
        for posted in self.posted:
            value = posted.activity.get("value")
            action = value.get("action") if isinstance(value, Mapping) else None
            data = action.get("data") if isinstance(action, Mapping) else None
            if not isinstance(data, Mapping):
                continue
            if isinstance(data.get("feedback"), str):
                found.add_text(data["feedback"], "typed feedback")
            if isinstance(data.get("points"), str | int | float) and not isinstance(data.get("points"), bool):
                found.add_points(str(data["points"]))
        return found

    def findings(self) -> list[Finding]:
        secrets = self.secrets()
        findings: list[Finding] = []
        for where, text in self._exposed():
            hits = list(secrets.find(text))
            if hits:
                findings.append(Finding(where, ", ".join(sorted({k for _, _, k in hits})), redacted(text, hits)))
        return findings

    def _exposed(self) -> Iterator[tuple[str, str]]:
        for number, (name, line) in enumerate(self.logs.lines, 1):
            yield f"log line {number} ({name})", _log_text(line)
        for number, span in enumerate(self.spans(), 1):
            yield f"span {number} ({span.name})", _span_text(span)
        for sandbox in self.sandboxes:
            for recorded in sandbox.connector.activities:
                if is_shared(recorded.conversation_id) and recorded.activity is not None:
                    where = f"{recorded.operation} of activity {recorded.activity_id} in a shared conversation"
                    yield where, _text(recorded.activity)
        for posted in self.posted:
            conversation = posted.activity.get("conversation") or {}
            if not is_shared(str(conversation.get("id", ""))) or _teachers_own_answer(posted, self.sandboxes):
                continue
            kind = "invoke answer" if posted.activity.get("type") == "invoke" else "expectReplies answer"
            yield f"{kind} to activity {posted.activity.get('id')} in a shared conversation", _text(posted.body)


def _log_text(line: str) -> str:
    """A log line as written, and a JSON line's values unescaped too (a name with an accent or a quote is then
    found as typed)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    return f"{line}\n{_text(entry)}" if isinstance(entry, dict) else line


def _span_text(span: ReadableSpan) -> str:
    events = [{"event": event.name, **dict(event.attributes or {})} for event in span.events]
    return _text({"name": span.name, **dict(span.attributes or {}), "events": events})


def _add_student(found: Secrets, user: User) -> None:
    found.exact.setdefault(user.display_name, "a student's name")
    found.exact.setdefault(user.user_principal_name, "a student's sign-in name")


def _identity_secrets(sandbox: Sandbox) -> Iterable[str]:
    try:
        return list(sandbox.identity.secrets_seen)
    except Exception:  # never started: it issued nothing
        return []


def _teachers_own_answer(posted: Posted, sandboxes: list[Sandbox]) -> bool:
    """An invoke answer to a teacher of the team's class (their refresh, or a button they pressed in their own
    view): Teams shows it only on the client that invoked. Answers to anyone else, and every message reply
    (everyone in the conversation sees those), are scanned."""
    if posted.activity.get("type") != "invoke":
        return False
    sender = posted.activity.get("from") or {}
    user_id = str(sender.get("aadObjectId", ""))
    team_id = str((posted.activity.get("conversation") or {}).get("id", "")).split(";")[0]
    return any(
        school_class.team_id == team_id and user_id in school_class.teacher_ids
        for sandbox in sandboxes
        for school_class in sandbox.directory.classes.values()
    )


ADDRESSING = frozenset({"from", "recipient"})
"""Who sends and whom an activity answers: Bot Framework addressing that Teams does not show (a reply to a student
in a channel names that student as its recipient), not content."""


def _text(value: Any) -> str:
    """Every string and number of a JSON value, one `key: value` per line (escapes undone, so text matches); the
    addressing of activities is left out."""
    lines: list[str] = []

    def walk(node: Any, key: str) -> None:
        if isinstance(node, Mapping):
            for name, item in node.items():
                if name not in ADDRESSING or not isinstance(item, Mapping):
                    walk(item, str(name))
        elif isinstance(node, list):
            for item in node:
                walk(item, key)
        elif isinstance(node, str | int | float) and not isinstance(node, bool):
            lines.append(f"{key}: {node}")

    walk(value, "")
    return "\n".join(lines)
