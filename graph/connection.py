"""The shared connection to Microsoft Graph: one pooled httpx client, a concurrency limit, retries and our side of
Graph's throttle budget. `GraphHttp` is built once per process and shared by every `EducationClient`."""

from __future__ import annotations

import asyncio
import logging
import random as random_module
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import pydantic_core
from opentelemetry import metrics

from graph.errors import GraphError, GraphUnavailableError, error_from_response

logger = logging.getLogger(__name__)
THROTTLED = metrics.get_meter("graph").create_counter(
    "gradebot.graph.throttled", unit="{response}", description="429s Graph answered (`graph.batch_item`: in a $batch)."
)

Sleep = Callable[[float], Awaitable[None]]

GRAPH_HEADERS: Mapping[str, str] = {"Accept": "application/json", "Prefer": "include-unknown-enum-members"}
"""Sent with every request and `$batch` item: the Prefer header unmasks `reassigned`, `excused` and `inactive`."""
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
"""PATCH counts: Gradebot only PATCHes outcomes, and writing the same grade twice leaves the same state."""

# Transport failures where the request never reached Graph, so even a POST action may be sent again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TokenProvider(Protocol):
    """The token seam: an async callable giving a bearer token; `refresh=True` after Graph refused the last one."""

    def __call__(self, refresh: bool = False) -> Awaitable[str]: ...


def beta_url_for(base_url: str) -> str:
    """The beta root beside a v1.0 root (`…/v1.0` → `…/beta`)."""
    root = base_url.rstrip("/")
    if not root.endswith("/v1.0"):
        raise ValueError(f"cannot derive the beta URL from {base_url!r}")
    return root.removesuffix("/v1.0") + "/beta"


def is_retryable_status(status: int | None, *, idempotent: bool) -> bool:
    """Whether an answer (a whole response or a `$batch` item) may be retried: 429 and 503 mean Graph did not run the
    request, so even a POST action may go again; 504 means "not done, try later" to requests that may run twice."""
    return status in (429, 503) or (idempotent and status == 504)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits for retrying one request: `max_attempts` tries in all; full-jitter backoff from `base_delay` doubling
    up to `max_delay`; `max_total_wait` seconds of waiting in all. Graph's `Retry-After` is always honoured: when it
    would pass `max_total_wait`, the error (carrying `retry_after`) goes to the caller instead."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_total_wait: float = 30.0

    def delay(self, retry_number: int, retry_after: float | None, random: Callable[[], float]) -> float:
        """Seconds before retry `retry_number` (1 for the first): `retry_after`, else uniform in [0, the ceiling]."""
        if retry_after is not None:
            return retry_after
        return min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1)) * random()

    def allows(self, attempts_made: int, waited: float, next_delay: float) -> bool:
        """Whether one more try fits: attempts left and the next wait inside the total budget."""
        return attempts_made < self.max_attempts and waited + next_delay <= self.max_total_wait


@dataclass(eq=False)
class RequestBudget:
    """Graph's throttle budget kept on our side: at most `limit` request units (each `$batch` item counts) per
    `window_s`, so a busy instance slows down instead of collecting 429s and background work leaves teachers room."""

    limit: int
    window_s: float = 10.0
    _: KW_ONLY
    monotonic: Callable[[], float] = time.monotonic
    sleep: Sleep = asyncio.sleep
    _sent: deque[tuple[float, int]] = field(default_factory=deque, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    def used(self) -> int:
        """Units spent within the current window."""
        now = self.monotonic()
        while self._sent and self._sent[0][0] <= now - self.window_s:
            self._sent.popleft()
        return sum(units for _, units in self._sent)

    async def _wait(self) -> None:
        """Until the oldest request in the window leaves it."""
        await self.sleep(max(self._sent[0][0] + self.window_s - self.monotonic(), 0.01))

    async def acquire(self, units: int = 1) -> None:
        """Take `units` (a `$batch` of n items costs n), waiting (never failing) until they fit in the window."""
        units = max(1, min(units, self.limit))
        async with self._lock:
            while self.used() + units > self.limit:
                await self._wait()
            self._sent.append((self.monotonic(), units))

    async def wait_below(self, share: float) -> None:
        """Wait until less than `share` of the budget is in use (background work yields to interactive work)."""
        while self.used() >= self.limit * share and self._sent:
            await self._wait()


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class GraphHttp:
    """One pooled `httpx.AsyncClient` plus what every Graph request shares: only URLs of `base_url`'s origin get the
    token; each request carries `GRAPH_HEADERS` and a fresh `client-request-id`; at most `max_concurrency` are in
    flight (waits between retries hold no slot); each attempt spends from `budget`. Retries (`Retry-After` honoured):

    | failure                                   | GET, PATCH (idempotent)  | POST (actions, `$batch` with a POST)   |
    |-------------------------------------------|--------------------------|----------------------------------------|
    | 429, 503                                  | retried                  | retried: Graph did not run it          |
    | 504                                       | retried                  | GraphUnavailableError: may have run    |
    | connect error / connect or pool timeout   | retried                  | retried: never sent                    |
    | read timeout, dropped connection          | retried                  | GraphUnavailableError (`status` None)  |
    | 401                                       | token asked for again, then retried once                          |
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        budget: RequestBudget | None = None,
    ) -> None:
        self.base_url, self.read_timeout = base_url.rstrip("/"), read_timeout
        self.retry = retry or RetryPolicy()
        self.sleep, self.random, self.budget = sleep, random, budget
        self.last_answer: float | None = None
        """When (`time.monotonic()`) Graph last answered with a status below 500: proof that it is reachable."""
        self._slots = asyncio.Semaphore(max_concurrency)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            transport=transport,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def url(self, path: str) -> str:
        return self.base_url + path

    async def probe(self, timeout_s: float) -> str | None:
        """One GET of the base URL without a token (Graph answers 401), spending no budget and no slot: None when
        Graph answered below 500 within `timeout_s`, else why not (`timeout`, `connectError`, `status 503`…)."""
        try:
            response = await self._client.get(self.url("/"), timeout=timeout_s, headers={"Accept": "application/json"})
        except httpx.TransportError as exc:
            return _transport_error(exc, "GET", "/", "probe").code
        if response.status_code >= 500:
            return f"status {response.status_code}"
        self.last_answer = time.monotonic()
        return None

    async def request(
        self,
        method: str,
        url: str,
        token: TokenProvider,
        *,
        json_body: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        units: int = 1,
        retry: bool = True,
    ) -> Mapping[str, Any] | None:
        """Send one request (absolute URL: ours or a nextLink) with retries: the JSON object Graph answered (None when
        empty, e.g. 204), or a GraphError. `idempotent` defaults from the method; `units` is its cost against the
        budget (one per `$batch` item); `retry=False` sends a conditional write once (its caller re-reads first)."""
        method, path = method.upper(), urlsplit(url).path
        if _origin(url) != _origin(self.base_url):
            # A nextLink pointing elsewhere must not receive the bearer token.
            raise GraphError(None, "foreignUrl", method=method, path=path)
        may_repeat = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        request_id = str(uuid.uuid4())
        headers = {**GRAPH_HEADERS, "client-request-id": request_id, "Authorization": f"Bearer {await token()}"}
        refreshed, attempt, retries, waited = False, 0, 0, 0.0
        while True:
            attempt += 1
            started = time.perf_counter()
            error: GraphError
            try:
                async with self._slots:
                    if self.budget is not None:
                        # Spent right before sending, so requests queued for a slot cannot arrive in a burst.
                        await self.budget.acquire(units)
                    response = await self._client.request(method, url, headers=headers, json=json_body)
            except httpx.TransportError as exc:
                error = _transport_error(exc, method, path, request_id)
                can_retry = may_repeat or isinstance(exc, _NEVER_SENT)
                _log_attempt(method, path, error.code, attempt, started, request_id)
            else:
                status = response.status_code
                _log_attempt(method, path, str(status), attempt, started, request_id)
                if status < 500:
                    self.last_answer = time.monotonic()
                if status == 429:
                    THROTTLED.add(1, {"graph.batch_item": False})
                if 200 <= status < 300:
                    return _json_object(response, method, path)
                if status == 401 and not refreshed:
                    refreshed = True
                    headers["Authorization"] = f"Bearer {await token(refresh=True)}"
                    continue
                error = error_from_response(status, response.headers, response.content, method=method, path=path)
                can_retry = is_retryable_status(status, idempotent=may_repeat)
            retries += 1
            delay = self.retry.delay(retries, error.retry_after, self.random)
            if not (retry and can_retry and self.retry.allows(retries, waited, delay)):
                raise error
            logger.info("graph %s %s retry=%d in %.3fs id=%s", method, path, retries, delay, request_id)
            await self.sleep(delay)
            waited += delay


def _transport_error(exc: httpx.TransportError, method: str, path: str, request_id: str) -> GraphUnavailableError:
    """No HTTP answer: a timeout, a refused or a dropped connection."""
    code = "timeout" if isinstance(exc, httpx.TimeoutException) else "connectionLost"
    if isinstance(exc, httpx.ConnectError):
        code = "connectError"
    return GraphUnavailableError(
        None, code, message=type(exc).__name__, request_id=request_id, method=method, path=path
    )


def _log_attempt(method: str, path: str, outcome: str, attempt: int, started: float, request_id: str) -> None:
    """One line per HTTP attempt: ids and timing only (no tokens, bodies, names or grades)."""
    elapsed = time.perf_counter() - started
    logger.debug(
        "graph %s %s -> %s attempt=%d elapsed=%.3fs id=%s", method, path, outcome, attempt, elapsed, request_id
    )


def _json_object(response: httpx.Response, method: str, path: str) -> Mapping[str, Any] | None:
    """The JSON object body of a 2xx answer; None when there is none (204, empty)."""
    if response.status_code == 204 or not response.content.strip():
        return None
    try:
        body = pydantic_core.from_json(response.content)  # Rust's JSON parser: ~1.5× json.loads on big pages
    except ValueError:
        body = None
    if not isinstance(body, Mapping):
        raise GraphError(response.status_code, "invalidResponse", method=method, path=path)
    return body
