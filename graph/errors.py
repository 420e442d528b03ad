"""Graph failures as one exception tree, and the one function that turns an HTTP answer into the right exception.

    GraphError                        any failure talking to Graph (status, code, inner_code, message, request_id)
    ├── GraphBadRequestError          400 — `.inner_code` says why (e.g. "invalidGrading")
    ├── GraphAuthError                401 — the token was refused even after asking the token provider again
    ├── GraphForbiddenError           403 — signed in, but not allowed (a student grading, a teacher of another class)
    ├── GraphNotFoundError            404 — unknown id (outcomes answer code "20241")
    ├── GraphConflictError            409, 412
    ├── GraphFailedDependencyError    424 — a `$batch` item whose `dependsOn` item failed
    ├── GraphThrottledError           429 — `.retry_after` seconds, when Graph said
    └── GraphUnavailableError         5xx, timeouts, dropped connections — `.retry_after` too; `.status` None when
                                      no HTTP answer arrived (a POST action may or may not have happened: re-read)

Logic keys off `code` / `inner_code`, never off Graph's `message`. `str(error)` carries only the status, codes, request
path and request id, so it is safe to log; Graph's own `message` may echo request values and is kept apart.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime

RETRY_AFTER = "retry-after"
REQUEST_ID = "request-id"
CLIENT_REQUEST_ID = "client-request-id"


class GraphError(Exception):
    """A request to Microsoft Graph failed; see the module docstring for the tree."""

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
        self.status = status
        """HTTP status, or None when no HTTP answer arrived (timeout, dropped connection)."""
        self.code = code
        """Graph's `error.code` (e.g. "badRequest", "20241"), or our own for transport failures ("timeout")."""
        self.inner_code = inner_code
        """Graph's `error.innerError.code` when present: the more specific reason."""
        self.message = message
        """Graph's own text, for diagnostics only: it may echo request values, so it is left out of `str()`."""
        self.request_id = request_id
        self.retry_after = retry_after
        """Seconds Graph asked us to wait (429/503 `Retry-After`), if it said."""
        self.method = method
        self.path = path
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"Graph {self.status if self.status is not None else 'no answer'}"]
        if self.code:
            parts.append(self.code if self.inner_code is None else f"{self.code}/{self.inner_code}")
        if self.method and self.path:
            parts.append(f"on {self.method} {self.path}")
        if self.request_id:
            parts.append(f"request-id {self.request_id}")
        if self.retry_after is not None:
            parts.append(f"retry after {self.retry_after:g}s")
        return " ".join(parts)


class GraphBadRequestError(GraphError):
    """400: Graph rejected the request as sent; `inner_code` says why (e.g. "invalidGrading")."""


class GraphAuthError(GraphError):
    """401: the bearer token was refused, even after asking the token provider again."""


class GraphForbiddenError(GraphError):
    """403: the caller may not do this (missing scope, not a teacher of the class, a student)."""


class GraphNotFoundError(GraphError):
    """404: no such class, assignment, submission or outcome (outcomes answer code "20241")."""


class GraphConflictError(GraphError):
    """409 or 412: the resource changed or is in a state that forbids this."""


class GraphFailedDependencyError(GraphError):
    """424: a `$batch` item was not run because an item it `dependsOn` failed."""


class GraphThrottledError(GraphError):
    """429: too many requests; wait `retry_after` seconds (when given) before trying again."""


class GraphUnavailableError(GraphError):
    """5xx, a timeout or a dropped connection. With `status` None a POST action's effect is unknown: re-read state."""


_BY_STATUS: Mapping[int, type[GraphError]] = {
    400: GraphBadRequestError,
    401: GraphAuthError,
    403: GraphForbiddenError,
    404: GraphNotFoundError,
    409: GraphConflictError,
    412: GraphConflictError,
    424: GraphFailedDependencyError,
    429: GraphThrottledError,
}


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: a (possibly fractional) number, or an HTTP date; None when absent or unreadable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
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
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_fields(body: object) -> tuple[str, str | None, str, str | None]:
    """(code, inner code, message, request id) from an OData error body, tolerating anything else."""
    if isinstance(body, bytes | bytearray):
        try:
            body = json.loads(body)
        except ValueError:
            return "", None, "", None
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return "", None, "", None
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return "", None, "", None
    inner = error.get("innerError") or error.get("innererror")
    inner = inner if isinstance(inner, Mapping) else {}
    code = error.get("code")
    inner_code = inner.get("code")
    message = error.get("message")
    request_id = inner.get("request-id")
    return (
        str(code) if code is not None else "",
        str(inner_code) if inner_code is not None else None,
        str(message) if message is not None else "",
        str(request_id) if request_id is not None else None,
    )


def error_from_response(
    status: int,
    headers: Mapping[str, str],
    body: object,
    *,
    method: str | None = None,
    path: str | None = None,
) -> GraphError:
    """The exception for one non-2xx Graph answer (a whole response or one `$batch` item).

    `headers` may use any letter case; `body` is the raw bytes/text or the already-parsed JSON (as in `$batch`).
    The class follows the HTTP status; `code`/`inner_code` carry Graph's reason for finer decisions.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    code, inner_code, message, body_request_id = _error_fields(body)
    if status >= 500:
        error_class: type[GraphError] = GraphUnavailableError
    else:
        error_class = _BY_STATUS.get(status, GraphError)
    retry_after = parse_retry_after(lowered.get(RETRY_AFTER)) if status == 429 or status >= 500 else None
    return error_class(
        status,
        code,
        inner_code=inner_code,
        message=message,
        request_id=lowered.get(REQUEST_ID) or body_request_id or lowered.get(CLIENT_REQUEST_ID),
        retry_after=retry_after,
        method=method,
        path=path,
    )
