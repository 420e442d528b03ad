"""Adaptive Card views (pure functions from data to card JSON) and the typed Action.Execute payloads they carry.

`ACTIONS` and `parse_action` stand in for the router until it registers payload types itself.
"""

from typing import Final

from cards.blocks import (
    MAX_CARD_BYTES,
    ActionDataError,
    ActionPayload,
    Banner,
    Card,
    GradeValues,
    UnknownActionError,
    card_size,
    format_points,
    new_nonce,
    outcomes_modified_at,
    score_text,
    time_zone,
)
from cards.general import SignInAction, error_card, help_card, refusal_card, sign_in_card, signed_out_card
from cards.grading import (
    FEEDBACK_MAX_LENGTH,
    ConfirmableAction,
    ExcuseAction,
    GradeAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    SkipAction,
    UndoAction,
    all_graded_card,
    check_points,
    confirm_card,
    conflict_card,
    grading_card,
    parse_feedback,
    undo_conflict_card,
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
    paginate_ungraded,
    ungraded_card,
    ungraded_page_card,
)
from cards.reminders import (
    WEEKDAYS,
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
    "FEEDBACK_MAX_LENGTH",
    "MAX_CARD_BYTES",
    "WEEKDAYS",
    "ActionDataError",
    "ActionPayload",
    "Banner",
    "Card",
    "ConfirmableAction",
    "DigestEntry",
    "ExcuseAction",
    "GradeAction",
    "GradeValues",
    "OpenGradingAction",
    "PickClassAction",
    "ReassignAction",
    "RefreshViewAction",
    "RemindOffAction",
    "ReminderSettingsView",
    "ResolveConflictAction",
    "ReturnAction",
    "ReturnAllAction",
    "SaveRemindersAction",
    "ShowAssignmentsAction",
    "ShowUngradedAction",
    "SignInAction",
    "SkipAction",
    "SnoozeAction",
    "UndoAction",
    "UnknownActionError",
    "all_graded_card",
    "assignments_card",
    "card_size",
    "check_points",
    "class_picker_card",
    "classes_card",
    "confirm_card",
    "conflict_card",
    "digest_card",
    "error_card",
    "format_points",
    "grading_card",
    "help_card",
    "neutral_channel_card",
    "new_nonce",
    "outcomes_modified_at",
    "paginate_ungraded",
    "parse_action",
    "parse_feedback",
    "refusal_card",
    "reminder_settings_card",
    "score_text",
    "sign_in_card",
    "signed_out_card",
    "time_zone",
    "undo_conflict_card",
    "ungraded_card",
    "ungraded_page_card",
]
