"""One Graph exchange as plain values (GraphRequest → GraphResponse) and Graph's error body, independent of aiohttp,
so a request arriving over HTTP and one inside a `$batch` run through the same code.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

JSON_CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
INCLUDE_UNKNOWN_ENUM_MEMBERS = "include-unknown-enum-members"
GRAPH_VERSIONS = ("v1.0", "beta")


class GraphApiError(Exception):
    """An answer in Graph's error shape: `{"error": {"code", "message", "innerError": {...}}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        inner_code: str | None = None,
        inner_message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.inner_message = inner_message
        self.headers = dict(headers or {})


def bad_request(message: str, code: str = "BadRequest") -> GraphApiError:
    return GraphApiError(400, code, message)


def forbidden(message: str) -> GraphApiError:
    return GraphApiError(403, "accessDenied", message)


@dataclass(slots=True)
class GraphRequest:
    """A request to one Graph resource, with the version already split off the path."""

    method: str
    version: str
    path: str
    """Decoded path after the version, without a leading slash: `education/classes/{id}`."""
    raw_path: str
    """The path after the version as the client wrote it (still percent-encoded); nextLinks reuse it."""
    query: tuple[tuple[str, str], ...]
    headers: CIMultiDictProxy[str]
    body: bytes
    base_url: str
    """scheme://host of the sandbox as the client reached it; absolute links the client follows start here."""
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def client_request_id(self) -> str:
        return self.headers.get("client-request-id", self.request_id)

    @property
    def include_unknown_enum_members(self) -> bool:
        """Whether `Prefer: include-unknown-enum-members` was sent (Prefer may list several preferences)."""
        for header in self.headers.getall("Prefer", []):
            for preference in header.split(","):
                if preference.strip().lower() == INCLUDE_UNKNOWN_ENUM_MEMBERS:
                    return True
        return False

    def json_body(self) -> Any:
        """The body as JSON; a body that is not JSON is Graph's 400."""
        if not self.body.strip():
            raise bad_request("Empty Payload. JSON content expected.")
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise bad_request(
                "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of"
                " valid JSON format."
            ) from exc


def make_headers(pairs: Mapping[str, str] | None = None) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs or {}))


@dataclass(slots=True)
class GraphResponse:
    status: int
    body: Any = None
    """JSON-able body; None means no content."""
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        return b"" if self.body is None else encode_json(self.body)

    def content_headers(self) -> dict[str, str]:
        """The headers to send, with Content-Type and OData-Version when there is a body."""
        headers = dict(self.headers)
        if self.body is not None:
            headers.setdefault("Content-Type", JSON_CONTENT_TYPE)
            headers.setdefault("OData-Version", "4.0")
        return headers


def encode_json(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def error_response(error: GraphApiError, request: GraphRequest | None, now: datetime | None = None) -> GraphResponse:
    """Graph's error body; innerError carries the date and request ids like every Graph error."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    inner: dict[str, Any] = {}
    if error.inner_code is not None:
        inner["code"] = error.inner_code
    if error.inner_message is not None:
        inner["message"] = error.inner_message
    inner["date"] = moment.strftime("%Y-%m-%dT%H:%M:%S")
    request_id = request.request_id if request is not None else str(uuid.uuid4())
    inner["request-id"] = request_id
    inner["client-request-id"] = request.client_request_id if request is not None else request_id
    if error.status == 429:
        inner.setdefault("status", "429")
    body = {"error": {"code": error.code, "message": error.message, "innerError": inner}}
    headers = dict(error.headers)
    headers.setdefault("request-id", request_id)
    return GraphResponse(error.status, body, headers)
