"""When and how long to wait before trying a Graph request again: exponential backoff, full jitter, Retry-After.

Which failures are retried depends on whether the request may run twice (see `GraphHttp` for the table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

RETRYABLE_STATUSES = frozenset({429, 503, 504})
"""Answers that mean "not done, try later" for requests that may safely run twice."""
NOT_EXECUTED_STATUSES = frozenset({429, 503})
"""Answers that mean Graph did not run the request, so even a POST action may be sent again."""


def is_retryable_status(status: int, *, idempotent: bool) -> bool:
    """Whether an HTTP status (whole response or `$batch` item) may be retried for this kind of request."""
    return status in (RETRYABLE_STATUSES if idempotent else NOT_EXECUTED_STATUSES)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Limits for retrying one request: attempts, backoff shape and the total time spent waiting.

    A `Retry-After` from Graph is always honoured (never retried sooner); if it would take the total wait past
    `max_total_wait`, the request is not retried and the error (carrying `retry_after`) goes to the caller.
    """

    max_attempts: int = 4
    """Tries in all, the first included (1 = never retry)."""
    base_delay: float = 0.5
    """Backoff ceiling for the first retry, in seconds; doubles for each further retry."""
    max_delay: float = 8.0
    """Cap on one backoff wait when Graph gave no Retry-After."""
    max_total_wait: float = 30.0
    """Cap on the sum of all waits for one request."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_total_wait < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry_number: int, retry_after: float | None, random: Callable[[], float]) -> float:
        """Seconds to wait before retry `retry_number` (1 for the first retry).

        Graph's `Retry-After` when given; otherwise full jitter: uniform in [0, min(max_delay, base * 2^(n-1))].
        """
        if retry_after is not None:
            return retry_after
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return ceiling * random()

    def allows(self, attempts_made: int, waited: float, next_delay: float) -> bool:
        """Whether one more try fits: attempts left and the next wait inside the total budget."""
        return attempts_made < self.max_attempts and waited + next_delay <= self.max_total_wait
