"""Realism and failure for the Graph emulator: latency with jitter, Graph's assignment-service throttling budget,
injected 429s and 5xx, slow answers, hung requests, dropped connections (by seeded rate or by script), action
settle delay, and the request counters benchmarks read. `FaultPlan` is the configuration (CLI flags, admin JSON);
`Faults` applies it at runtime.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import re
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

FaultKind = Literal["status", "drop", "delay", "timeout", "lost"]
FAULT_KINDS: tuple[FaultKind, ...] = ("status", "drop", "delay", "timeout", "lost")
"""`drop` closes the connection before serving; `lost` serves the request (a write is applied) and then closes the
connection before the answer, so the client cannot tell whether it happened."""

# Graph's documented budget for the assignment service, per app per tenant.
ASSIGNMENT_SERVICE_LIMIT = 350
ASSIGNMENT_SERVICE_WINDOW_S = 10.0
ASSIGNMENT_SERVICE_HOURLY_LIMIT = 10_000


class FaultConfigError(ValueError):
    """A fault plan or scripted fault that makes no sense (negative rates, unknown kinds, bad regex)."""


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """How the emulator misbehaves; the defaults are a healthy Graph with its real throttling budget."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    """Extra uniform random latency in [0, jitter_ms) per request."""
    throttle_limit: int = ASSIGNMENT_SERVICE_LIMIT
    """Requests per `throttle_window_s` per (app, tenant); 0 turns throttling off."""
    throttle_window_s: float = ASSIGNMENT_SERVICE_WINDOW_S
    throttle_hourly_limit: int = ASSIGNMENT_SERVICE_HOURLY_LIMIT
    """Requests per hour per (app, tenant); 0 turns the hourly budget off."""
    error_rate: float = 0.0
    """Share of requests (and $batch items) answered with one of `error_statuses`."""
    error_statuses: tuple[int, ...] = (500, 503, 504)
    timeout_rate: float = 0.0
    """Share of HTTP requests that hang for `timeout_s` and then answer 504."""
    timeout_s: float = 30.0
    drop_rate: float = 0.0
    """Share of HTTP requests whose connection is closed without any response (before they are served)."""
    lost_rate: float = 0.0
    """Share of HTTP requests that are served (writes applied) but whose answer is lost: the connection closes."""
    throttle_rate: float = 0.0
    """Share of requests and $batch items (not envelopes) answered 429 with `Retry-After`, whatever the budget says
    (Graph also throttles for load that is not this app's)."""
    throttle_retry_after_s: float = 1.0
    slow_rate: float = 0.0
    """Share of HTTP requests served only after `slow_ms` more (a slow answer, not a hang)."""
    slow_ms: float = 3000.0
    seed: int = 0
    """Seed of the random source behind jitter and the rates: the same plan and requests give the same faults."""
    action_settle_ms: float = 0.0
    """How long after publish/submit/return/... reads still show the previous status (Graph runs them async)."""

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate", "drop_rate", "throttle_rate", "slow_rate", "lost_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise FaultConfigError(f"{name} must be between 0 and 1.")
        for name in (
            "latency_ms",
            "jitter_ms",
            "throttle_window_s",
            "timeout_s",
            "action_settle_ms",
            "throttle_retry_after_s",
            "slow_ms",
        ):
            if getattr(self, name) < 0 or not math.isfinite(getattr(self, name)):
                raise FaultConfigError(f"{name} must be a non-negative number.")
        if self.throttle_limit < 0 or self.throttle_hourly_limit < 0:
            raise FaultConfigError("Throttle limits must be non-negative.")
        if self.throttle_limit and self.throttle_window_s <= 0:
            raise FaultConfigError("throttle_window_s must be positive when throttling is on.")
        if not self.error_statuses or any(not 500 <= s <= 599 for s in self.error_statuses):
            raise FaultConfigError("error_statuses must be 5xx codes.")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["error_statuses"] = list(self.error_statuses)
        return {_camel(name): value for name, value in data.items()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FaultPlan:
        """A plan from its JSON form; fields not given keep their defaults."""
        known = {_camel(f.name): f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                raise FaultConfigError(f"Unknown fault plan field '{key}'.")
            name = known[key]
            if name == "error_statuses":
                if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
                    raise FaultConfigError("errorStatuses must be a list of status codes.")
                values[name] = tuple(value)
            elif name in ("throttle_limit", "throttle_hourly_limit", "seed"):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise FaultConfigError(f"{key} must be an integer.")
                values[name] = value
            else:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise FaultConfigError(f"{key} must be a number.")
                values[name] = float(value)
        return cls(**values)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True, slots=True)
class ScriptedFault:
    """'The next `count` requests matching method and path regex answer `status` / are dropped / delayed / hang'."""

    kind: FaultKind = "status"
    status: int = 503
    retry_after_s: float | None = None
    delay_ms: float = 0.0
    count: int = 1
    method: str | None = None
    path_regex: str | None = None
    """Searched in the request path including the version, e.g. `/v1.0/education/classes/…/outcomes`."""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise FaultConfigError(f"Unknown fault kind '{self.kind}'.")
        if self.kind == "status" and not 400 <= self.status <= 599:
            raise FaultConfigError("A scripted status must be a 4xx or 5xx code.")
        if self.count < 1:
            raise FaultConfigError("count must be at least 1.")
        if self.delay_ms < 0 or (self.retry_after_s is not None and self.retry_after_s < 0):
            raise FaultConfigError("Delays must be non-negative.")
        if self.path_regex is not None:
            try:
                re.compile(self.path_regex)
            except re.error as exc:
                raise FaultConfigError(f"pathRegex does not compile: {exc}") from exc

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_regex is None or re.search(self.path_regex, path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "fault": self.kind,
            "status": self.status,
            "retryAfter": self.retry_after_s,
            "delayMs": self.delay_ms,
            "count": self.count,
            "method": self.method,
            "pathRegex": self.path_regex,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ScriptedFault:
        """`{"fault": "status"|"drop"|"delay"|"timeout"|"lost", "status", "retryAfter", "delayMs", "count",
        "method", "pathRegex"}`; `fault` defaults to "status"."""
        allowed = {"fault", "status", "retryAfter", "delayMs", "count", "method", "pathRegex"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultConfigError(f"Unknown scripted fault fields: {', '.join(sorted(unknown))}.")
        kind = data.get("fault", "status")
        status = data.get("status", 503)
        retry_after = data.get("retryAfter")
        delay_ms = data.get("delayMs", 0)
        count = data.get("count", 1)
        method = data.get("method")
        path_regex = data.get("pathRegex")
        if (
            not isinstance(kind, str)
            or isinstance(status, bool)
            or not isinstance(status, int)
            or (retry_after is not None and not isinstance(retry_after, int | float))
            or not isinstance(delay_ms, int | float)
            or isinstance(count, bool)
            or not isinstance(count, int)
            or (method is not None and not isinstance(method, str))
            or (path_regex is not None and not isinstance(path_regex, str))
        ):
            raise FaultConfigError("A scripted fault has a field of the wrong type.")
        if kind not in FAULT_KINDS:
            raise FaultConfigError(f"Unknown fault kind '{kind}'.")
        return cls(
            kind=kind,
            status=status,
            retry_after_s=float(retry_after) if retry_after is not None else None,
            delay_ms=float(delay_ms),
            count=count,
            method=method,
            path_regex=path_regex,
        )


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: answer `status`, drop the connection, hang, or wait `delay_s` and go on."""

    kind: FaultKind
    status: int = 503
    retry_after_s: float | None = None
    delay_s: float = 0.0
    scripted: bool = False


@dataclass(slots=True)
class FaultStats:
    """Counters for benchmarks: Graph requests per app, throttled ones, injected faults."""

    requests: int = 0
    requests_by_app: Counter[str] = field(default_factory=Counter)
    unauthenticated: int = 0
    throttled: int = 0
    throttled_by_app: Counter[str] = field(default_factory=Counter)
    injected: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    batch_items: int = 0
    roster_requests: int = 0
    """Roster reads (classes, members, teachers, users): Graph budgets them apart from the assignment service."""

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "requestsByApp": dict(self.requests_by_app),
            "rosterRequests": self.roster_requests,
            "unauthenticated": self.unauthenticated,
            "throttled": self.throttled,
            "throttledByApp": dict(self.throttled_by_app),
            "injectedFaults": {
                kind: self.injected.get(kind, 0) for kind in ("status", "error", "throttle", "slow", *FAULT_KINDS[1:])
            },
            "batches": self.batches,
            "batchItems": self.batch_items,
        }


class Faults:
    """Applies a FaultPlan and a queue of scripted faults; owns the throttle windows and the counters.

    Seams: `monotonic` (throttle windows) and `sleep` (latency, delays, hangs) so tests need not wait.
    """

    def __init__(
        self,
        plan: FaultPlan | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.monotonic = monotonic
        self.sleep = sleep
        self.stats = FaultStats()
        self._plan = plan or FaultPlan()
        self._random = random.Random(self._plan.seed)
        self._script: list[ScriptedFault] = []
        self._windows: dict[tuple[str, str], tuple[deque[float], deque[float]]] = {}

    @property
    def plan(self) -> FaultPlan:
        return self._plan

    @plan.setter
    def plan(self, plan: FaultPlan) -> None:
        """A new plan reseeds the random source and empties the throttle windows."""
        self._plan = plan
        self._random = random.Random(plan.seed)
        self._windows.clear()

    # -- scripted faults ----------------------------------------------------------------------------------------

    @property
    def script(self) -> list[ScriptedFault]:
        return list(self._script)

    def add_script(self, faults: Iterable[ScriptedFault]) -> None:
        self._script.extend(faults)

    def clear_script(self) -> None:
        self._script.clear()

    def _take_scripted(self, method: str, path: str) -> ScriptedFault | None:
        for index, fault in enumerate(self._script):
            if fault.matches(method, path):
                if fault.count > 1:
                    self._script[index] = replace(fault, count=fault.count - 1)
                else:
                    del self._script[index]
                return fault
        return None

    # -- decisions -----------------------------------------------------------------------------------------------

    def decide(self, method: str, path: str, *, http: bool) -> FaultDecision | None:
        """The fault (if any) for one request: a scripted one first, else the plan's rates.

        `http` is False for a $batch item: items can get injected 5xx; dropping and hanging belong to the
        HTTP exchange (a scripted drop or timeout matching an item still applies to the whole batch).
        """
        plan = self._plan
        # Always draw the same number of values so a seed gives the same sequence whatever happens (plans without
        # the throttle and slow rates draw as they did before those existed).
        drop_roll, timeout_roll, error_roll, status_roll = (self._random.random() for _ in range(4))
        throttle_roll = slow_roll = lost_roll = 1.0
        if plan.throttle_rate or plan.slow_rate or plan.lost_rate:
            throttle_roll, slow_roll, lost_roll = (self._random.random() for _ in range(3))
        scripted = self._take_scripted(method, path)
        if scripted is not None:
            self.stats.injected[scripted.kind] += 1
            return FaultDecision(
                scripted.kind, scripted.status, scripted.retry_after_s, scripted.delay_ms / 1000, scripted=True
            )
        if http and drop_roll < plan.drop_rate:
            self.stats.injected["drop"] += 1
            return FaultDecision("drop")
        if http and lost_roll < plan.lost_rate:
            self.stats.injected["lost"] += 1
            return FaultDecision("lost")
        if http and timeout_roll < plan.timeout_rate:
            self.stats.injected["timeout"] += 1
            return FaultDecision("timeout")
        if throttle_roll < plan.throttle_rate and not path.endswith("/$batch"):  # items are throttled, not envelopes
            self.stats.injected["throttle"] += 1
            return FaultDecision("status", 429, plan.throttle_retry_after_s)
        if error_roll < plan.error_rate:
            self.stats.injected["error"] += 1
            status = plan.error_statuses[int(status_roll * len(plan.error_statuses)) % len(plan.error_statuses)]
            return FaultDecision("status", status)
        if http and slow_roll < plan.slow_rate:
            self.stats.injected["slow"] += 1
            return FaultDecision("delay", delay_s=plan.slow_ms / 1000)
        return None

    def latency_s(self) -> float:
        plan = self._plan
        jitter = self._random.random() * plan.jitter_ms if plan.jitter_ms else 0.0
        return (plan.latency_ms + jitter) / 1000

    async def delay(self) -> None:
        """Network latency of one HTTP exchange (not per $batch item)."""
        seconds = self.latency_s()
        if seconds > 0:
            await self.sleep(seconds)

    # -- throttling ----------------------------------------------------------------------------------------------

    def admit(self, app_id: str, tenant_id: str) -> float | None:
        """Count one request against the (app, tenant) budget: None if admitted, else the Retry-After seconds."""
        self.stats.requests += 1
        self.stats.requests_by_app[app_id] += 1
        plan = self._plan
        now = self.monotonic()
        short, hourly = self._windows.setdefault((app_id, tenant_id), (deque(), deque()))
        waits: list[float] = []
        budgets = ((short, plan.throttle_limit, plan.throttle_window_s), (hourly, plan.throttle_hourly_limit, 3600.0))
        for window, limit, length in budgets:
            while window and window[0] <= now - length:
                window.popleft()
            if limit and len(window) >= limit:
                waits.append(window[0] + length - now)
        if waits:
            self.stats.throttled += 1
            self.stats.throttled_by_app[app_id] += 1
            return float(max(1, math.ceil(max(waits))))
        short.append(now)
        hourly.append(now)
        return None

    def count_roster(self, app_id: str) -> None:
        """A roster read: counted, never throttled here (Graph's roster budget is 35,000 / 10 s per app)."""
        self.stats.requests += 1
        self.stats.requests_by_app[app_id] += 1
        self.stats.roster_requests += 1

    def count_unauthenticated(self) -> None:
        self.stats.unauthenticated += 1

    def reset_stats(self) -> None:
        self.stats = FaultStats()


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """The realism/fault flags of `python -m sandbox` (page size is the caller's flag)."""
    defaults = FaultPlan()
    group = parser.add_argument_group("Graph realism and faults")
    group.add_argument("--latency-ms", type=float, default=defaults.latency_ms, help="fixed latency per request")
    group.add_argument("--jitter-ms", type=float, default=defaults.jitter_ms, help="extra random latency up to this")
    group.add_argument(
        "--throttle-limit",
        type=int,
        default=defaults.throttle_limit,
        help="requests per window per app and tenant before 429 (0 = off; Graph: 350)",
    )
    group.add_argument(
        "--throttle-window-s", type=float, default=defaults.throttle_window_s, help="throttle window (Graph: 10)"
    )
    group.add_argument(
        "--throttle-hourly-limit",
        type=int,
        default=defaults.throttle_hourly_limit,
        help="requests per hour per app and tenant before 429 (0 = off; Graph: 10000)",
    )
    group.add_argument("--error-rate", type=float, default=defaults.error_rate, help="share answered 500/503/504")
    group.add_argument(
        "--error-statuses",
        type=_statuses,
        default=defaults.error_statuses,
        metavar="S[,S...]",
        help="the 5xx statuses --error-rate picks from (default 500,503,504)",
    )
    group.add_argument("--timeout-rate", type=float, default=defaults.timeout_rate, help="share that hang")
    group.add_argument("--timeout-s", type=float, default=defaults.timeout_s, help="how long a hung request hangs")
    group.add_argument("--drop-rate", type=float, default=defaults.drop_rate, help="share whose connection drops")
    group.add_argument(
        "--lost-rate",
        type=float,
        default=defaults.lost_rate,
        help="share served (writes applied) whose answer is lost: the connection closes before it",
    )
    group.add_argument(
        "--throttle-rate",
        type=float,
        default=defaults.throttle_rate,
        help="share answered 429 with Retry-After whatever the budget (items of $batch too)",
    )
    group.add_argument(
        "--throttle-retry-after-s",
        type=float,
        default=defaults.throttle_retry_after_s,
        help="the Retry-After of --throttle-rate answers",
    )
    group.add_argument(
        "--slow-rate", type=float, default=defaults.slow_rate, help="share answered only after --slow-ms"
    )
    group.add_argument("--slow-ms", type=float, default=defaults.slow_ms, help="how late a slow answer comes")
    group.add_argument("--fault-seed", type=int, default=defaults.seed, help="seed for jitter and fault rates")
    group.add_argument(
        "--action-settle-ms",
        type=float,
        default=defaults.action_settle_ms,
        help="how long submission actions and publish take to show in reads",
    )


def _statuses(text: str) -> tuple[int, ...]:
    try:
        statuses = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError("use comma-separated status codes, e.g. 503 or 500,503") from exc
    if not statuses or any(not 500 <= status <= 599 for status in statuses):
        raise argparse.ArgumentTypeError("error statuses must be 5xx codes")
    return statuses


def fault_plan_from_args(args: argparse.Namespace) -> FaultPlan:
    return FaultPlan(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        throttle_limit=args.throttle_limit,
        throttle_window_s=args.throttle_window_s,
        throttle_hourly_limit=args.throttle_hourly_limit,
        error_rate=args.error_rate,
        error_statuses=args.error_statuses,
        timeout_rate=args.timeout_rate,
        timeout_s=args.timeout_s,
        drop_rate=args.drop_rate,
        lost_rate=args.lost_rate,
        throttle_rate=args.throttle_rate,
        throttle_retry_after_s=args.throttle_retry_after_s,
        slow_rate=args.slow_rate,
        slow_ms=args.slow_ms,
        seed=args.fault_seed,
        action_settle_ms=args.action_settle_ms,
    )
