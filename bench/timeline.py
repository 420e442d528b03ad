"""An httpx transport that notes when each Graph exchange left and when its answer had arrived, so a run's round
trips one after another (its critical path) can be counted rather than timed."""

from __future__ import annotations

import time

import httpx


class Timeline(httpx.AsyncHTTPTransport):
    """The network, noting each exchange's (sent, answered) times."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        began = time.perf_counter()
        response = await super().handle_async_request(request)
        await response.aread()
        self.spans.append((began, time.perf_counter()))
        return response

    def critical_path(self) -> int:
        """Round trips one after another: the longest chain of exchanges each sent after the previous one answered."""
        depth: list[tuple[float, int]] = []
        for began, ended in sorted(self.spans):
            depth.append((ended, 1 + max((d for end, d in depth if end <= began), default=0)))
        return max((d for _, d in depth), default=0)
