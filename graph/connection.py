"""The shared connection to Microsoft Graph: one pooled httpx client, the base URLs, a concurrency limit and retries.

`GraphHttp` is built once per process and shared by every `EducationClient` (one per signed-in identity).
"""

from __future__ import annotations

import asyncio
import logging
import random as random_module
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import pydantic_core
from opentelemetry import metrics

from graph.budget import RequestBudget
from graph.errors import GraphError, GraphUnavailableError, error_from_response
from graph.retry import RetryPolicy, is_retryable_status

logger = logging.getLogger(__name__)
THROTTLED = metrics.get_meter("graph").create_counter(
    "gradebot.graph.throttled", unit="{response}", description="429s Graph answered (`graph.batch_item`: in a $batch)."
)


class TokenProvider(Protocol):
    """The token seam: an async callable giving a bearer token; `refresh=True` after Graph refused the last one."""

    def __call__(self, refresh: bool = False) -> Awaitable[str]: ...


"""Returns a Graph bearer token for one identity. Called again after a 401, so it may refresh then."""

Sleep = Callable[[float], Awaitable[None]]

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
PREFER_UNKNOWN_ENUMS = "include-unknown-enum-members"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})
"""PATCH counts: Gradebot only PATCHes outcomes, and writing the same grade twice leaves the same state."""

# Transport failures where the request never reached Graph, so even a POST action may be sent again.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def beta_url_for(base_url: str) -> str:
    """The beta root beside a v1.0 root (`…/v1.0` → `…/beta`)."""
    root = base_url.rstrip("/")
    if not root.endswith("/v1.0"):
        raise ValueError(f"cannot derive the beta URL from {base_url!r}; pass beta_base_url")
    return root.removesuffix("/v1.0") + "/beta"


@dataclass(frozen=True, slots=True)
class GraphResponse:
    """A successful (2xx) Graph answer: status, headers and the JSON object body (None when empty, e.g. 204)."""

    status: int
    headers: Mapping[str, str]
    body: Mapping[str, Any] | None


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class GraphHttp:
    """One pooled `httpx.AsyncClient` plus everything every Graph request shares.

    Every request carries `Accept: application/json`, `Prefer: include-unknown-enum-members` (so `reassigned`,
    `excused` and `inactive` are not masked) and a fresh `client-request-id`. At most `max_concurrency` requests are
    in flight; waits between retries hold no slot.

    Retries (limits from `retry`; `Retry-After` honoured whenever Graph sends it):

    | failure                                   | GET, PATCH (idempotent)  | POST (actions, `$batch` with a POST)   |
    |-------------------------------------------|--------------------------|----------------------------------------|
    | 429, 503                                  | retried                  | retried: Graph did not run it          |
    | 504                                       | retried                  | GraphUnavailableError: may have run    |
    | connect error / connect or pool timeout   | retried                  | retried: never sent                    |
    | read timeout, dropped connection          | retried                  | GraphUnavailableError (`status` None)  |
    | 401                                       | token asked for again, then retried once                          |

    A POST that ends in GraphUnavailableError may or may not have happened: the caller re-reads the submission
    before deciding to act again.
    """

    def __init__(
        self,
        base_url: str = GRAPH_V1,
        *,
        beta_base_url: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 15.0,
        max_concurrency: int = 8,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = random_module.random,
        budget: RequestBudget | None = None,
    ) -> None:
        """Args:
        base_url: the v1.0 root, e.g. `https://graph.microsoft.com/v1.0` or the sandbox's `http://127.0.0.1:P/v1.0`.
        beta_base_url: the beta root; derived from `base_url` when omitted.
        connect_timeout, read_timeout: seconds; a request that hangs longer becomes GraphUnavailableError.
        transport: an httpx transport to use instead of the network one (tests, in-process sandbox).
        sleep, random: seams for the waits between retries and their jitter.
        """
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self.beta_base_url = (beta_base_url or beta_url_for(self.base_url)).rstrip("/")
        self.retry = retry or RetryPolicy()
        self._origins = {_origin(self.base_url), _origin(self.beta_base_url)}
        self._slots = asyncio.Semaphore(max_concurrency)
        self._sleep = sleep
        self._random = random
        self.budget = budget
        """Our side of Graph's throttle budget; every attempt spends from it (None = unlimited)."""
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        limits = httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency)
        self._client = httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport, trust_env=False)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self) -> GraphHttp:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def url(self, path: str) -> str:
        """The absolute URL of a version-relative path (`/education/…`) under `base_url`."""
        if not path.startswith("/"):
            raise ValueError("Graph paths start with '/'")
        return self.base_url + path

    async def wait(self, seconds: float) -> None:
        """Sleep through the seam (also used between `$batch` retry rounds)."""
        await self._sleep(seconds)

    def jitter(self) -> float:
        return self._random()

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
    ) -> GraphResponse:
        """Send one request (absolute URL: ours or a nextLink) with retries; raise a GraphError when it fails.

        `idempotent` defaults from the method (POST is not); see the class docstring for what is retried.
        `units` is what the request costs against the throttle budget (a `$batch` costs one per item).
        `retry=False` sends it once: a conditional write whose caller re-reads and re-checks before trying again.
        """
        method = method.upper()
        if _origin(url) not in self._origins:
            # A nextLink pointing elsewhere must not receive the bearer token.
            raise GraphError(None, "foreignUrl", method=method, path=urlsplit(url).path)
        may_repeat = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        path = urlsplit(url).path
        request_id = str(uuid.uuid4())
        bearer = await token()
        token_refreshed = False
        attempt = 0
        retries = 0
        waited = 0.0
        while True:
            attempt += 1
            headers = {
                "Authorization": f"Bearer {bearer}",
                "Accept": "application/json",
                "Prefer": PREFER_UNKNOWN_ENUMS,
                "client-request-id": request_id,
            }
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
                if status == 429:
                    THROTTLED.add(1, {"graph.batch_item": False})
                if 200 <= status < 300:
                    return GraphResponse(status, response.headers, _json_object(response, method, path))
                if status == 401 and not token_refreshed:
                    token_refreshed = True
                    bearer = await token(refresh=True)
                    continue
                error = error_from_response(status, response.headers, response.content, method=method, path=path)
                can_retry = is_retryable_status(status, idempotent=may_repeat)
            if not can_retry or not retry:
                raise error
            retries += 1
            delay = self.retry.delay(retries, error.retry_after, self._random)
            if not self.retry.allows(retries, waited, delay):
                raise error
            logger.info("graph %s %s retry=%d in %.3fs id=%s", method, path, retries, delay, request_id)
            await self._sleep(delay)
            waited += delay


def _log_attempt(method: str, path: str, outcome: str, attempt: int, started: float, request_id: str) -> None:
    """One line per HTTP attempt: ids and timing only (no tokens, bodies, names or grades)."""
    elapsed = time.perf_counter() - started
    logger.debug(
        "graph %s %s -> %s attempt=%d elapsed=%.3fs id=%s", method, path, outcome, attempt, elapsed, request_id
    )


def _transport_error(exc: httpx.TransportError, method: str, path: str, request_id: str) -> GraphUnavailableError:
    """No HTTP answer: a timeout, a refused or dropped connection."""
    if isinstance(exc, httpx.TimeoutException):
        code = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        code = "connectError"
    else:
        code = "connectionLost"
    return GraphUnavailableError(
        None, code, message=type(exc).__name__, request_id=request_id, method=method, path=path
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
