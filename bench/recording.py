"""Client-side record of Graph exchanges (when each was sent, how many Graph requests it carried, how many got 429),
kept by an httpx transport so the peak demand in any throttle window can be computed after a run."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

GRAPH_PREFIXES = ("/v1.0/", "/beta/")


@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP exchange with Graph."""

    sent_at: float
    """`time.monotonic()` when the request left."""
    graph_requests: int
    """1, or the number of items in a `$batch` (each counts against Graph's budget)."""
    throttled: int
    """How many of those were answered 429."""
    assignment_service: int = 0
    """Of `graph_requests`, those for Graph's assignment service (assignments, submissions, outcomes): its budget is
    350 / 10 s per app per tenant. Rostering reads (classes, members, users) have a far larger one of their own."""
    assignment_service_throttled: int = 0


class RecordingTransport(httpx.AsyncBaseTransport):
    """A pooled network transport that notes every Graph exchange; bodies are read only to count `$batch` items."""

    def __init__(self, max_connections: int = 8) -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        self._inner = httpx.AsyncHTTPTransport(limits=limits)
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.monotonic()
        response = await self._inner.handle_async_request(request)
        path = request.url.path
        if not path.startswith(GRAPH_PREFIXES):
            return response
        if not path.endswith("/$batch"):
            throttled = int(response.status_code == 429)
            assignments = int(is_assignment_service(path))
            self.exchanges.append(Exchange(sent_at, 1, throttled, assignments, throttled * assignments))
            return response
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.exchanges.append(_batch_exchange(sent_at, request.content, raw))
        return httpx.Response(
            response.status_code, headers=response.headers, content=raw, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def is_assignment_service(path: str) -> bool:
    """Whether a Graph path is served by the assignment service (everything under an assignment)."""
    return "/assignments" in path.lower()


def _entries(body: bytes, key: str) -> list[dict[str, Any]]:
    try:
        entries = json.loads(body).get(key)
    except (ValueError, AttributeError):
        return []
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def _batch_exchange(sent_at: float, request_body: bytes, response_body: bytes) -> Exchange:
    """Items and their 429s, told apart by assignment service or not (matched by item id)."""
    urls = {str(item.get("id")): str(item.get("url", "")) for item in _entries(request_body, "requests")}
    throttled = {str(entry.get("id")) for entry in _entries(response_body, "responses") if entry.get("status") == 429}
    assignments = {item_id for item_id, url in urls.items() if is_assignment_service(url)}
    return Exchange(sent_at, len(urls), len(throttled), len(assignments), len(throttled & assignments))


def peak_in_window(exchanges: Sequence[Exchange], window_s: float) -> int:
    """The most Graph requests sent (429s included) within any `window_s` seconds."""
    ordered = sorted(exchanges, key=lambda exchange: exchange.sent_at)
    peak = inside = start = 0
    for exchange in ordered:
        inside += exchange.graph_requests
        while exchange.sent_at - ordered[start].sent_at >= window_s:
            inside -= ordered[start].graph_requests
            start += 1
        peak = max(peak, inside)
    return peak
