"""JSON batching (`POST /$batch`): requests packed into batches of at most 20, sent concurrently within the
connection's limits; items Graph did not run (429/503, 504 for those that may run twice) go again in a new batch after
the longest `Retry-After` among them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from graph.connection import GRAPH_HEADERS, IDEMPOTENT_METHODS, THROTTLED, GraphHttp, TokenProvider, is_retryable_status
from graph.errors import GraphError, GraphUnavailableError, error_from_response

logger = logging.getLogger(__name__)

MAX_BATCH_SIZE = 20
"""Graph's documented limit of requests in one `$batch`."""

T = TypeVar("T")
U = TypeVar("U")


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """One request inside a `$batch` (`url` version-relative, query included). A `conditional` write, checked against
    what the caller just read, is never sent again here, even after a 429 or 503: a resend could overwrite a change."""

    method: str
    url: str
    body: Mapping[str, Any] | None = None
    conditional: bool = False

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in IDEMPOTENT_METHODS

    def wire(self, item_id: str) -> dict[str, Any]:
        headers = dict(GRAPH_HEADERS)
        entry: dict[str, Any] = {"id": item_id, "method": self.method.upper(), "url": self.url, "headers": headers}
        if self.body is not None:
            headers["Content-Type"] = "application/json"
            entry["body"] = self.body
        return entry


@dataclass(frozen=True, slots=True)
class Settled(Generic[T]):
    """One item of a bulk call (or one `BatchRequest`): its value, or the GraphError it ended with."""

    value: T | None = None
    error: GraphError | None = None

    def unwrap(self) -> T:
        """The value; raises the item's GraphError if it failed."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)  # T itself may include None (e.g. an action answered 204)

    def then(self, read: Callable[[T], U]) -> Settled[U]:
        """`read(value)` of a successful item, or the GraphError the item (or reading it) ended with."""
        try:
            return Settled(read(self.unwrap()))
        except GraphError as exc:
            return Settled(error=exc)


Answer = Settled[Mapping[str, Any]]
"""The answer to one `BatchRequest`: its JSON body (empty for 204), or its error from the shared error map (`status`
None when the item got no answer of its own)."""


async def run_batch(http: GraphHttp, token: TokenProvider, requests: Sequence[BatchRequest]) -> list[Answer]:
    """Send `requests` through `$batch` and return one answer per request, in request order."""
    items = [(str(n), request) for n, request in enumerate(requests, 1)]
    chunks = [dict(items[start : start + MAX_BATCH_SIZE]) for start in range(0, len(items), MAX_BATCH_SIZE)]
    answered = await asyncio.gather(*(_run_chunk(http, token, chunk) for chunk in chunks))
    return [answer for answers in answered for answer in answers]


async def _run_chunk(http: GraphHttp, token: TokenProvider, chunk: dict[str, BatchRequest]) -> list[Answer]:
    """One batch, then new batches for the items Graph did not run (never a conditional one) until done or out of
    retries; the answers in `chunk`'s order."""
    final: dict[str, Answer] = {}
    pending, retries, waited = chunk, 0, 0.0
    while True:
        try:
            answers = await _send(http, token, pending)
        except GraphError as exc:  # the batch as a whole: no item statuses, and `GraphHttp` has already retried it
            final.update(dict.fromkeys(pending, Settled(error=exc)))
            break
        final.update(answers)
        pending = {
            item_id: item
            for item_id, item in pending.items()
            if (error := answers[item_id].error)
            and not item.conditional
            and is_retryable_status(error.status, idempotent=item.idempotent)
        }
        if not pending:
            break
        hinted = [error.retry_after for key in pending if (error := answers[key].error) and error.retry_after]
        retries += 1
        delay = http.retry.delay(retries, max(hinted, default=None), http.random)
        if not http.retry.allows(retries, waited, delay):
            break
        logger.info("graph $batch retry=%d items=%d in %.3fs", retries, len(pending), delay)
        await http.sleep(delay)
        waited += delay
    return [final[item_id] for item_id in chunk]


async def _send(http: GraphHttp, token: TokenProvider, items: Mapping[str, BatchRequest]) -> dict[str, Answer]:
    """One `POST /$batch` (itself retried by `GraphHttp`) → answers by id; the GraphError of a failed batch."""
    body = await http.request(
        "POST",
        http.url("/$batch"),
        token,
        json_body={"requests": [item.wire(item_id) for item_id, item in items.items()]},
        idempotent=all(item.idempotent for item in items.values()),
        units=len(items),
        retry=not any(item.conditional for item in items.values()),
    )
    answers = (body or {}).get("responses")
    answers = answers if isinstance(answers, list) else []
    by_id = {str(answer["id"]): answer for answer in answers if isinstance(answer, Mapping) and "id" in answer}
    return {item_id: _answer(item, by_id.get(item_id)) for item_id, item in items.items()}


def _answer(item: BatchRequest, answer: Mapping[str, Any] | None) -> Answer:
    method, path = item.method.upper(), item.url.split("?", 1)[0]
    status = answer.get("status") if answer else None
    if not answer or not isinstance(status, int):
        return Settled(error=GraphUnavailableError(None, "missingBatchResponse", method=method, path=path))
    body = answer.get("body")
    if 200 <= status < 300:
        return Settled(body if isinstance(body, Mapping) else {})
    if status == 429:
        THROTTLED.add(1, {"graph.batch_item": True})
    headers = answer.get("headers")
    headers = {str(k): str(v) for k, v in headers.items()} if isinstance(headers, Mapping) else {}
    return Settled(error=error_from_response(status, headers, body, method=method, path=path))
