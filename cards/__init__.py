"""Adaptive Card views (pure functions from data to card JSON) and the typed Action.Execute payloads they carry.

Exports what bot/ and app.py use; `ACTIONS` and `parse_action` stand in for a router that registers payload types.
"""

from typing import Final

from cards.blocks import ActionDataError, ActionPayload, Banner, Card, UnknownActionError, new_nonce
from cards.general import SignInAction, error_card, help_card, refusal_card, sign_in_card, signed_out_card
from cards.grading import (
    ExcuseAction,
    GradeAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    SkipAction,
    UndoAction,
    all_graded_card,
    confirm_card,
    conflict_card,
    grading_card,
)
from cards.lists import (
    OpenGradingAction,
    PickClassAction,
    RefreshViewAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    assignments_card,
    class_picker_card,
    classes_card,
    neutral_channel_card,
    ungraded_page_card,
)
from cards.reminders import (
    DigestEntry,
    ReminderSettingsView,
    RemindOffAction,
    SaveRemindersAction,
    SnoozeAction,
    digest_card,
    reminder_settings_card,
)

ACTIONS: Final[dict[str, type[ActionPayload]]] = {
    payload.VERB: payload
    for payload in (
        PickClassAction,
        ShowAssignmentsAction,
        ShowUngradedAction,
        RefreshViewAction,
        OpenGradingAction,
        GradeAction,
        SkipAction,
        ReturnAction,
        ReturnAllAction,
        ReassignAction,
        ExcuseAction,
        ResolveConflictAction,
        UndoAction,
        SnoozeAction,
        SaveRemindersAction,
        RemindOffAction,
        SignInAction,
    )
}


def parse_action(verb: object, data: object) -> ActionPayload:
    """The typed payload for an Action.Execute invoke; raises UnknownActionError or ActionDataError."""
    payload_type = ACTIONS.get(verb) if isinstance(verb, str) else None
    if payload_type is None:
        raise UnknownActionError(verb)
    return payload_type.parse(data)


__all__ = [
    "ACTIONS",
    "ActionDataError",
    "ActionPayload",
    "Banner",
    "Card",
    "DigestEntry",
    "ReminderSettingsView",
    "all_graded_card",
    "assignments_card",
    "class_picker_card",
    "classes_card",
    "confirm_card",
    "conflict_card",
    "digest_card",
    "error_card",
    "grading_card",
    "help_card",
    "neutral_channel_card",
    "new_nonce",
    "parse_action",
    "refusal_card",
    "reminder_settings_card",
    "sign_in_card",
    "signed_out_card",
    "ungraded_page_card",
]
