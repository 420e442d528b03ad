"""The typed router: command words and card payload types → the one handler each, and the one place where an
exception in a turn becomes what the teacher sees. It also keeps the conversation bookkeeping every turn needs."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from cachetools import TTLCache

from bot.kernel.errors import (
    NotAClassTeamError,
    NotATeacherError,
    SignInRequiredError,
    SsoTokenError,
    UserError,
    graph_error_text,
)
from bot.kernel.turn import (
    Caller,
    CardRef,
    CardReply,
    ConversationInfo,
    PreconditionFailedReply,
    Reply,
    SignInReply,
    Teacher,
    TeamsIO,
    TextReply,
    Turn,
)
from bot.telemetry.context import note, settle
from cards.blocks import ActionDataError, ActionPayload, time_zone
from cards.general import error_card, refusal_card
from graph.connection import TokenProvider
from graph.errors import GraphError
from storage.records import ConversationRecord, UserProfile
from storage.store import Store

log = logging.getLogger(__name__)

WELCOME_ONCE = timedelta(days=3650)
SEEN_REFRESH_S = 3600.0
"""A conversation (and its caller's profile) stored unchanged this recently is not written again on every turn; its
`updated_at` ("most recently used") is refreshed at most this often."""
SEEN_KEPT = 20_000
P = TypeVar("P", bound=ActionPayload)


@dataclass(frozen=True, slots=True)
class Context:
    """One turn as the handlers see it: who asks, where, in which time zone, with which Graph token."""

    turn: Turn
    io: TeamsIO
    teacher: Teacher
    tz: ZoneInfo
    now: datetime

    @property
    def conversation(self) -> ConversationInfo:
        return self.turn.conversation

    @property
    def card_ref(self) -> CardRef:
        return CardRef(self.conversation.id, self.turn.reply_to_id, self.conversation.is_shared)


Command = Callable[[Context, str], Awaitable[Reply]]
Invalid = Callable[[Context, ActionDataError], Awaitable[Reply]]


class Gate(Protocol):
    """What the router and the edge need from identity: a token provider per turn, sign-in links, sign-in codes, SSO
    exchanges and the SSO resource (id, uri) for loginRequest answers."""

    def provider(self, tenant_id: str, aad_object_id: str, sso_token: str | None = None) -> TokenProvider: ...
    def sign_in_url(self, tenant_id: str, aad_object_id: str) -> str: ...
    async def verify_sign_in(self, tenant_id: str, aad_object_id: str, code: str) -> bool: ...
    async def exchange_once(self, caller: Caller, exchange_id: str, token: str) -> bool: ...

    sso_resource: tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Route:
    payload: type[ActionPayload]
    handler: Callable[[Context, Any], Awaitable[Reply]]
    invalid: Invalid | None


class Router:
    """Each command word and each payload type is registered once, by the room that owns it."""

    def __init__(self, *, gate: Gate, store: Store, clock: Callable[[], datetime]) -> None:
        self.gate = gate
        """Identity, which the edge also asks directly (SSO exchanges, sign-in codes, the SSO resource)."""
        self._store = store
        self._clock = clock
        self._commands: dict[str, Command] = {}
        self._actions: dict[str, _Route] = {}
        self._stored: TTLCache[object, bool] = TTLCache(SEEN_KEPT, SEEN_REFRESH_S)

    def command(self, word: str, handler: Command) -> None:
        if word in self._commands:
            raise ValueError(f"the command {word!r} is registered twice")
        self._commands[word] = handler

    def action(
        self, payload: type[P], handler: Callable[[Context, P], Awaitable[Reply]], *, invalid: Invalid | None = None
    ) -> None:
        """Route `payload.VERB` to `handler`; `invalid` answers card data that fails the payload's validation."""
        if payload.VERB in self._actions:
            raise ValueError(f"the verb {payload.VERB!r} is registered twice")
        self._actions[payload.VERB] = _Route(payload, handler, invalid)

    @property
    def commands(self) -> frozenset[str]:
        return frozenset(self._commands)

    @property
    def verbs(self) -> frozenset[str]:
        return frozenset(self._actions)

    async def handle(self, turn: Turn, io: TeamsIO) -> Reply:
        caller = turn.caller
        code = turn.sign_in_state
        if code and not await self.gate.verify_sign_in(caller.tenant_id, caller.aad_object_id, code):
            note(outcome="sign-in code refused")
            return TextReply("That sign-in code didn't match. Please sign in again.")
        token = self.gate.provider(caller.tenant_id, caller.aad_object_id, turn.sso_token)
        teacher = Teacher(caller.tenant_id, caller.aad_object_id, token)
        context = Context(turn, io, teacher, await self._timezone(caller), self._clock())
        try:
            reply = await (self._dispatch(context) if turn.is_action else self._run_command(context))
        except SignInRequiredError:
            note(outcome="sign-in needed")
            return SignInReply(self.gate.sign_in_url(caller.tenant_id, caller.aad_object_id))
        except SsoTokenError as exc:
            note(outcome="sso refused")
            log.info("SSO token refused for user %s: %s", caller.aad_object_id, exc)
            if turn.sso_token:
                return PreconditionFailedReply()
            return SignInReply(self.gate.sign_in_url(caller.tenant_id, caller.aad_object_id), offer_sso=False)
        except (NotATeacherError, NotAClassTeamError) as exc:
            note(outcome="refused")
            return CardReply(refusal_card(exc.message))
        except (UserError, ActionDataError) as exc:
            note(outcome="invalid")
            return CardReply(error_card(exc.message))
        except GraphError as exc:
            note(outcome="graph failed")
            log.warning("Graph failed for user %s: %s", caller.aad_object_id, exc)
            return CardReply(error_card(graph_error_text(exc)))
        settle("sign-in needed" if isinstance(reply, SignInReply | PreconditionFailedReply) else "ok")
        return reply

    async def _run_command(self, context: Context) -> Reply:
        word, _, rest = context.turn.text.strip().partition(" ")
        word = word.lower() if word.lower() in self._commands else "help"
        note(operation=word)  # never other typed text
        return await self._commands[word](context, rest.strip())

    async def _dispatch(self, context: Context) -> Reply:
        verb = context.turn.verb or ""
        route = self._actions.get(verb)
        note(operation=verb if route is not None else "unknown verb")
        if route is None:
            note(outcome="invalid")
            log.info("refused card data: unknown verb")
            return CardReply(error_card("That button belongs to an older version of Gradebot. Type 'help' to start."))
        try:
            payload = route.payload.parse(context.turn.data)
        except ActionDataError as exc:
            note(outcome="invalid")
            log.info("refused card data: verb=%s field=%s", verb, exc.field)
            if route.invalid is None:
                raise
            return await route.invalid(context, exc)
        return await route.handler(context, payload)

    async def conversation_seen(self, caller: Caller | None, conversation: ConversationInfo) -> None:
        """Remember where to reach this conversation (proactive messages) and the caller's Teams id and time zone;
        what this instance stored unchanged within SEEN_REFRESH_S is not written again."""
        now = self._clock()
        reference = dict(conversation.reference)
        bot = reference.get("bot")
        record = ConversationRecord(
            conversation_id=conversation.id,
            kind=conversation.kind,
            tenant_id=caller.tenant_id if caller else "",
            service_url=conversation.service_url,
            bot_id=str(bot.get("id") or "") if isinstance(bot, dict) else "",
            user_aad_id=caller.aad_object_id if caller and conversation.kind == "personal" else None,
            team_id=conversation.team_id,
            class_id=conversation.class_id,
            reference=reference,
            updated_at=now,
        )
        # The reference's activityId is the latest inbound activity's: it changes every turn and matters to nothing.
        unchanged = {**asdict(record), "reference": {**reference, "activityId": None}, "updated_at": None}
        stored = json.dumps(unchanged, sort_keys=True, default=str)
        if stored not in self._stored:
            await self._store.save_conversation(record)
            self._stored[stored] = True
        if caller is None:
            return
        seen = ("profile", caller.aad_object_id, caller.tenant_id, caller.teams_id, caller.timezone, record.service_url)
        if seen in self._stored:
            return
        known = await self._store.get_user_profile(caller.aad_object_id)
        timezone = caller.timezone if time_zone(caller.timezone) is not None else None
        profile = UserProfile(
            caller.aad_object_id,
            caller.tenant_id,
            known.upn if known else None,
            timezone or (known.timezone if known else None),
            now,
            teams_id=caller.teams_id,
            service_url=conversation.service_url,
        )
        if known is None or replace(known, updated_at=now) != profile:
            await self._store.save_user_profile(profile)
        self._stored[seen] = True

    async def first_welcome(self, conversation: ConversationInfo) -> bool:
        """True the first time this conversation should get the welcome card."""
        return await self._store.claim_once("welcome", conversation.id, self._clock(), WELCOME_ONCE)

    async def _timezone(self, caller: Caller) -> ZoneInfo:
        if zone := time_zone(caller.timezone):
            return zone
        profile = await self._store.get_user_profile(caller.aad_object_id)
        return (time_zone(profile.timezone) if profile else None) or ZoneInfo("UTC")
