"""Tells a teacher when a write that outlived its invoke has landed (or stopped for good): the card in their 1:1
chat is updated in place. Cards in shared conversations are never updated with teacher data."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from bot.grading.grading import values_text
from bot.grading.handlers import screen_card
from bot.grading.session import GradingSession, GradingView, Screen
from bot.kernel.errors import SignInRequiredError, UserError
from bot.kernel.turn import DeliveryError, Teacher
from cards.blocks import Banner
from graph.connection import TokenProvider
from graph.errors import GraphError
from storage.records import OutboxEntry
from storage.store import Store

log = logging.getLogger(__name__)


class CardUpdater(Protocol):
    async def update_card(self, reference: Mapping[str, Any], activity_id: str, card: dict[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class SettledNotices:
    store: Store
    session: GradingSession
    teams: CardUpdater
    providers: Callable[[str, str], TokenProvider]
    clock: Callable[[], datetime]

    async def __call__(self, entry: OutboxEntry) -> bool:
        """Update the teacher's card; False when it could not be done now (Graph or Teams failed: try later)."""
        card_info: dict[str, Any] = entry.payload.get("card") or {}  # what `CardRef.payload` recorded
        activity_id = card_info.get("activityId")
        if card_info.get("shared") or not activity_id:
            return True
        conversation = await self.store.get_conversation(str(card_info.get("conversationId") or ""))
        if conversation is None or conversation.kind != "personal":
            return True
        profile = await self.store.get_user_profile(entry.teacher_id)
        tz = ZoneInfo(profile.timezone) if profile and profile.timezone else ZoneInfo("UTC")
        teacher = Teacher(entry.tenant_id, entry.teacher_id, self.providers(entry.tenant_id, entry.teacher_id))
        try:
            screen = await self.session.open(teacher, entry.class_id, entry.assignment_id, entry.submission_id)
            card = screen_card(screen, tz, self.clock(), status=_banner(entry, screen))
            await self.teams.update_card(conversation.reference, str(activity_id), card)
        except UserError as exc:  # the submission or the teacher's access is gone: nothing left to show
            log.info("no card update for outbox entry %s: %s", entry.id, type(exc).__name__)
        except (GraphError, DeliveryError, SignInRequiredError) as exc:
            log.info("card update for outbox entry %s postponed: %s", entry.id, type(exc).__name__)
            return False
        return True


def _banner(entry: OutboxEntry, screen: Screen) -> Banner:
    """What became of the write, naming whose grade and which value (a card in the teacher's own 1:1 chat)."""
    undo = "undoes" in entry.payload
    student = screen.student_name if isinstance(screen, GradingView) else "the student"
    if entry.status == "done":
        if undo:
            grade = values_text((entry.result or {}).get("after") or {}, screen.assignment.max_points)
            return Banner.good(f"Undone in Teams Assignments: {student}'s grade is back to {grade}.")
        return Banner.good(f"Saved to Teams Assignments for {student}. Students see it only after you return it.")
    if entry.status == "conflict":
        if undo:
            return Banner.error("Not undone: the grade changed after your save. Check it before you change it.")
        return Banner.error("Not saved: someone else changed this grade meanwhile. Check it and grade again.")
    return Banner.error("Gradebot could not save this change: " + (entry.last_error or "Graph refused it."))
