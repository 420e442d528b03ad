"""Cards that belong to no one feature: help, refusals, errors, sign-in and signed out; and the signIn payload."""

from __future__ import annotations

from typing import Final

from cards.blocks import ActionPayload, Card, card, execute, facts, heading, line, plain
from cards.lists import OpenUngradedAction, ShowAssignmentsAction


class SignInAction(ActionPayload, verb="signIn"):
    """The sign-in button; its invoke is answered with Teams' loginRequest."""


DEFAULT_COMMANDS: Final[tuple[tuple[str, str], ...]] = (
    ("help", "Show this list."),
    ("classes", "Your classes, with buttons for their assignments and ungraded work."),
    ("assignments", "A class's assignments: due dates and how many are turned in, graded and returned."),
    ("ungraded", "Work waiting for a grade, counted per class and assignment ('ungraded Biology' for one class)."),
    ("grade [assignment]", "Grade an assignment one submission at a time, right here in the chat."),
    ("undo", "Undo your last grade change (until you return it)."),
    ("remind", "Reminders about work waiting: 'remind' for settings, 'remind on', 'remind off'."),
    ("signout", "Delete Gradebot's stored sign-in for you."),
)
_INTRO = (
    "Gradebot shows what is waiting to be graded and lets you grade from Teams. "
    "Grades you save stay drafts: students see them only after you choose Return."
)


def help_card(*, class_id: str | None = None, not_understood: str | None = None) -> Card:
    """What Gradebot does, each command with a one-line description, and buttons for the common views; `class_id`
    (the current team's class) adds an Assignments button, `not_understood` is a sentence shown first."""
    return card(
        [
            line(plain(not_understood, 200), bold=True, color="Attention") if not_understood else None,
            heading("Gradebot"),
            line(_INTRO),
            line("Commands", bold=True),
            facts([(plain(command, 40), plain(description, 200)) for command, description in DEFAULT_COMMANDS]),
        ],
        [
            execute("Ungraded work", OpenUngradedAction(class_id, 0)),
            execute("Assignments", ShowAssignmentsAction(class_id)) if class_id else None,
        ],
    )


def refusal_card(message: str) -> Card:
    """A polite no (not a teacher of this class, wrong place for student data…)."""
    return card([line(plain(message, 500))])


def error_card(message: str) -> Card:
    """Something failed; `message` is for the teacher (no stack traces or ids)."""
    return card([line("Something went wrong", bold=True, color="Attention"), line(plain(message, 500))])


def sign_in_card(message: str = "Sign in so Gradebot can read and grade your classes.") -> Card:
    """A sign-in prompt; the button's invoke is answered with Teams' loginRequest."""
    return card([line(plain(message, 500))], [execute("Sign in", SignInAction())])


def signed_out_card() -> Card:
    return card([line("You're signed out of Gradebot. Its stored sign-in for you has been deleted.")])
