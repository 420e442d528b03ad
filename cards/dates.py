"""Times as teachers read them, in their own timezone: "Fri 4 Dec, 23:59", "in 3 days", "late by 2 days".

English names are spelled out here so the output never depends on the process locale; the clock is never read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.school.progress import late_days

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def as_utc(value: datetime) -> datetime:
    """Graph times are UTC; a naive value (e.g. from a lenient parser) is read as UTC rather than crash a card."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


def format_moment(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "Fri 4 Dec, 23:59" in `tz`; the year is added when it differs from `now`'s."""
    local = as_utc(at).astimezone(tz)
    year = "" if local.year == as_utc(now).astimezone(tz).year else f" {local.year}"
    return f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}{year}, {local:%H:%M}"


def format_span(span: timedelta) -> str:
    """A positive duration in its largest whole unit: "3 days", "5 hours", "12 minutes"."""
    seconds = int(abs(span).total_seconds())
    if seconds >= 86_400:
        return _plural(seconds // 86_400, "day")
    if seconds >= 3_600:
        return _plural(seconds // 3_600, "hour")
    return _plural(max(1, seconds // 60), "minute")


def relative(at: datetime, now: datetime) -> str:
    """ "in 3 days", "2 hours ago" or "just now"."""
    span = as_utc(at) - as_utc(now)
    if abs(span) < timedelta(minutes=1):
        return "just now"
    return f"in {format_span(span)}" if span > timedelta(0) else f"{format_span(span)} ago"


def moment_with_relative(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "Fri 4 Dec, 23:59 (in 3 days)"."""
    return f"{format_moment(at, tz, now)} ({relative(at, now)})"


def due_text(due: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    """ "Due Fri 4 Dec, 23:59 (in 3 days)", "Was due … (2 days ago)" or "No due date"."""
    if due is None:
        return "No due date"
    label = "Due" if as_utc(due) >= as_utc(now) else "Was due"
    return f"{label} {moment_with_relative(due, tz, now)}"


def close_text(close: datetime | None, tz: ZoneInfo, now: datetime) -> str | None:
    """ "Closes …" / "Closed …", or None when late turn-ins are accepted indefinitely."""
    if close is None:
        return None
    label = "Closes" if as_utc(close) >= as_utc(now) else "Closed"
    return f"{label} {moment_with_relative(close, tz, now)}"


def late_text(late_by: timedelta | None) -> str | None:
    """ "late by 2 days" (any part of a day counts as one), or None when on time."""
    if late_by is None or late_by <= timedelta(0):
        return None
    return f"late by {_plural(late_days(late_by), 'day')}"


def turned_in_text(at: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    """ "Turned in Thu 3 Dec, 14:05 (2 days ago)"."""
    if at is None:
        return "Turn-in time unknown"
    return f"Turned in {moment_with_relative(at, tz, now)}"
