"""What every log line of a turn says about it (the activity id, a hash of the conversation id, the operation and its
outcome), held in a context variable so the lines of concurrent turns never mix; `JsonFormatter` writes them, with
the current span's trace and span ids, into each line."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

MAX_ID_LENGTH = 128
"""Activity ids come from the request body: longer ones are cut (Teams' are well under this)."""


@dataclass(slots=True)
class Scope:
    """The turn (or background tick) a log line belongs to; None where not known."""

    activity: str | None = None
    conversation: str | None = None
    """`conversation_hash` of the conversation id."""
    operation: str | None = None
    """A command word, a card verb, an invoke name or a worker's name — never text a user typed."""
    outcome: str | None = None


_SCOPE: ContextVar[Scope | None] = ContextVar("gradebot_telemetry_scope", default=None)


def conversation_hash(conversation_id: str) -> str:
    """16 hex digits of SHA-256 of a conversation id: the same id always gives the same hash. Logs carry this, never
    the id: a 1:1 chat's id stands for one person, and logs travel further than the database; an operator who holds
    the id (in the `conversations` table) can find its lines, nobody can read the id back from them."""
    return hashlib.sha256(conversation_id.encode("utf-8", "surrogatepass")).hexdigest()[:16]


@contextmanager
def scope(*, activity: str | None, conversation_id: str | None, operation: str | None) -> Iterator[Scope]:
    """Every log line inside (and in tasks started inside) belongs to this scope."""
    current = Scope(
        activity=activity[:MAX_ID_LENGTH] if activity else None,
        conversation=conversation_hash(conversation_id) if conversation_id else None,
        operation=operation,
    )
    token = _SCOPE.set(current)
    try:
        yield current
    finally:
        _SCOPE.reset(token)


def note(*, operation: str | None = None, outcome: str | None = None) -> None:
    """Name the operation or outcome of the current scope once it is known (nothing happens outside a scope)."""
    if (active := _SCOPE.get()) is not None:
        active.operation = active.operation if operation is None else operation
        active.outcome = active.outcome if outcome is None else outcome


def settle(outcome: str) -> None:
    """The outcome of the current scope, unless one was noted already (a refusal noted deeper in stays)."""
    active = _SCOPE.get()
    if active is not None and active.outcome is None:
        active.outcome = outcome


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
SCOPE_FIELDS = ("activity", "conversation", "operation", "outcome")


class JsonFormatter(logging.Formatter):
    """One JSON object per line (newlines in messages and tracebacks are escaped); text is kept as written
    (`ensure_ascii=False`), so what a line holds is what anyone searching it finds."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        scope = _SCOPE.get()
        for field in SCOPE_FIELDS:
            if value := getattr(record, field, None) or getattr(scope, field, None):
                entry[field] = str(value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
