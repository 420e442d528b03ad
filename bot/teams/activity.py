"""One inbound activity as a Gradebot turn: who and where (activity → Turn, a team's class looked up once), messages,
card actions and sign-in invokes routed to the turn handler, and replies as activities — with the edge's one broad
`except`, so no error in a turn becomes HTTP 500."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from azure.core.exceptions import DeserializationError
from botbuilder.core import InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.schema import Activity, ActivityTypes
from msrest.exceptions import ClientException

from bot.kernel.router import Router
from bot.kernel.turn import (
    Caller,
    Card,
    CardReply,
    ConversationInfo,
    ConversationKind,
    Member,
    NewCardReply,
    Reply,
    SignInReply,
    TextReply,
    Turn,
)
from bot.teams.wire import card_message, to_json
from bot.telemetry.context import note, scope
from bot.telemetry.metrics import TURNS
from cards.general import sign_in_card

log = logging.getLogger(__name__)

MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
PRECONDITION_TYPE = "application/vnd.microsoft.error.preconditionFailed"
CONNECTOR_FAILURES = (ClientException, DeserializationError, OSError)
"""What a call to the conversation's serviceUrl raises when the Bot Connector refuses it, cannot be reached, or
answers something that is not the Bot Connector's JSON (msrest's ClientException covers HttpOperationError)."""
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_INVOKES = frozenset({"adaptiveCard/action", "signin/tokenExchange", "signin/verifyState", "signin/failure"})
_TYPES = frozenset({"message", "invoke", "conversationUpdate", "installationUpdate"})


def _operation(activity: Activity) -> str:
    """What a turn is, from Teams' own vocabulary only (the body is untrusted: no other text reaches the logs)."""
    if activity.type == ActivityTypes.invoke:
        return activity.name if activity.name in _INVOKES else "invoke"
    return activity.type if activity.type in _TYPES else "other"


def _invoke(status: int, body: object | None = None) -> Activity:
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))


def _action_response(status_code: int, content_type: str, value: object) -> Activity:
    """An Action.Execute answer: always HTTP 200; the body's statusCode/type/value carry the real result."""
    return _invoke(200, {"statusCode": status_code, "type": content_type, "value": value})


def _strip_mentions(activity: Activity) -> str:
    """The message text without @mentions of the bot (botbuilder's remove_recipient_mention fails on odd entities)."""
    text = activity.text if isinstance(activity.text, str) else ""
    recipient = activity.recipient.id if activity.recipient is not None else None
    for entity in activity.entities or []:
        properties = _object(getattr(entity, "additional_properties", None))
        mentioned, mention_text = _object(properties.get("mentioned")), properties.get("text")
        to_bot = getattr(entity, "type", None) == "mention" and recipient and mentioned.get("id") == recipient
        if to_bot and isinstance(mention_text, str) and mention_text:
            text = text.replace(mention_text, " ")
    return " ".join(_MENTION.sub(" ", text).split())


def _conversation_kind(activity: Activity) -> ConversationKind:
    conversation = activity.conversation
    kind = (conversation.conversation_type if conversation else None) or "personal"
    if kind == "channel":
        return "channel"
    return "groupChat" if kind == "groupChat" or (conversation and conversation.is_group) else "personal"


def _object(value: object) -> dict[str, Any]:
    """A JSON object from untrusted activity content, or an empty one."""
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


class TeamsTurnIO:
    """The per-turn `TeamsIO`: the members of this conversation, through the turn's connector."""

    def __init__(self, context: TurnContext, team_id: str | None) -> None:
        self._context = context
        self._team_id = team_id

    async def members(self) -> list[Member]:
        members: list[Member] = []
        token: str | None = None
        while True:
            if self._team_id:
                page = await TeamsInfo.get_paged_team_members(self._context, self._team_id, token, 500)
            else:
                page = await TeamsInfo.get_paged_members(self._context, token, 500)
            members += [Member(account.id, account.aad_object_id) for account in page.members or []]
            token = page.continuation_token
            if not token:
                return members


async def _rewrite(context: TurnContext, updates: tuple[tuple[str, Card], ...]) -> None:
    """Rewrite earlier cards of this 1:1 chat that the turn made out of date; one that is gone is not an error."""
    for activity_id, card in updates:
        try:
            await context.update_activity(card_message(card, activity_id))
        except CONNECTOR_FAILURES as exc:
            log.info("could not rewrite an out-of-date card %s: %s", activity_id, type(exc).__name__)


class GradebotBot:
    """Routes each activity type to the turn handler; its broad `except` keeps errors in a turn from becoming HTTP
    500 (the edge's other one guards botbuilder's authentication)."""

    def __init__(self, handler: Router) -> None:
        self._handler = handler
        self._team_classes: dict[str, str | None] = {}

    async def on_turn(self, context: TurnContext) -> None:
        """One turn in a telemetry scope: every log line of it carries the activity id, the conversation's hash,
        the operation and the outcome, and it ends with one `turn handled` line."""
        activity = context.activity
        conversation_id = activity.conversation.id if activity.conversation else None
        started = time.perf_counter()
        with scope(
            activity=str(activity.id) if activity.id else None,
            conversation_id=str(conversation_id) if conversation_id else None,
            operation=_operation(activity),
        ) as turn:
            try:
                caller, conversation = await self._describe(context)
                if activity.type in _TYPES:
                    await self._handler.conversation_seen(caller, conversation)
                if activity.type == ActivityTypes.message and caller is not None:
                    await self._on_message(context, caller, conversation)
                elif activity.type == ActivityTypes.invoke:
                    await self._on_invoke(context, caller, conversation)
                elif activity.type in (ActivityTypes.installation_update, ActivityTypes.conversation_update):
                    await self._on_installed(context, caller, conversation)
            except CONNECTOR_FAILURES as exc:
                note(outcome="connector failed")
                log.warning("could not reach the conversation's serviceUrl (or it refused): %s", type(exc).__name__)
                await self._apologize(context)
            except Exception:  # the edge: log ids only (the scope has them), answer something sensible, never a 500
                note(outcome="failed")
                log.exception("turn failed")
                await self._apologize(context)
            finally:
                turn.outcome = turn.outcome or "ok"
                TURNS.add(1, {"gradebot.operation": turn.operation or "", "gradebot.outcome": turn.outcome})
                log.info("turn handled in %.0f ms", (time.perf_counter() - started) * 1000)

    async def _describe(self, context: TurnContext) -> tuple[Caller | None, ConversationInfo]:
        """Who and where, from the activity and Teams' channelData (its team's id, class id and tenant id)."""
        activity = context.activity
        channel_data = _object(activity.channel_data)
        team = _object(channel_data.get("team"))
        team_id, group_id = _text(team.get("id")), _text(team.get("aadGroupId"))
        conversation = ConversationInfo(
            id=activity.conversation.id if activity.conversation else "",
            kind=_conversation_kind(activity),
            service_url=activity.service_url or "",
            team_id=team_id,
            class_id=await self._class_id(context, team_id, group_id) if team_id else None,
            reference=to_json(TurnContext.get_conversation_reference(activity)),
        )
        sender = activity.from_property
        if sender is None or not sender.id or not getattr(sender, "aad_object_id", None):
            return None, conversation
        tenant = _object(channel_data.get("tenant")).get("id")
        tenant_id = str(tenant or (activity.conversation.tenant_id if activity.conversation else "") or "")
        return Caller(sender.id, sender.aad_object_id, tenant_id, activity.local_timezone or None), conversation

    async def _class_id(self, context: TurnContext, team_id: str, hinted: str | None) -> str | None:
        """The class behind a team: from the activity, else from team details (fetched once, off the event loop)."""
        if hinted:
            self._team_classes[team_id] = hinted
        if team_id in self._team_classes:
            return self._team_classes[team_id]
        try:
            client = await TeamsInfo.get_teams_connector_client(context)
            # botbuilder's TeamsInfo.get_team_details is a blocking HTTP call inside an async def.
            details = await asyncio.to_thread(client.teams.get_team_details, team_id)
        except CONNECTOR_FAILURES as exc:
            log.warning("team details unavailable for team %s: %s", team_id, type(exc).__name__)
            return None
        self._team_classes[team_id] = getattr(details, "aad_group_id", None)
        return self._team_classes[team_id]

    async def _on_message(self, context: TurnContext, caller: Caller, conversation: ConversationInfo) -> None:
        turn = Turn(caller=caller, conversation=conversation, text=_strip_mentions(context.activity))
        reply = await self._handler.handle(turn, TeamsTurnIO(context, conversation.team_id))
        await self._send(context, conversation, reply)

    async def _send(self, context: TurnContext, conversation: ConversationInfo, reply: Reply) -> None:
        """Post a reply as a message, after rewriting the cards of a 1:1 chat it made out of date."""
        if isinstance(reply, CardReply | NewCardReply):
            if not conversation.is_shared:
                await _rewrite(context, reply.updates)
            message = card_message(reply.card)
        elif isinstance(reply, SignInReply):
            message = card_message(sign_in_card(reply.message))
        else:
            message = MessageFactory.text(reply.text if isinstance(reply, TextReply) else reply.message)
        posted = await context.send_activity(message)
        if isinstance(reply, NewCardReply) and reply.posted is not None and posted is not None and posted.id:
            reply.posted(posted.id)

    async def _on_installed(self, context: TurnContext, caller: Caller | None, conversation: ConversationInfo) -> None:
        """Welcome a teacher once in a new 1:1 chat (Teams sends both installationUpdate and conversationUpdate)."""
        activity = context.activity
        added = [m.id for m in activity.members_added or [] if m is not None]
        bot_added = (
            activity.type == ActivityTypes.installation_update and activity.action in ("add", "add-upgrade")
        ) or (activity.recipient is not None and activity.recipient.id in added)
        if not bot_added or caller is None or conversation.kind != "personal":
            return
        if await self._handler.first_welcome(conversation):
            turn = Turn(caller=caller, conversation=conversation, text="help")
            await self._send(context, conversation, await self._handler.handle(turn, TeamsTurnIO(context, None)))

    async def _on_invoke(self, context: TurnContext, caller: Caller | None, conversation: ConversationInfo) -> None:
        activity = context.activity
        value = _object(activity.value)
        response = _invoke(HTTPStatus.OK)
        if caller is None:
            note(outcome="invalid")
            problem = "The invoke has no caller: Teams sends from.id and from.aadObjectId."
            response = _invoke(HTTPStatus.BAD_REQUEST, {"error": problem})
        elif activity.name == "adaptiveCard/action":
            response = await self._on_card_action(context, caller, conversation, value)
        elif activity.name == "signin/tokenExchange":
            exchange_id, token = str(value.get("id") or ""), str(value.get("token") or "")
            if not await self._handler.gate.exchange_once(caller, exchange_id, token):
                note(outcome="sso refused")
                detail = "The bot is unable to exchange token. Proceed with regular login."
                body = {"id": value.get("id"), "connectionName": value.get("connectionName"), "failureDetail": detail}
                response = _invoke(HTTPStatus.PRECONDITION_FAILED, body)
        elif activity.name == "signin/verifyState":
            state = str(value.get("state") or "")
            verified = await self._handler.gate.verify_sign_in(caller.tenant_id, caller.aad_object_id, state)
            note(outcome="ok" if verified else "sign-in code refused")
            response = _invoke(HTTPStatus.OK if verified else HTTPStatus.NOT_FOUND)
        elif activity.name == "signin/failure":
            log.info("Teams reported a sign-in failure: code=%s", value.get("code"))
        await context.send_activity(response)

    async def _on_card_action(
        self, context: TurnContext, caller: Caller, conversation: ConversationInfo, value: Mapping[str, Any]
    ) -> Activity:
        """A card's button as a turn; returns the Action.Execute answer (a new card also posted below in a 1:1 chat)."""
        action = _object(value.get("action"))
        authentication = _object(value.get("authentication"))
        turn = Turn(
            caller=caller,
            conversation=conversation,
            verb=str(action.get("verb") or ""),
            data=_object(action.get("data")),
            reply_to_id=context.activity.reply_to_id,
            sso_token=str(authentication.get("token")) if authentication.get("token") else None,
            sign_in_state=str(value.get("state")) if value.get("state") else None,
        )
        reply = await self._handler.handle(turn, TeamsTurnIO(context, conversation.team_id))
        if isinstance(reply, NewCardReply) and not conversation.is_shared:
            await self._send(context, conversation, reply)  # the new card below, the pressed one answered in place
            reply = TextReply(reply.note)
        elif isinstance(reply, CardReply) and not conversation.is_shared:
            await _rewrite(context, reply.updates)
        if isinstance(reply, CardReply | NewCardReply):
            return _action_response(200, "application/vnd.microsoft.card.adaptive", reply.card)
        if isinstance(reply, TextReply):
            return _action_response(200, MESSAGE_TYPE, reply.text)
        if isinstance(reply, SignInReply):
            resource_id, resource_uri = self._handler.gate.sso_resource
            login: dict[str, Any] = {
                "text": reply.message,
                "connectionName": "gradebot",
                "buttons": [{"type": "signin", "title": "Sign in", "text": "Sign in", "value": reply.sign_in_url}],
            }
            if reply.offer_sso:
                login["tokenExchangeResource"] = {"id": resource_id, "uri": resource_uri, "providerId": ""}
            return _action_response(401, "application/vnd.microsoft.activity.loginRequest", login)
        return _action_response(412, PRECONDITION_TYPE, {"code": "412", "message": reply.message})

    async def _apologize(self, context: TurnContext) -> None:
        text = "Sorry, something went wrong on Gradebot's side. Nothing you typed was lost; please try again."
        try:
            if context.activity.type == ActivityTypes.invoke:
                if not context.turn_state.get(context.adapter._INVOKE_RESPONSE_KEY):
                    await context.send_activity(_action_response(200, MESSAGE_TYPE, text))
            elif context.activity.type == ActivityTypes.message:
                await context.send_activity(MessageFactory.text(text))
        except CONNECTOR_FAILURES as exc:
            log.warning("could not deliver the apology for activity %s: %s", context.activity.id, type(exc).__name__)
