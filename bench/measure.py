"""What one approach cost for one piece of work (wall time, round trips, Graph requests, 429s, peak demand per
throttle window), how two approaches compare, and the throttle-budget arithmetic for a district."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any, TypeVar

from bench.host import SandboxHost
from bench.recording import Exchange, peak_in_window
from sandbox.faults import ASSIGNMENT_SERVICE_HOURLY_LIMIT, ASSIGNMENT_SERVICE_LIMIT, ASSIGNMENT_SERVICE_WINDOW_S

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One approach doing one piece of work, counted by the sandbox and timed here."""

    seconds: float
    http_requests: int
    """Round trips: plain requests plus `$batch` envelopes."""
    graph_requests: int
    """What Graph's budget counts: plain requests plus `$batch` items (429s included)."""
    batch_items: int
    throttled: int
    """429 answers received (plain and inside batches)."""
    peak_window_requests: int
    """Most Graph requests sent within any one throttle window (10 s)."""
    assignment_service_requests: int = 0
    """Answered (not 429) requests to Graph's assignment service, the part Graph's 350 / 10 s budget counts."""
    scaled_from: str | None = None
    """Set when the numbers were measured on part of the work and scaled up (see `scaled`)."""

    def scaled(self, factor: float, note: str) -> Measurement:
        """Counts and time multiplied by `factor` (time never below what Graph's budget allows for those requests)."""
        requests = round(self.graph_requests * factor)
        return replace(
            self,
            seconds=max(self.seconds * factor, budget_floor_s(requests)),
            http_requests=round(self.http_requests * factor),
            graph_requests=requests,
            batch_items=round(self.batch_items * factor),
            throttled=round(self.throttled * factor),
            assignment_service_requests=round(self.assignment_service_requests * factor),
            scaled_from=note,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data


@dataclass(frozen=True, slots=True)
class Comparison:
    """Gradebot against the naive client on the same work; `details` holds what both computed and other facts."""

    key: str
    title: str
    gradebot: Measurement
    naive: Measurement
    details: dict[str, Any] = field(default_factory=dict)

    def ratios(self) -> dict[str, float | None]:
        """naive ÷ Gradebot for time, round trips and Graph requests (None where Gradebot's figure is 0)."""

        def ratio(naive: float, gradebot: float) -> float | None:
            return round(naive / gradebot, 2) if gradebot else None

        return {
            "time": ratio(self.naive.seconds, self.gradebot.seconds),
            "httpRequests": ratio(self.naive.http_requests, self.gradebot.http_requests),
            "graphRequests": ratio(self.naive.graph_requests, self.gradebot.graph_requests),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "gradebot": self.gradebot.to_json(),
            "naive": self.naive.to_json(),
            "ratios": self.ratios(),
            "details": self.details,
        }


async def measure(
    host: SandboxHost, exchanges: list[Exchange], work: Callable[[], Awaitable[T]]
) -> tuple[Measurement, T]:
    """Run `work` from fresh throttle windows and zeroed counters; `exchanges` is the recording its client fills."""
    await host.reset()
    exchanges.clear()
    started = time.perf_counter()
    value = await work()
    seconds = time.perf_counter() - started
    stats = await host.stats()
    measurement = Measurement(
        seconds=seconds,
        http_requests=stats.http_requests,
        graph_requests=stats.requests,
        batch_items=stats.batch_items,
        throttled=stats.throttled,
        peak_window_requests=peak_in_window(exchanges, host.plan.throttle_window_s or ASSIGNMENT_SERVICE_WINDOW_S),
        assignment_service_requests=sum(e.assignment_service - e.assignment_service_throttled for e in exchanges),
    )
    return measurement, value


def budget_floor_s(
    requests: int,
    limit: int = ASSIGNMENT_SERVICE_LIMIT,
    window_s: float = ASSIGNMENT_SERVICE_WINDOW_S,
    hourly_limit: int = ASSIGNMENT_SERVICE_HOURLY_LIMIT,
) -> float:
    """The least time Graph's budget lets one app spend on `requests` (350 per 10 s window, 10,000 per hour)."""
    windows = max(0, math.ceil(requests / limit) - 1) * window_s
    hours = max(0, math.ceil(requests / hourly_limit) - 1) * 3600.0
    return max(windows, hours)


@dataclass(frozen=True, slots=True)
class SweepBudget:
    """Graph's budget against one reminder sweep of a district, from measured requests per teacher."""

    district_teachers: int
    gradebot_per_teacher: float
    naive_per_teacher: float
    """Answered Graph requests per teacher, as the sandbox counts them (every Graph request)."""
    gradebot_assignment_service_per_teacher: float
    naive_assignment_service_per_teacher: float
    """The same without rostering reads: what Graph's assignment-service budget counts."""
    limit: int = ASSIGNMENT_SERVICE_LIMIT
    window_s: float = ASSIGNMENT_SERVICE_WINDOW_S
    hourly_limit: int = ASSIGNMENT_SERVICE_HOURLY_LIMIT

    def to_json(self) -> dict[str, Any]:
        def side(per_teacher: float, assignment_service: float) -> dict[str, Any]:
            total = round(per_teacher * self.district_teachers)
            return {
                "requestsPerTeacher": round(per_teacher, 1),
                "assignmentServiceRequestsPerTeacher": round(assignment_service, 1),
                "assignmentServiceTeachersPerWindow": round(self.limit / assignment_service, 1)
                if assignment_service
                else None,
                "teachersPerWindow": round(self.limit / per_teacher, 1) if per_teacher else None,
                "requestsPerSweep": total,
                "fitsOneWindow": total <= self.limit,
                "minimumSweepSeconds": budget_floor_s(total, self.limit, self.window_s, self.hourly_limit),
                "shareOfHourlyBudget": round(total / self.hourly_limit, 3),
            }

        return {
            "districtTeachers": self.district_teachers,
            "limit": self.limit,
            "windowSeconds": self.window_s,
            "hourlyLimit": self.hourly_limit,
            "gradebot": side(self.gradebot_per_teacher, self.gradebot_assignment_service_per_teacher),
            "naive": side(self.naive_per_teacher, self.naive_assignment_service_per_teacher),
        }
