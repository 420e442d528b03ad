"""The neutral types of a turn: a `Turn` in, `Reply` values out, the per-turn `TeamsIO` seam, and the `Teacher` asking.
bot/teams translates botbuilder activities into these; nothing else in Gradebot sees botbuilder."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Literal, Protocol

from graph.connection import TokenProvider

ConversationKind = Literal["personal", "channel", "groupChat"]
Card = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Caller:
    """The Teams user behind a turn."""

    teams_id: str
    """The user's `29:` id as this bot sees it (what `refresh.userIds` needs)."""
    aad_object_id: str
    """The user's Entra object id (= educationUser id)."""
    tenant_id: str
    timezone: str | None = None
    """IANA name from the Teams client's `localTimezone`, when it sent one."""


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    id: str
    kind: ConversationKind
    service_url: str
    team_id: str | None = None
    class_id: str | None = None
    """The class team's aadGroupId, which is the educationClass id (None outside a team or if unknown)."""
    reference: Mapping[str, Any] = field(default_factory=dict, compare=False)
    """The serialized botbuilder ConversationReference, opaque outside bot/teams."""

    @property
    def is_shared(self) -> bool:
        """True where others can see what the bot posts (channels and group chats)."""
        return self.kind != "personal"


@dataclass(frozen=True, slots=True)
class Turn:
    """One thing the user did: a message (`text`) or a card action (`verb` + `data`)."""

    caller: Caller
    conversation: ConversationInfo
    text: str = ""
    verb: str | None = None
    data: Mapping[str, object] = field(default_factory=dict)
    reply_to_id: str | None = None
    sso_token: str | None = None
    """SSO token Teams attached to an Action.Execute after a loginRequest (`value.authentication.token`)."""
    sign_in_state: str | None = None
    """Code from the nominal sign-in page (`value.state` on Action.Execute, or `signin/verifyState`)."""

    @property
    def is_action(self) -> bool:
        return self.verb is not None


@dataclass(frozen=True, slots=True)
class CardRef:
    """Where the teacher's card lives, so a write finished in the background can update it."""

    conversation_id: str
    activity_id: str | None
    shared: bool

    def payload(self) -> dict[str, Any]:
        return {"conversationId": self.conversation_id, "activityId": self.activity_id, "shared": self.shared}


Updates = tuple[tuple[str, Card], ...]
"""Other cards the bot posted in this 1:1 chat to rewrite, as (activity id, card): ones this turn made out of date."""


@dataclass(frozen=True, slots=True)
class CardReply:
    """Send (message) or replace in place (invoke) with this card; in a 1:1 chat also rewrite `updates`."""

    card: Card
    updates: Updates = ()


@dataclass(frozen=True, slots=True)
class NewCardReply:
    """Post `card` as a new message below and leave the card whose button was pressed in place (lists stay lists):
    the invoke is answered with `note`, which leaves it unchanged. A message turn just sends `card`. In a shared
    conversation `card` replaces the pressed card for the presser only, as any invoke answer does: posting it would
    show it to everyone there."""

    card: Card
    note: str = "Opened below."
    updates: Updates = ()
    posted: Callable[[str], object] | None = field(default=None, compare=False)
    """Told the new message's activity id once it is posted (1:1 chats only)."""


@dataclass(frozen=True, slots=True)
class TextReply:
    text: str


@dataclass(frozen=True, slots=True)
class SignInReply:
    """The caller must sign in: a 401 loginRequest for an invoke, a sign-in card for a message."""

    sign_in_url: str
    message: str = "Sign in to let Gradebot read and grade your classes."
    offer_sso: bool = True


@dataclass(frozen=True, slots=True)
class PreconditionFailedReply:
    """A Teams SSO token could not be exchanged (invoke answered 412 so Teams falls back to the sign-in button)."""

    message: str = "Gradebot could not use your Teams sign-in. Sign in with the button instead."


Reply = CardReply | NewCardReply | TextReply | SignInReply | PreconditionFailedReply


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a Teams conversation as the Bot Connector lists it."""

    teams_id: str
    aad_object_id: str | None


class TeamsIO(Protocol):
    """What a handler may ask of Teams during a turn (implemented by bot/teams/activity.py)."""

    async def members(self) -> list[Member]:
        """Everyone in the team (or chat) this turn came from."""


class DeliveryError(Exception):
    """The Bot Connector refused a proactive send or update."""

    def __init__(self, status: int, retry_after: float | None, code: str | None) -> None:
        super().__init__(f"Bot Connector answered {status} ({code or 'no code'})")
        self.status = status
        self.retry_after = retry_after

    @property
    def is_blocked(self) -> bool:
        """403: the user blocked or removed the app, so messages to them cannot be delivered."""
        return self.status == HTTPStatus.FORBIDDEN

    @property
    def is_transient(self) -> bool:
        """Worth retrying (after Retry-After when given): throttling, precondition races, server errors, and a
        connector that could not be reached (status 0)."""
        return self.status in (0, HTTPStatus.TOO_MANY_REQUESTS, HTTPStatus.PRECONDITION_FAILED) or self.status >= 500


@dataclass(frozen=True, slots=True)
class Teacher:
    """The Teams user asking, with one Graph token provider for the whole turn (so the token is fetched once)."""

    tenant_id: str
    aad_object_id: str
    token: TokenProvider = field(compare=False, repr=False)
    app_only: bool = False
    """The token is the app's own (application permissions, for reminders): /me paths are unavailable."""
