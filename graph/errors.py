"""Graph failures as one exception tree, and the one function that turns an HTTP answer into the right exception.
Logic keys off `status`, `code` and `inner_code`, never off Graph's `message` (it may echo request values, so `str()`
leaves it out: `str(error)` carries only the status, codes, request path and id, and is safe to log)."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


class GraphError(Exception):
    """A request to Microsoft Graph failed (400 with `inner_code` "invalidGrading", 409, 424…): `status` None when no
    answer arrived; `code` Graph's ("badRequest", "20241") or ours ("timeout"); `retry_after` when Graph said."""

    def __init__(
        self,
        status: int | None,
        code: str = "",
        *,
        inner_code: str | None = None,
        message: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        self.status, self.code, self.inner_code, self.message = status, code, inner_code, message
        self.request_id, self.retry_after, self.method, self.path = request_id, retry_after, method, path
        parts = [
            f"Graph {'no answer' if status is None else status}",
            code and (code if inner_code is None else f"{code}/{inner_code}"),
            method and path and f"on {method} {path}",
            request_id and f"request-id {request_id}",
            None if retry_after is None else f"retry after {retry_after:g}s",
        ]
        super().__init__(" ".join(part for part in parts if part))


class GraphAuthError(GraphError):
    """401: the bearer token was refused, even after asking the token provider again."""


class GraphForbiddenError(GraphError):
    """403: the caller may not do this (missing scope, not a teacher of the class, a student)."""


class GraphNotFoundError(GraphError):
    """404: no such class, assignment, submission or outcome (outcomes answer code "20241")."""


class GraphThrottledError(GraphError):
    """429: too many requests; wait `retry_after` seconds (when given) before trying again."""


class GraphUnavailableError(GraphError):
    """5xx, a timeout or a dropped connection. With `status` None a POST action's effect is unknown: re-read state."""


_BY_STATUS = {401: GraphAuthError, 403: GraphForbiddenError, 404: GraphNotFoundError, 429: GraphThrottledError}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a (possibly fractional) number, or an HTTP date; None when absent or unreadable."""
    text = (value or "").strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _object(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def error_from_response(
    status: int, headers: Mapping[str, str], body: object, *, method: str | None = None, path: str | None = None
) -> GraphError:
    """The exception for one non-2xx Graph answer (a whole response or one `$batch` item): the class follows the
    status. `headers` may use any letter case; `body` is raw bytes/text or already-parsed JSON (as in `$batch`)."""
    if isinstance(body, bytes | bytearray | str):
        try:
            body = json.loads(body)
        except ValueError:
            body = None
    error = _object(_object(body).get("error"))
    inner = _object(error.get("innerError") or error.get("innererror"))
    lowered = {key.lower(): value for key, value in headers.items()}
    kind = GraphUnavailableError if status >= 500 else _BY_STATUS.get(status, GraphError)
    return kind(
        status,
        _text(error.get("code")) or "",
        inner_code=_text(inner.get("code")),
        message=_text(error.get("message")) or "",
        request_id=lowered.get("request-id") or _text(inner.get("request-id")) or lowered.get("client-request-id"),
        retry_after=parse_retry_after(lowered.get("retry-after")) if status == 429 or status >= 500 else None,
        method=method,
        path=path,
    )
