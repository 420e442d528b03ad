"""Reminder schedules: when a teacher's digest is due in their own time zone (DST-proof slots), quiet hours, what a
digest holds and whether it is worth sending, and a schedule from the settings card."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cards.blocks import time_zone
from cards.lists import UngradedItem
from cards.reminders import WEEKDAYS, DigestEntry, SaveRemindersAction
from storage.records import ReminderSchedule


@dataclass(frozen=True, slots=True)
class Slot:
    """One scheduled digest time: `key` names it in the teacher's local time (DST-proof), `at` is the instant."""

    key: str
    at: datetime


def local_instant(day: Any, at: time, tz: ZoneInfo) -> datetime:
    """`day` at wall-clock `at` in `tz` as a UTC instant: the first of two in a fall-back hour, and shifted
    forward by the gap when the wall time does not exist (spring forward)."""
    return datetime.combine(day, at).replace(tzinfo=tz, fold=0).astimezone(UTC)


def slots(schedule: ReminderSchedule, tz: ZoneInfo, now: datetime, days: range) -> Iterator[Slot]:
    """The schedule's slots on the days `days` away from today in `tz` (negative: in the past), in that order."""
    at = time.fromisoformat(schedule.local_time)
    for day in (now.astimezone(tz).date() + timedelta(days=n) for n in days):
        if day.weekday() in schedule.days:
            yield Slot(f"{day.isoformat()}T{schedule.local_time}", local_instant(day, at, tz))


def due_slot(schedule: ReminderSchedule, now: datetime) -> Slot | None:
    """The newest scheduled slot at or before `now` (looking back a week), or None."""
    tz = time_zone(schedule.timezone)
    if tz is None:
        return None
    return next((slot for slot in slots(schedule, tz, now, range(0, -8, -1)) if slot.at <= now), None)


def inside(at: time, start: time, end: time) -> bool:
    """Whether `at` falls in the span from `start` to `end`, which may run past midnight."""
    return start <= at < end if start <= end else at >= start or at < end


def in_quiet_hours(schedule: ReminderSchedule, now: datetime) -> bool:
    tz, start, end = time_zone(schedule.timezone), schedule.quiet_start, schedule.quiet_end
    if start is None or end is None or tz is None:
        return False
    return inside(now.astimezone(tz).time(), time.fromisoformat(start), time.fromisoformat(end))


def digest_entries(items: list[UngradedItem], min_age_days: int, now: datetime) -> list[DigestEntry]:
    """Per class: how many wait (at least `min_age_days` old), the oldest, the late ones — oldest first."""
    by_class: dict[str, list[UngradedItem]] = {}
    for item in items:
        turned_in = item.turned_in_at
        if not min_age_days or turned_in is None or now - turned_in >= timedelta(days=min_age_days):
            by_class.setdefault(item.education_class.id, []).append(item)
    entries = [
        DigestEntry(
            group[0].education_class, len(group), group[0], [item for item in group if item.late_by is not None]
        )
        for group in by_class.values()
    ]
    return sorted(entries, key=lambda e: e.education_class.display_name.casefold())


def meets_threshold(schedule: ReminderSchedule, entries: list[DigestEntry], now: datetime) -> bool:
    """Send when ≥ min_waiting wait, or the oldest has waited ≥ min_age_days (with something waiting at all)."""
    waiting = sum(e.waiting for e in entries)
    if waiting == 0:
        return False
    if waiting >= max(schedule.min_waiting, 1):
        return True
    oldest = min((e.oldest.turned_in_at for e in entries if e.oldest.turned_in_at), default=None)
    return bool(schedule.min_age_days and oldest is not None and now - oldest >= timedelta(days=schedule.min_age_days))


def default_schedule(teacher_id: str, tenant_id: str, timezone: str, now: datetime) -> ReminderSchedule:
    return ReminderSchedule(
        teacher_id=teacher_id,
        tenant_id=tenant_id,
        enabled=True,
        days=frozenset(range(5)),  # Monday to Friday
        local_time="15:30",
        timezone=timezone,
        quiet_start=None,
        quiet_end=None,
        class_ids=frozenset(),
        min_waiting=1,
        min_age_days=0,
        snoozed_until=None,
        paused_reason=None,
        paused_at=None,
        updated_at=now,
    )


def schedule_from_action(
    action: SaveRemindersAction, teacher_id: str, tenant_id: str, now: datetime
) -> ReminderSchedule:
    return replace(
        default_schedule(teacher_id, tenant_id, action.timezone, now),
        enabled=action.enabled,
        days=frozenset(WEEKDAYS.index(day) for day in action.days),
        local_time=action.at.strftime("%H:%M"),
        quiet_start=action.quiet_start.strftime("%H:%M") if action.quiet_start else None,
        quiet_end=action.quiet_end.strftime("%H:%M") if action.quiet_end else None,
        class_ids=frozenset(action.class_ids),
        min_waiting=action.min_waiting,
        min_age_days=action.min_age_days,
    )
