"""The janitor (a worker): deletes what Gradebot no longer needs — expired once-only claims, expired sign-in flows
and one-time codes, finished grade writes past OUTBOX_RETENTION_DAYS (and notices owed about them), digest records
and classes' stored waiting sets past 30 days, and audit records past AUDIT_RETENTION_DAYS."""

from __future__ import annotations

import logging
from dataclasses import astuple, dataclass
from datetime import datetime, timedelta

from storage.store import Store

log = logging.getLogger(__name__)

JANITOR_INTERVAL_S = 3600.0
DIGEST_RETENTION = timedelta(days=30)
"""A digest record stops a slot being sent twice; a sweep looks at most a week back and catches up only 12 hours, so
a month-old record can never matter again."""


@dataclass(frozen=True, slots=True)
class JanitorReport:
    """How many rows one pass deleted, per kind."""

    claims: int
    sign_in_flows: int
    sign_in_codes: int
    finished_outbox: int
    digests: int
    class_sweeps: int
    audit: int


class Janitor:
    """Every instance may run it: each delete is idempotent, so no lease is needed."""

    name = "janitor"
    interval_s = JANITOR_INTERVAL_S

    def __init__(self, store: Store, *, outbox_retention: timedelta, audit_retention: timedelta) -> None:
        self._store = store
        self._outbox_retention = outbox_retention
        self._audit_retention = audit_retention

    async def tick(self, now: datetime) -> JanitorReport:
        report = JanitorReport(
            claims=await self._store.purge_claims(now),
            sign_in_flows=await self._store.purge_sign_in_flows(now),
            sign_in_codes=await self._store.purge_sign_in_codes(now),
            finished_outbox=await self._store.purge_finished_outbox(now - self._outbox_retention),
            digests=await self._store.purge_digests(now - DIGEST_RETENTION),
            class_sweeps=await self._store.purge_class_sweeps(now - DIGEST_RETENTION),
            audit=await self._store.purge_audit(now - self._audit_retention),
        )
        log.info(
            "janitor deleted %d expired claims, %d sign-in flows, %d sign-in codes, %d finished grade writes, "
            "%d digest records, %d class waiting sets, %d audit records",
            *astuple(report),
        )
        return report

    async def stop(self) -> None:
        """Nothing is held between passes."""
