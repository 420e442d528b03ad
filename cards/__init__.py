"""Adaptive Card views: pure functions from data to card JSON, and the typed Action.Execute payloads."""

from cards.actions import (
    ACTIONS,
    FEEDBACK_MAX_LENGTH,
    ActionDataError,
    ActionPayload,
    UnknownActionError,
    check_points,
    new_nonce,
    parse_action,
)
from cards.assignments import assignments_card
from cards.channel import neutral_channel_card
from cards.classes import class_picker_card, classes_card
from cards.confirm import confirm_card, conflict_card
from cards.digest import DigestEntry, digest_card
from cards.grading import all_graded_card, grading_card, saving_card
from cards.messages import (
    error_card,
    help_card,
    refusal_card,
    sign_in_card,
    signed_out_card,
    undo_result_card,
)
from cards.reminders import ReminderSettingsView, reminder_settings_card
from cards.render import MAX_CARD_BYTES, Banner, Card, card_size
from cards.ungraded import paginate_ungraded, ungraded_card, ungraded_page_card

__all__ = [
    "ACTIONS",
    "FEEDBACK_MAX_LENGTH",
    "MAX_CARD_BYTES",
    "ActionDataError",
    "ActionPayload",
    "Banner",
    "Card",
    "DigestEntry",
    "ReminderSettingsView",
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
    "grading_card",
    "help_card",
    "neutral_channel_card",
    "new_nonce",
    "paginate_ungraded",
    "parse_action",
    "refusal_card",
    "reminder_settings_card",
    "saving_card",
    "sign_in_card",
    "signed_out_card",
    "undo_result_card",
    "ungraded_card",
    "ungraded_page_card",
]
