"""JSON batching (`POST /$batch`): many Graph requests in few round trips, with throttled items retried.

Requests are packed into batches of at most 20 (a `dependsOn` group stays in one batch), sent concurrently within
the connection's limit; items answered 429/503 go again in a new batch after the longest `Retry-After` among them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from graph.connection import IDEMPOTENT_METHODS, PREFER_UNKNOWN_ENUMS, THROTTLED, GraphHttp, TokenProvider
from graph.errors import GraphError, GraphUnavailableError, error_from_response
from graph.retry import is_retryable_status

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 20
"""Graph's documented limit of requests in one `$batch`."""

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside a `$batch`. `url` is version-relative (`/education/…`, query included)."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    id: str | None = None
    """Unique within the call; defaults to the request's 1-based position. `depends_on` refers to these ids."""
    depends_on: tuple[str, ...] = ()
    resend: bool | None = None
    """Whether it may be sent again when Graph may have run it (504, lost answer): None decides by method (GET,
    PATCH… may); False when the caller re-reads and decides itself, so nothing is written twice."""
    conditional: bool = False
    """A write the caller checked against what it just read (no one else changed the grade): never sent again by
    this client, even after a 429 or 503 — a later resend could overwrite what changed meanwhile. The caller re-reads,
    re-checks and decides."""

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS if self.resend is None else self.resend


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer to one `BatchRequest`: a 2xx status and body, or `error` from the shared error map."""

    id: str
    status: int | None
    """None when the batch itself got no HTTP answer."""
    body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error: GraphError | None = None

    def json(self) -> Mapping[str, Any]:
        """The JSON body of a successful item (empty for 204); raises the item's GraphError otherwise."""
        if self.error is not None:
            raise self.error
        return self.body or {}


@dataclass(frozen=True, slots=True)
class Settled(Generic[T]):
    """One item of a bulk call: its value, or the GraphError it ended with."""

    value: T | None = None
    error: GraphError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        """The value; raises the item's GraphError if it failed."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)  # T itself may include None (e.g. an action answered 204)


@dataclass(frozen=True, slots=True)
class _Item:
    id: str
    request: BatchRequest
    depends_on: tuple[str, ...]

    def wire(self) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Prefer": PREFER_UNKNOWN_ENUMS}
        entry: dict[str, Any] = {"id": self.id, "method": self.request.method.upper(), "url": self.request.url}
        if self.request.body is not None:
            headers["Content-Type"] = "application/json"
            entry["body"] = self.request.body
        entry["headers"] = headers
        if self.depends_on:
            entry["dependsOn"] = list(self.depends_on)
        return entry


def _items(requests: Sequence[BatchRequest]) -> list[_Item]:
    items = [_Item(request.id or str(index + 1), request, request.depends_on) for index, request in enumerate(requests)]
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("batch request ids must be unique")
    known = set(ids)
    for item in items:
        if not item.request.url.startswith("/"):
            raise ValueError("batch request urls are version-relative and start with '/'")
        missing = [dep for dep in item.depends_on if dep not in known]
        if missing:
            raise ValueError(f"batch request {item.id} depends on unknown ids {missing}")
    return items


def pack(items: Sequence[_Item], size: int = MAX_BATCH_SIZE) -> list[list[_Item]]:
    """Chunks of at most `size`, in request order, keeping every `dependsOn` group inside one chunk."""
    parent = {item.id: item.id for item in items}

    def root(item_id: str) -> str:
        while parent[item_id] != item_id:
            parent[item_id] = parent[parent[item_id]]
            item_id = parent[item_id]
        return item_id

    for item in items:
        for dep in item.depends_on:
            parent[root(item.id)] = root(dep)
    groups: dict[str, list[_Item]] = {}
    for item in items:
        groups.setdefault(root(item.id), []).append(item)
    chunks: list[list[_Item]] = []
    current: list[_Item] = []
    for group in groups.values():
        if len(group) > size:
            raise ValueError(f"a dependsOn group of {len(group)} requests does not fit in one batch of {size}")
        if len(current) + len(group) > size:
            chunks.append(current)
            current = []
        current.extend(group)
    if current:
        chunks.append(current)
    return chunks


async def run_batch(http: GraphHttp, token: TokenProvider, requests: Sequence[BatchRequest]) -> list[BatchResult]:
    """Send `requests` through `$batch` and return one result per request, in request order."""
    items = _items(requests)
    if not items:
        return []
    settled: dict[str, BatchResult] = {}
    for chunk_results in await asyncio.gather(*(_run_chunk(http, token, chunk) for chunk in pack(items))):
        settled.update(chunk_results)
    return [settled[item.id] for item in items]


async def _run_chunk(http: GraphHttp, token: TokenProvider, chunk: list[_Item]) -> dict[str, BatchResult]:
    """One batch, then new batches for its throttled items (and their dependents) until done or out of budget."""
    final: dict[str, BatchResult] = {}
    pending = chunk
    retries = 0
    waited = 0.0
    while True:
        answers, batch_failed = await _send(http, token, pending)
        again = set() if batch_failed else _to_retry(pending, answers)
        final.update((item_id, result) for item_id, result in answers.items() if item_id not in again)
        if not again:
            return final
        hinted = [error.retry_after for item_id in again if (error := answers[item_id].error) and error.retry_after]
        retries += 1
        delay = http.retry.delay(retries, max(hinted) if hinted else None, http.jitter)
        if not http.retry.allows(retries, waited, delay):
            final.update((item_id, answers[item_id]) for item_id in again)
            return final
        logger.info("graph $batch retry=%d items=%d in %.3fs", retries, len(again), delay)
        await http.wait(delay)
        waited += delay
        pending = [
            _Item(item.id, item.request, tuple(dep for dep in item.depends_on if dep in again))
            for item in pending
            if item.id in again
        ]


def _to_retry(pending: Sequence[_Item], answers: Mapping[str, BatchResult]) -> set[str]:
    """Items Graph did not run (429/503, or 504 when idempotent) and the 424s that depended on them."""
    again: set[str] = set()
    for item in pending:
        status = answers[item.id].status
        if item.request.conditional:
            continue
        if status is not None and status >= 400 and is_retryable_status(status, idempotent=item.request.idempotent):
            again.add(item.id)
    grew = bool(again)
    while grew:
        blocked = {
            item.id
            for item in pending
            if item.id not in again and answers[item.id].status == 424 and again.intersection(item.depends_on)
        }
        again |= blocked
        grew = bool(blocked)
    return again


async def _send(http: GraphHttp, token: TokenProvider, items: Sequence[_Item]) -> tuple[dict[str, BatchResult], bool]:
    """One `POST /$batch` (itself retried by `GraphHttp`) → (results by id, whether the batch as a whole failed).

    When the batch as a whole fails, its error becomes every item's error.
    """
    idempotent = all(item.request.idempotent for item in items)
    retry = not any(item.request.conditional for item in items)
    wire = {"requests": [item.wire() for item in items]}
    try:
        response = await http.request(
            "POST", http.url("/$batch"), token, json_body=wire, idempotent=idempotent, units=len(items), retry=retry
        )
    except GraphError as exc:
        return {item.id: BatchResult(item.id, exc.status, error=exc) for item in items}, True
    responses = (response.body or {}).get("responses")
    by_id: dict[str, Mapping[str, Any]] = {}
    if isinstance(responses, list):
        for entry in responses:
            if isinstance(entry, Mapping) and entry.get("id") is not None:
                by_id[str(entry["id"])] = entry
    return {item.id: _result(item, by_id.get(item.id)) for item in items}, False


def _result(item: _Item, entry: Mapping[str, Any] | None) -> BatchResult:
    method, path = item.request.method.upper(), item.request.url.split("?", 1)[0]
    if entry is None or not isinstance(entry.get("status"), int):
        missing = GraphUnavailableError(None, "missingBatchResponse", method=method, path=path)
        return BatchResult(item.id, None, error=missing)
    status: int = entry["status"]
    raw_headers = entry.get("headers")
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()} if isinstance(raw_headers, Mapping) else {}
    body = entry.get("body")
    if 200 <= status < 300:
        return BatchResult(item.id, status, body if isinstance(body, Mapping) else None, headers)
    if status == 429:
        THROTTLED.add(1, {"graph.batch_item": True})
    return BatchResult(
        item.id, status, None, headers, error_from_response(status, headers, body, method=method, path=path)
    )
