"""JSON batching (`POST /$batch`): requests packed into batches of at most 20 (a `dependsOn` group stays in one),
sent concurrently within the connection's limits; items Graph did not run (429/503, 504 for those that may run twice)
go again in a new batch after the longest `Retry-After` among them, with the 424s that only depended on one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar, cast

from graph.connection import (
    IDEMPOTENT_METHODS,
    PREFER_UNKNOWN_ENUMS,
    THROTTLED,
    GraphHttp,
    TokenProvider,
    is_retryable_status,
)
from graph.errors import GraphError, GraphUnavailableError, error_from_response

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
    id: str = ""
    """Unique within the call; defaults to the request's 1-based position. `depends_on` refers to these ids."""
    depends_on: tuple[str, ...] = ()
    conditional: bool = False
    """A write the caller checked against what it just read (no one else changed the grade): never sent again by
    this client, even after a 429 or 503 — a later resend could overwrite what changed meanwhile. The caller re-reads,
    re-checks and decides."""

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS

    def wire(self) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Prefer": PREFER_UNKNOWN_ENUMS}
        entry: dict[str, Any] = {"id": self.id, "method": self.method.upper(), "url": self.url, "headers": headers}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
            entry["body"] = self.body
        if self.depends_on:
            entry["dependsOn"] = list(self.depends_on)
        return entry


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The answer to one `BatchRequest`: a 2xx status and body, or `error` from the shared error map."""

    id: str
    status: int | None
    """None when the item got no answer of its own (the batch as a whole failed: see `error`)."""
    body: Mapping[str, Any] | None = None
    error: GraphError | None = None

    def json(self) -> Mapping[str, Any]:
        """The JSON body of a successful item (empty for 204); raises the item's GraphError otherwise."""
        if self.error is not None:
            raise self.error
        return self.body or {}

    def settle(self, read: Callable[[Mapping[str, Any]], T]) -> Settled[T]:
        """`read(body)` of a successful item, or the GraphError the item (or reading it) ended with."""
        try:
            return Settled(read(self.json()))
        except GraphError as exc:
            return Settled(error=exc)


@dataclass(frozen=True, slots=True)
class Settled(Generic[T]):
    """One item of a bulk call: its value, or the GraphError it ended with."""

    value: T | None = None
    error: GraphError | None = None

    def unwrap(self) -> T:
        """The value; raises the item's GraphError if it failed."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)  # T itself may include None (e.g. an action answered 204)


def _items(requests: Sequence[BatchRequest]) -> list[BatchRequest]:
    """The requests with their ids filled in, checked: unique ids, known `depends_on`, version-relative urls."""
    items = [replace(request, id=request.id or str(index + 1)) for index, request in enumerate(requests)]
    ids = {item.id for item in items}
    if len(ids) != len(items):
        raise ValueError("batch request ids must be unique")
    for item in items:
        if not item.url.startswith("/"):
            raise ValueError("batch request urls are version-relative and start with '/'")
        if not ids.issuperset(item.depends_on):
            raise ValueError(f"batch request {item.id} depends on unknown ids {sorted(set(item.depends_on) - ids)}")
    return items


def pack(items: Sequence[BatchRequest], size: int = MAX_BATCH_SIZE) -> list[list[BatchRequest]]:
    """Chunks of at most `size`, in request order, keeping every `dependsOn` group inside one chunk."""
    parent = {item.id: item.id for item in items}

    def root(item_id: str) -> str:
        while parent[item_id] != item_id:
            item_id = parent[item_id]
        return item_id

    for item in items:
        for dep in item.depends_on:
            parent[root(item.id)] = root(dep)
    groups: dict[str, list[BatchRequest]] = {}
    for item in items:
        groups.setdefault(root(item.id), []).append(item)
    chunks: list[list[BatchRequest]] = []
    for group in groups.values():
        if len(group) > size:
            raise ValueError(f"a dependsOn group of {len(group)} requests does not fit in one batch of {size}")
        if not chunks or len(chunks[-1]) + len(group) > size:
            chunks.append([])
        chunks[-1].extend(group)
    return chunks


async def run_batch(http: GraphHttp, token: TokenProvider, requests: Sequence[BatchRequest]) -> list[BatchResult]:
    """Send `requests` through `$batch` and return one result per request, in request order."""
    items = _items(requests)
    settled: dict[str, BatchResult] = {}
    for results in await asyncio.gather(*(_run_chunk(http, token, chunk) for chunk in pack(items))):
        settled.update(results)
    return [settled[item.id] for item in items]


async def _run_chunk(http: GraphHttp, token: TokenProvider, chunk: list[BatchRequest]) -> dict[str, BatchResult]:
    """One batch, then new batches for the items Graph did not run until done or out of retries."""
    final: dict[str, BatchResult] = {}
    pending, retries, waited = chunk, 0, 0.0
    while True:
        answers = await _send(http, token, pending)
        again = _to_retry(pending, answers)
        final.update(answers)
        if not again:
            return final
        hinted = [error.retry_after for key in again if (error := answers[key].error) and error.retry_after]
        retries += 1
        delay = http.retry.delay(retries, max(hinted) if hinted else None, http.random)
        if not http.retry.allows(retries, waited, delay):
            return final
        logger.info("graph $batch retry=%d items=%d in %.3fs", retries, len(again), delay)
        await http.sleep(delay)
        waited += delay
        pending = [
            replace(item, depends_on=tuple(dep for dep in item.depends_on if dep in again))
            for item in pending
            if item.id in again
        ]


def _to_retry(pending: Sequence[BatchRequest], answers: Mapping[str, BatchResult]) -> set[str]:
    """Items Graph did not run (429/503, or 504 when they may run twice; never a conditional one) and the 424s that
    depended on them. A batch that failed as a whole has no item statuses: `GraphHttp` has already retried it."""
    again = {
        item.id
        for item in pending
        if not item.conditional and is_retryable_status(answers[item.id].status, idempotent=item.idempotent)
    }
    while blocked := {
        item.id
        for item in pending
        if item.id not in again and answers[item.id].status == 424 and again.intersection(item.depends_on)
    }:
        again |= blocked
    return again


async def _send(http: GraphHttp, token: TokenProvider, items: Sequence[BatchRequest]) -> dict[str, BatchResult]:
    """One `POST /$batch` (itself retried by `GraphHttp`) → results by id; a failed batch fails every item."""
    try:
        body = await http.request(
            "POST",
            http.url("/$batch"),
            token,
            json_body={"requests": [item.wire() for item in items]},
            idempotent=all(item.idempotent for item in items),
            units=len(items),
            retry=not any(item.conditional for item in items),
        )
    except GraphError as exc:
        return {item.id: BatchResult(item.id, None, error=exc) for item in items}
    answers = (body or {}).get("responses")
    by_id = (
        {str(a["id"]): a for a in answers if isinstance(a, Mapping) and "id" in a} if isinstance(answers, list) else {}
    )
    return {item.id: _result(item, by_id.get(item.id)) for item in items}


def _result(item: BatchRequest, answer: Mapping[str, Any] | None) -> BatchResult:
    method, path = item.method.upper(), item.url.split("?", 1)[0]
    status = answer.get("status") if answer else None
    if not answer or not isinstance(status, int):
        return BatchResult(
            item.id, None, error=GraphUnavailableError(None, "missingBatchResponse", method=method, path=path)
        )
    body = answer.get("body")
    if 200 <= status < 300:
        return BatchResult(item.id, status, body if isinstance(body, Mapping) else None)
    if status == 429:
        THROTTLED.add(1, {"graph.batch_item": True})
    headers = answer.get("headers")
    headers = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}
    return BatchResult(item.id, status, error=error_from_response(status, headers, body, method=method, path=path))
