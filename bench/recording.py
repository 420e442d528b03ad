"""Client-side record of Graph exchanges (when each was sent, how many Graph requests it carried, how many got 429),
kept by an httpx transport so the peak demand in any throttle window can be computed after a run."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

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
            self.exchanges.append(Exchange(sent_at, 1, int(response.status_code == 429)))
            return response
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
        await response.aclose()
        self.exchanges.append(Exchange(sent_at, _batch_items(request.content), _batch_throttled(raw)))
        return httpx.Response(
            response.status_code, headers=response.headers, content=raw, extensions=response.extensions
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def _batch_items(body: bytes) -> int:
    try:
        requests = json.loads(body).get("requests")
    except (ValueError, AttributeError):
        return 0
    return len(requests) if isinstance(requests, list) else 0


def _batch_throttled(body: bytes) -> int:
    try:
        responses = json.loads(body).get("responses")
    except (ValueError, AttributeError):
        return 0
    if not isinstance(responses, list):
        return 0
    return sum(1 for entry in responses if isinstance(entry, dict) and entry.get("status") == 429)


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
