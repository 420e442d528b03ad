"""The reminder digest sent to a teacher's 1:1 chat: per class, what waits, the oldest and the late ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from microsoft_teams.cards import CardElement, Container

from bot.school.progress import UngradedItem
from cards.actions import OpenGradingAction, ShowUngradedAction, SnoozeAction
from cards.dates import late_text, turned_in_text
from cards.render import Card, buttons, card, execute, heading, largest_fitting, line, plain
from graph.models import EducationClass

LATE_SHOWN = 5
"""Late submissions named per class; the rest are counted."""


@dataclass(frozen=True, slots=True)
class DigestEntry:
    """One class in the digest. `late` holds its late, ungraded submissions (oldest first)."""

    education_class: EducationClass
    waiting: int
    oldest: UngradedItem | None
    late: Sequence[UngradedItem] = ()


def _count(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else plural or singular + 's'}"


def _who(item: UngradedItem) -> str:
    return f"{plain(item.student_name, 60) or 'A student'} ({plain(item.assignment.display_name, 60)})"


def _entry_block(entry: DigestEntry, tz: ZoneInfo, now: datetime) -> Container:
    items: list[CardElement] = [
        line(plain(entry.education_class.display_name) or "Unnamed class", bold=True),
        line(f"{entry.waiting} waiting to be graded"),
    ]
    oldest = entry.oldest
    if oldest is not None:
        items.append(line(f"Oldest: {_who(oldest)} · {turned_in_text(oldest.turned_in_at, tz, now)}", subtle=True))
    if entry.late:
        named = ", ".join(f"{_who(item)} {late_text(item.late_by) or 'late'}" for item in entry.late[:LATE_SHOWN])
        more = f" and {len(entry.late) - LATE_SHOWN} more" if len(entry.late) > LATE_SHOWN else ""
        items.append(line(f"Late: {named}{more}", color="Attention"))
    grade = (
        OpenGradingAction(entry.education_class.id, oldest.assignment.id, oldest.submission.id)
        if oldest is not None
        else None
    )
    actions = buttons(
        [
            execute("Grade", grade) if grade is not None else None,
            execute("All ungraded", ShowUngradedAction(entry.education_class.id, 0)),
        ]
    )
    if actions is not None:
        items.append(actions)
    return Container(items=items, separator=True)


def digest_card(entries: Sequence[DigestEntry], tz: ZoneInfo, now: datetime) -> Card:
    """The digest (1:1 chat only: it names students). Classes with nothing waiting are left out."""
    shown = [entry for entry in entries if entry.waiting > 0]
    total = sum(entry.waiting for entry in shown)
    snooze = [execute("Snooze 1 day", SnoozeAction(1)), execute("Snooze 1 week", SnoozeAction(7))]
    if not shown:
        return card([heading("Grading reminder"), line("Nothing is waiting to be graded.")], snooze)

    def build(count: int) -> Card:
        body: list[CardElement | None] = [
            heading("Grading reminder"),
            line(f"{_count(total, 'submission')} waiting in {_count(len(shown), 'class', 'classes')}.", subtle=True),
        ]
        body.extend(_entry_block(entry, tz, now) for entry in shown[:count])
        if count < len(shown):
            body.append(line(f"…and {len(shown) - count} more classes not shown here.", subtle=True))
        return card(body, snooze, full_width=True)

    return build(largest_fitting(build, len(shown)))
