"""Turns grading results into cards: one place that knows which card shows which use-case outcome."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from bot.grading import AllGraded, Confirm, Conflict, GradingView, Outcome, Screen
from cards import (
    Banner,
    Card,
    all_graded_card,
    confirm_card,
    conflict_card,
    grading_card,
    new_nonce,
)
from cards.actions import (
    ExcuseAction,
    GradeAction,
    ReassignAction,
    ReturnAction,
    ReturnAllAction,
)

_TONES = {"good": Banner.good, "attention": Banner.error, "warning": Banner.warning}


def screen_card(
    screen: Screen, tz: ZoneInfo, now: datetime, *, status: Banner | None = None, entered: GradeAction | None = None
) -> Card:
    """The grading card for a submission, or "all graded" for the assignment."""
    if isinstance(screen, AllGraded):
        return all_graded_card(
            screen.assignment, screen.education_class, screen.returnable, nonce=new_nonce(), status=status
        )
    return view_card(screen, tz, now, status=status, entered=entered)


def view_card(
    view: GradingView, tz: ZoneInfo, now: datetime, *, status: Banner | None = None, entered: GradeAction | None = None
) -> Card:
    if status is None and view.pending:
        status = Banner.warning(
            "A change to this grade is still being saved to Microsoft Graph; Gradebot keeps retrying it."
        )
    return grading_card(
        view.education_class,
        view.assignment,
        view.submission,
        view.student_name,
        tz=tz,
        now=now,
        nonce=new_nonce(),
        position=view.position or None,
        waiting=view.waiting if view.position else None,
        rubric=view.rubric,
        graded_not_returned=view.returnable,
        status=status,
        entered=entered,
    )


def outcome_card(outcome: Outcome, tz: ZoneInfo, now: datetime) -> Card:
    status = _TONES[outcome.tone](outcome.message) if outcome.message else None
    return screen_card(outcome.screen, tz, now, status=status)


def conflict_view_card(conflict: Conflict, mine: GradeAction, tz: ZoneInfo, now: datetime) -> Card:
    view = conflict.view
    return conflict_card(
        view.education_class,
        view.assignment,
        view.submission,
        view.student_name,
        mine,
        tz=tz,
        now=now,
        nonce=new_nonce(),
    )


def confirm_view_card(confirm: Confirm) -> Card:
    """The confirm step; its "Yes" button carries a fresh nonce, so the write happens at most once per card."""
    nonce = new_nonce()
    screen = confirm.screen
    if confirm.kind == "returnAll":
        action = ReturnAllAction(screen.education_class.id, screen.assignment.id, False, confirm.count, nonce)
        return confirm_card(action, screen.assignment)
    assert isinstance(screen, GradingView)
    ids = (screen.education_class.id, screen.assignment.id, screen.submission.id)
    single: ReturnAction | ReassignAction | ExcuseAction
    if confirm.kind == "return":
        single = ReturnAction(*ids, False, nonce)
    elif confirm.kind == "reassign":
        single = ReassignAction(*ids, False, nonce)
    else:
        single = ExcuseAction(*ids, False, nonce)
    warning = None
    if confirm.kind == "return" and screen.submission.status.value == "working":
        warning = "This student has not turned the work in yet."
    return confirm_card(
        single, screen.assignment, student_name=screen.student_name, submission=screen.submission, warning=warning
    )
