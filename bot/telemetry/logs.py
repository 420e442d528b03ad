"""Log lines as one JSON object each: time, level, logger, message and, when known, the activity id, conversation
hash, operation and outcome of the turn (bot.telemetry.context) and the trace and span ids of the current span."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from bot.telemetry import context

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
        scope = context.current()
        for field in SCOPE_FIELDS:
            value = getattr(record, field, None) or (getattr(scope, field) if scope is not None else None)
            if value:
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


def formatter(json_lines: bool) -> logging.Formatter:
    """The formatter Gradebot's console handler uses: JSON lines, or text for people."""
    return JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT)
