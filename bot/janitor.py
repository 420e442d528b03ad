"""The janitor (a worker): deletes what Gradebot no longer needs — expired once-only claims, expired sign-in flows
and one-time codes, finished grade writes past OUTBOX_RETENTION_DAYS (and notices owed about them), digest records
and classes' stored waiting sets past 30 days, and audit records past AUDIT_RETENTION_DAYS."""

from __future__ import annotations

import logging
from dataclasses import KW_ONLY, astuple, dataclass
from datetime import datetime, timedelta

from storage.store import Store

log = logging.getLogger(__name__)

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


@dataclass
class Janitor:
    """Every instance may run it: each delete is idempotent, so no lease is needed."""

    store: Store
    _: KW_ONLY
    outbox_retention: timedelta
    audit_retention: timedelta
    name = "janitor"
    interval_s = 3600.0

    async def tick(self, now: datetime) -> JanitorReport:
        report = JanitorReport(
            claims=await self.store.purge_claims(now),
            sign_in_flows=await self.store.purge_sign_in_flows(now),
            sign_in_codes=await self.store.purge_sign_in_codes(now),
            finished_outbox=await self.store.purge_finished_outbox(now - self.outbox_retention),
            digests=await self.store.purge_digests(now - DIGEST_RETENTION),
            class_sweeps=await self.store.purge_class_sweeps(now - DIGEST_RETENTION),
            audit=await self.store.purge_audit(now - self.audit_retention),
        )
        log.info(
            "janitor deleted %d expired claims, %d sign-in flows, %d sign-in codes, %d finished grade writes, "
            "%d digest records, %d class waiting sets, %d audit records",
            *astuple(report),
        )
        return report

    async def stop(self) -> None:
        """Nothing is held between passes."""
