"""Turns grading results into cards: one place that knows which card shows which use-case outcome."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.grading.grading import Confirm, Conflict, Outcome, UndoConflict, grade_values
from bot.grading.session import AllGraded, GradingView, Screen
from bot.school.progress import lateness
from cards.blocks import Banner, Card, new_nonce
from cards.grading import (
    ExcuseAction,
    GradeAction,
    GradeValues,
    ReassignAction,
    ReturnAction,
    ReturnAllAction,
    UndoAction,
    all_graded_card,
    confirm_card,
    conflict_card,
    grading_card,
    undo_conflict_card,
)

Step = ReturnAction | ReassignAction | ExcuseAction
_STEPS: dict[str, type[Step]] = {"return": ReturnAction, "reassign": ReassignAction, "excuse": ExcuseAction}


def screen_card(
    screen: Screen,
    tz: ZoneInfo,
    now: datetime,
    *,
    status: Banner | None = None,
    entered: GradeAction | GradeValues | None = None,
    undo: UndoAction | None = None,
) -> Card:
    """The grading card for a submission, or "all graded" for the assignment."""
    if isinstance(screen, AllGraded):
        return all_graded_card(
            screen.assignment, screen.education_class, screen.returnable, nonce=new_nonce(), status=status, undo=undo
        )
    if status is None and screen.pending:
        status = Banner.warning(
            "A change to this grade is still being saved to Microsoft Graph; Gradebot keeps retrying it."
        )
    return grading_card(
        *screen.subject,
        tz=tz,
        now=now,
        nonce=new_nonce(),
        progress=(screen.graded, screen.waiting) if screen.position else None,
        late_by=lateness(screen.submission, screen.assignment),
        rubric=screen.rubric,
        graded_not_returned=screen.returnable,
        status=status,
        entered=entered,
        undo=undo,
    )


def outcome_card(outcome: Outcome, tz: ZoneInfo, now: datetime) -> Card:
    """The next screen with a banner about what happened, and Undo for a save that just landed."""
    status = Banner(outcome.message, outcome.tone) if outcome.message else None
    undo = UndoAction(new_nonce(), outcome.undo) if outcome.undo is not None else None
    return screen_card(outcome.screen, tz, now, status=status, undo=undo, entered=outcome.entered)


def undo_conflict_view_card(conflict: UndoConflict, tz: ZoneInfo, now: datetime) -> Card:
    """What the teacher saved, what Graph holds now and who changed it, what undo would put back; their choice."""
    anyway = None
    if conflict.write_id is not None:
        anyway = UndoAction(new_nonce(), conflict.write_id, anyway=True, known_modified=conflict.known_modified)
    return undo_conflict_card(
        *conflict.view.subject,
        yours=grade_values(conflict.mine),
        restores=grade_values(conflict.restores),
        changed_by=conflict.changed_by,
        tz=tz,
        now=now,
        undo_anyway=anyway,
    )


def conflict_view_card(conflict: Conflict, mine: GradeAction, tz: ZoneInfo, now: datetime) -> Card:
    return conflict_card(*conflict.view.subject, mine, tz=tz, now=now, nonce=new_nonce())


def confirm_view_card(confirm: Confirm) -> Card:
    """The confirm step; its "Yes" button carries a fresh nonce, so the write happens at most once per card."""
    nonce = new_nonce()
    screen = confirm.screen
    if confirm.kind == "returnAll":
        action = ReturnAllAction(screen.education_class.id, screen.assignment.id, False, len(confirm.released), nonce)
        return confirm_card(action, screen.assignment, released=confirm.released)
    assert isinstance(screen, GradingView)
    ids = (screen.education_class.id, screen.assignment.id, screen.submission.id)
    single = _STEPS[confirm.kind](*ids, False, nonce)
    unsubmitted = confirm.kind == "return" and screen.submission.status.value == "working"
    warning = "This student has not turned the work in yet." if unsubmitted else None
    return confirm_card(
        single, screen.assignment, student_name=screen.student_name, submission=screen.submission, warning=warning
    )
