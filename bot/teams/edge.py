"""The Teams edge: owns botbuilder's CloudAdapter, authenticates and runs each inbound activity (never a 500),
and sends proactive messages — cards posted and updated, 1:1 chats opened."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import jwt
from aiohttp import web
from botbuilder.core import TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes, ChannelAccount, ConversationParameters, ConversationReference
from msrest.exceptions import HttpOperationError
from msrest.serialization import Model

from bot.kernel.router import Router
from bot.kernel.turn import Card, DeliveryError
from bot.settings import Settings
from bot.teams.activity import CONNECTOR_FAILURES, GradebotBot
from bot.teams.auth import (
    BotConfiguration,
    ReusedCredentials,
    ReusingAuthentication,
    SigningKeysUnavailableError,
    looks_like_bot_framework_token,
)
from bot.teams.wire import card_message, read_activity, to_json
from graph.errors import parse_retry_after

log = logging.getLogger(__name__)


def _unusable(activity: Activity) -> str | None:
    """Why Gradebot cannot work with this activity (no type, nowhere to answer, no conversation), or None."""
    if not isinstance(activity.type, str) or not activity.type:
        return "The activity has no type."
    service_url = activity.service_url
    if not isinstance(service_url, str) or len(service_url) > 2048:
        return "The activity has no serviceUrl."
    parts = urlsplit(service_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The activity's serviceUrl is not an http(s) URL."
    conversation = activity.conversation
    if conversation is None or not isinstance(conversation.id, str) or not conversation.id:
        return "The activity has no conversation id."
    return None


class TeamsEdge:
    """Owns the CloudAdapter and the bot; processes inbound activities and sends proactive messages."""

    def __init__(self, handler: Router, settings: Settings) -> None:
        config = BotConfiguration(
            settings.app_id,
            settings.app_password,
            settings.app_type,
            settings.app_tenant_id,
            settings.bot_openid_metadata_url,
        )
        inner = ConfigurationBotFrameworkAuthentication(config, credentials_factory=ReusedCredentials(config))
        self._auth = ReusingAuthentication(inner)
        self._adapter = CloudAdapter(self._auth)
        self._app_id = settings.app_id
        self._bot = GradebotBot(handler)

    async def aclose(self) -> None:
        await self._auth.aclose()

    def may_be_authentic(self, auth_header: str) -> bool:
        """A cheap look at the Authorization header, before the body is parsed: False means answer 401 now (botbuilder
        4.17.1 crashes, 500, on a missing header in parameterized mode and on several malformed tokens)."""
        return (
            not self._app_id or self._auth.accepted_lately(auth_header) or looks_like_bot_framework_token(auth_header)
        )

    async def process(self, body: Mapping[str, Any], auth_header: str) -> web.Response:
        """Authenticate and run one inbound activity whose header passed `may_be_authentic`; never raises for bad
        input (401/400 instead)."""
        try:
            activity = read_activity(dict(body))
        except (TypeError, ValueError, AttributeError):  # msrest raises DeserializationError, a ValueError
            return web.json_response({"error": "The body is not a Bot Framework activity."}, status=400)
        problem = _unusable(activity)
        if problem is not None:
            return web.json_response({"error": problem}, status=400)
        try:
            result = await self._adapter.process_activity(auth_header, activity, self._bot.on_turn)
        except (PermissionError, jwt.PyJWTError) as exc:
            log.info("rejected an inbound activity: %s", type(exc).__name__)
            return web.Response(status=401)
        except SigningKeysUnavailableError as exc:
            log.warning("Bot Framework signing keys unavailable: %s", exc)
            return web.json_response({"error": "Signing keys unavailable; retry later."}, status=503)
        if result is None:
            return web.Response(status=201 if activity.type != ActivityTypes.invoke else 200)
        if result.body is None:
            return web.Response(status=int(result.status))
        body = to_json(result.body) if isinstance(result.body, Model) else result.body
        return web.json_response(body, status=int(result.status))

    async def send_card(self, reference: Mapping[str, Any], card: Card) -> str | None:
        """Post a card into a stored conversation; returns the new activity's id."""
        sent: list[str | None] = []

        async def callback(context: TurnContext) -> None:
            response = await context.send_activity(card_message(card))
            sent.append(response.id if response is not None else None)

        await self._continue(reference, callback)
        return sent[0] if sent else None

    async def update_card(self, reference: Mapping[str, Any], activity_id: str, card: Card) -> None:
        """Replace a card the bot posted earlier, for everyone in the conversation."""
        await self._continue(reference, lambda context: context.update_activity(card_message(card, activity_id)))

    async def open_personal_chat(self, service_url: str, tenant_id: str, user_teams_id: str) -> dict[str, Any]:
        """Open (or find) the bot's 1:1 chat with a user; returns its serialized conversation reference."""
        created: list[dict[str, Any]] = []
        params = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=f"28:{self._app_id}" if self._app_id else "28:gradebot"),
            members=[ChannelAccount(id=user_teams_id)],
            tenant_id=tenant_id,
            channel_data={"tenant": {"id": tenant_id}},
        )

        async def callback(context: TurnContext) -> None:
            created.append(TurnContext.get_conversation_reference(context.activity).serialize())

        await _deliver(self._adapter.create_conversation(self._app_id, callback, params, "msteams", service_url, None))
        return created[0]

    async def _continue(self, reference: Mapping[str, Any], callback: Callable[[TurnContext], Awaitable[None]]) -> None:
        ref = ConversationReference().deserialize(dict(reference))
        await _deliver(self._adapter.continue_conversation(ref, callback, self._app_id))


async def _deliver(call: Awaitable[object]) -> None:
    """A proactive call to the Bot Connector; a refusal or no answer raises DeliveryError."""
    try:
        await call
    except HttpOperationError as exc:
        raise _delivery_error(exc) from exc
    except CONNECTOR_FAILURES as exc:  # unreachable, or not the Bot Connector's answer: worth another try
        raise DeliveryError(0, None, type(exc).__name__) from exc


def _delivery_error(exc: HttpOperationError) -> DeliveryError:
    """The refusal's status, Retry-After and error code, as far as the answer carries them."""
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    retry_after = parse_retry_after((getattr(response, "headers", None) or {}).get("Retry-After"))
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
        code = body.get("subCode") or (body.get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return DeliveryError(status, retry_after, code)
