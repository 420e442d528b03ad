"""The reminder sweep (a worker): each teacher's digest of waiting work on their own schedule, sent by exactly one
instance (a lease in the store, renewed between teachers; a sweep that lost it stops) and recorded before it is sent,
so never twice. `run_once(now)` is one sweep: the worker's tick, `remind-once --at …` and tests call it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.kernel.errors import SignInRequiredError, SsoTokenError
from bot.kernel.turn import DeliveryError, Teacher
from bot.reminders.schedule import digest_entries, due_slot, in_quiet_hours, meets_threshold
from bot.reminders.waiting import ClassSweeper
from bot.school.progress import oldest_first
from bot.school.service import EducationService
from bot.telemetry.metrics import timed_sweep
from cards.lists import UngradedItem
from cards.reminders import digest_card
from graph.connection import RequestBudget, TokenProvider
from graph.errors import GraphAuthError, GraphError
from storage.records import ConversationRecord, ReminderSchedule
from storage.store import Store

log = logging.getLogger(__name__)

LEASE_NAME = "reminders"
MIN_LEASE = timedelta(seconds=60)
"""A sweep holds the lease for three tick intervals, and at least this long."""
RENEW_AFTER = 1 / 3
"""Between teachers, the lease is renewed once this share of it has passed since it was last taken or renewed."""
CATCH_UP = timedelta(hours=12)
"""A slot missed (the bot was down, a tick was late) is still sent once if it is at most this old."""
MAX_DELIVERY_TRIES = 5
BACKGROUND_SHARE = 0.6
"""A sweep starts a teacher's digest only while less than this share of the Graph budget is in use."""
SEND_INTERVAL_S = 0.1
"""Pause between proactive sends: well under Teams' 50 requests/s per app per tenant."""


class Messenger(Protocol):
    """Proactive delivery to Teams (bot/teams/edge.py)."""

    async def send_card(self, reference: Mapping[str, Any], card: dict[str, Any]) -> str | None: ...

    async def open_personal_chat(self, service_url: str, tenant_id: str, user_teams_id: str) -> dict[str, Any]: ...


@dataclass
class SweepReport:
    """What one sweep did (for operators, `remind-once` and tests)."""

    held_lease: bool = False
    lease_lost: bool = False
    """Another instance took the lease during this sweep, which stopped before the next teacher."""
    sent: list[str] = field(default_factory=list)
    sign_in_notes: list[str] = field(default_factory=list)
    nothing_waiting: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


@dataclass
class Reminders:
    """The worker: finds due digests, builds them with the teacher's cached token (or the app's), sends each once."""

    store: Store
    education: EducationService
    messenger: Messenger
    providers: Callable[[str, str], TokenProvider]
    _: KW_ONLY
    owner: str
    interval_s: float
    sign_in_note: Callable[[str, str], dict[str, Any]]
    app_only: bool = False
    budget: RequestBudget | None = None
    clock: Callable[[], datetime]
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    name = "reminders"

    @timed_sweep
    async def run_once(self, now: datetime) -> SweepReport:
        """One sweep as if at `now`: only the lease holder sends, and only while it holds the lease (timed by the
        instance's clock, not by `now`, which `remind-once --at` may set anywhere, so every instance reads one time
        line). A sweep whose lease was taken over stops: digests are recorded before they are sent, so none twice."""
        report = SweepReport()
        ttl, taken_at = max(timedelta(seconds=self.interval_s * 3), MIN_LEASE), self.clock()
        if not await self.store.acquire_lease(LEASE_NAME, self.owner, taken_at, ttl):
            return report
        report.held_lease = True
        schedules = await self.store.list_schedules(enabled_only=True)
        for done, schedule in enumerate(schedules):
            if (at := self.clock()) - taken_at >= ttl * RENEW_AFTER:
                taken_at = at
                if not await self.store.acquire_lease(LEASE_NAME, self.owner, taken_at, ttl):
                    report.lease_lost = True
                    stopping = "reminder lease taken by another instance after %d of %d schedules: this sweep stops"
                    log.warning(stopping, done, len(schedules))
                    break
            try:
                await self._consider(schedule, now, report)
            except GraphError as exc:
                report.failed[schedule.teacher_id] = f"Graph {exc.status}"
                log.warning("digest for teacher %s failed: %s", schedule.teacher_id, exc)
        return report

    async def tick(self, now: datetime) -> SweepReport:
        return await self.run_once(now)

    async def stop(self) -> None:
        await self.store.release_lease(LEASE_NAME, self.owner)

    async def _consider(self, schedule: ReminderSchedule, now: datetime, report: SweepReport) -> None:
        teacher_id, tenant_id = schedule.teacher_id, schedule.tenant_id
        if schedule.paused_reason:
            report.skipped[teacher_id] = f"paused: {schedule.paused_reason}"
            return
        slot = due_slot(schedule, now)
        if slot is None or now - slot.at > CATCH_UP:
            return
        snoozed = schedule.snoozed_until is not None and slot.at < schedule.snoozed_until
        if snoozed or in_quiet_hours(schedule, now):
            report.skipped[teacher_id] = "snoozed" if snoozed else "quiet hours"
            return
        none_key = slot.key + "/none"
        if await self.store.digest_sent(teacher_id, slot.key) or await self.store.digest_sent(teacher_id, none_key):
            return
        if self.budget is not None:
            # A sweep is background work: it only starts the next teacher while teachers grading now have room.
            await self.budget.wait_below(BACKGROUND_SHARE)
        teacher = Teacher(tenant_id, teacher_id, self.providers(tenant_id, teacher_id), app_only=self.app_only)
        try:
            items = await self._waiting(teacher, schedule, now)
        except (SignInRequiredError, SsoTokenError, GraphAuthError):
            if await self.store.record_digest(teacher_id, slot.key, now):
                await self._deliver(schedule, self.sign_in_note(tenant_id, teacher_id), report, now)
                report.sign_in_notes.append(teacher_id)
            return
        entries = digest_entries(items, schedule.min_age_days, now)
        if not meets_threshold(schedule, entries, now):
            await self.store.record_digest(teacher_id, none_key, now)
            report.nothing_waiting.append(teacher_id)
            return
        if not await self.store.record_digest(teacher_id, slot.key, now):
            return  # another instance claimed this slot first
        if await self._deliver(schedule, digest_card(entries, ZoneInfo(schedule.timezone), now), report, now):
            report.sent.append(teacher_id)

    async def _waiting(self, teacher: Teacher, schedule: ReminderSchedule, now: datetime) -> list[UngradedItem]:
        """The teacher's waiting work in the classes they chose (all they teach, if none), each class brought up to
        date from its stored waiting set (bot/reminders/waiting.py)."""
        classes = await self.education.taught_classes(teacher)
        sweeper = ClassSweeper(self.store, self.education)
        chosen = [c for c in classes if not schedule.class_ids or c.id in schedule.class_ids]
        found = await asyncio.gather(*(sweeper.waiting(teacher, c, now) for c in chosen))
        return oldest_first(item for items in found for item in items)

    async def _deliver(
        self, schedule: ReminderSchedule, card: dict[str, Any], report: SweepReport, now: datetime
    ) -> bool:
        """Send to the teacher's 1:1 chat (opening it if needed), retrying 429s; a 403 pauses their reminders."""
        teacher_id = schedule.teacher_id
        for attempt in range(MAX_DELIVERY_TRIES):
            try:
                reference = await self._personal_reference(schedule, now)
                if reference is None:
                    report.failed[teacher_id] = "no chat with this teacher yet"
                    return False
                await self.messenger.send_card(reference, card)
                await self.sleep(SEND_INTERVAL_S)
                return True
            except DeliveryError as exc:
                if exc.is_blocked:
                    paused = replace(
                        schedule, paused_reason="Gradebot was blocked or removed", paused_at=now, updated_at=now
                    )
                    await self.store.save_schedule(paused)
                    report.failed[teacher_id] = "blocked (reminders paused)"
                    log.info("teacher %s blocked the app; reminders paused", teacher_id)
                    return False
                if not exc.is_transient or attempt + 1 == MAX_DELIVERY_TRIES:
                    report.failed[teacher_id] = f"delivery failed ({exc.status})"
                    return False
                await self.sleep(exc.retry_after if exc.retry_after is not None else 2.0**attempt)
        return False

    async def _personal_reference(self, schedule: ReminderSchedule, now: datetime) -> Mapping[str, Any] | None:
        existing = await self.store.personal_conversation(schedule.teacher_id)
        if existing is not None:
            return existing.reference
        profile = await self.store.get_user_profile(schedule.teacher_id)
        if profile is None or not profile.teams_id or not profile.service_url:
            return None
        reference = await self.messenger.open_personal_chat(profile.service_url, schedule.tenant_id, profile.teams_id)
        conversation, bot = reference.get("conversation") or {}, reference.get("bot") or {}
        await self.store.save_conversation(
            ConversationRecord(
                conversation_id=str(conversation.get("id", "")),
                kind="personal",
                tenant_id=schedule.tenant_id,
                service_url=profile.service_url,
                bot_id=str(bot.get("id", "")),
                user_aad_id=schedule.teacher_id,
                team_id=None,
                class_id=None,
                reference=reference,
                updated_at=now,
            )
        )
        return reference
