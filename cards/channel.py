"""The neutral card posted where students can see it (channels, group chats): no student data, only a refresh.

Teachers listed in `refresh.userIds` get their own view through a user-specific refresh (Action.Execute
`refreshView`); the bot decides on every refresh, from the caller's identity, what to answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from microsoft_teams.cards import ExecuteAction, RefreshDefinition

from cards.actions import RefreshViewAction
from cards.render import Card, card, execute, heading, line, plain

MAX_REFRESH_USERS: Final = 60
"""Teams auto-refreshes a card for at most 60 listed users."""

_TITLES = {"assignments": "Assignments", "ungraded": "Work waiting to be graded"}


def refresh_user_ids(teacher_ids: Sequence[str]) -> list[str]:
    """Distinct, non-empty Teams user ids in the given order, at most 60."""
    unique = dict.fromkeys(teacher_id for teacher_id in teacher_ids if isinstance(teacher_id, str) and teacher_id)
    return list(unique)[:MAX_REFRESH_USERS]


def neutral_channel_card(refresh: RefreshViewAction, class_name: str | None, teacher_ids: Sequence[str]) -> Card:
    """A card safe for everyone in the conversation; its refresh brings each listed teacher their own view.

    `teacher_ids` are the teachers' Teams ids (`29:…`). With more than 60 (or none known), a "Show my view"
    button lets the others ask for their view by hand.
    """
    user_ids = refresh_user_ids(teacher_ids)
    distinct = len(dict.fromkeys(teacher_ids))
    title = _TITLES[refresh.view] + (f": {plain(class_name)}" if class_name else "")
    refresh_definition = RefreshDefinition(
        action=ExecuteAction(title="Show my view", verb=refresh.VERB, data=refresh.to_data()),
        user_ids=user_ids,
    )
    manual = distinct > MAX_REFRESH_USERS or not user_ids
    return card(
        [
            heading(title),
            line("Teachers of this class see their own details here. Everyone else sees only this note."),
            line("Gradebot never posts student names, grades or feedback in a shared chat.", subtle=True),
        ],
        [execute("Show my view", refresh)] if manual else [],
        refresh=refresh_definition,
        fallback_text=title,
    )
