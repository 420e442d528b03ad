"""The Teams edge, and the only module that imports botbuilder: activities in, `Turn`s to the handler, replies out.

It also sends proactive messages and reuses connector clients and credentials instead of rebuilding them every turn.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import urlsplit

import jwt
import requests
from azure.core.exceptions import DeserializationError
from botbuilder.core import Bot, CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.core.teams.teams_activity_extensions import teams_get_channel_data
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.integration.aiohttp.configuration_service_client_credential_factory import (
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationParameters,
    ConversationReference,
)
from botbuilder.schema.teams import TeamsChannelData
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenValidation,
    ServiceClientCredentialsFactory,
    UserTokenClient,
)
from msrest.exceptions import ClientException, HttpOperationError
from msrest.serialization import Model

from bot.turns import (
    Caller,
    Card,
    CardReply,
    ConversationInfo,
    ConversationKind,
    DeliveryError,
    Member,
    PreconditionFailedReply,
    Reply,
    SignInReply,
    TextReply,
    Turn,
)

log = logging.getLogger(__name__)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
LOGIN_REQUEST_TYPE = "application/vnd.microsoft.activity.loginRequest"
PRECONDITION_TYPE = "application/vnd.microsoft.error.preconditionFailed"
MESSAGE_TYPE = "application/vnd.microsoft.activity.message"
BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
_CONNECTOR_FAILURES = (ClientException, DeserializationError, OSError)
"""What a call to the conversation's serviceUrl raises when the Bot Connector refuses it, cannot be reached, or
answers something that is not the Bot Connector's JSON (msrest's ClientException covers HttpOperationError)."""
_MENTION = re.compile(r"<at>.*?</at>", re.IGNORECASE | re.DOTALL)
_BEARER_JWT = re.compile(r"Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", re.ASCII)
MAX_AUTHORIZATION_LENGTH = 16_384
SIGNING_ALGORITHMS = frozenset({"RS256"})
"""What the Bot Framework signs with (botbuilder itself decodes with RS256 only)."""


class TurnHandler(Protocol):
    """What the edge calls for each kind of turn (implemented by bot/routes.py)."""

    async def handle(self, turn: Turn, io: TeamsTurnIO) -> Reply: ...

    async def conversation_seen(self, caller: Caller | None, conversation: ConversationInfo) -> None: ...

    async def exchange_sso(self, caller: Caller, exchange_id: str, token: str) -> bool:
        """A `signin/tokenExchange` invoke: True when the SSO token was exchanged (or this id already was)."""
        ...

    async def verify_sign_in(self, caller: Caller, state: str) -> bool: ...

    def sign_in_resource(self) -> tuple[str, str]:
        """(tokenExchangeResource id, uri) for loginRequest responses."""
        ...

    async def first_welcome(self, conversation: ConversationInfo) -> bool:
        """True the first time this conversation should get the welcome card."""
        ...


@dataclass(frozen=True, slots=True)
class EdgeResponse:
    """What the HTTP layer writes back: a status and an optional JSON body."""

    status: int
    body: object | None = None


class _BotConfiguration:
    """The attribute bag botbuilder's ConfigurationBotFrameworkAuthentication reads."""

    def __init__(self, app_id: str, app_password: str, app_type: str, tenant_id: str, openid_metadata_url: str) -> None:
        self.APP_ID = app_id
        self.APP_PASSWORD = app_password
        self.APP_TYPE = app_type
        self.APP_TENANTID = tenant_id
        if app_id and openid_metadata_url:
            # Parameterized mode; only safe with an app id (botbuilder 4.17.1 crashes on it in anonymous mode).
            tenant = tenant_id or "botframework.com"
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = BOT_FRAMEWORK_ISSUER
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = BOT_FRAMEWORK_ISSUER
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = f"https://login.microsoftonline.com/{tenant}"
            self.OAUTH_URL = BOT_FRAMEWORK_ISSUER


class _ReusedCredentials(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """Creates each outbound credential once (botbuilder makes a new one, with a token fetch, every turn)."""

    def __init__(self, inner: ServiceClientCredentialsFactory) -> None:
        self._inner = inner
        self._made: dict[tuple[str, str, str, bool], Any] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return bool(await self._inner.is_valid_app_id(app_id))

    async def is_authentication_disabled(self) -> bool:
        return bool(await self._inner.is_authentication_disabled())

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (app_id or "", oauth_scope or "", login_endpoint or "", bool(validate_authority))
        if key not in self._made:
            self._made[key] = await self._inner.create_credentials(
                app_id, oauth_scope, login_endpoint, validate_authority
            )
        return self._made[key]


class _ReusedConnectors(ConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per (app, serviceUrl, audience), shared by every turn."""

    def __init__(self, inner: ConnectorFactory, app_id: str, clients: dict[tuple[str, str, str], Any]) -> None:
        self._inner = inner
        self._app_id = app_id
        self._clients = clients

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = (self._app_id, service_url, audience or "")
        client = self._clients.get(key)
        if client is None:
            client = await self._inner.create(service_url, audience)
            self._clients[key] = client
        return client


class SigningKeysUnavailableError(Exception):
    """The Bot Framework's OpenID metadata or signing keys could not be fetched (our problem, not the caller's)."""


class _ReusingAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """Delegates to botbuilder's authentication, handing out cached connector and user-token clients.

    Every refusal becomes a PermissionError: botbuilder 4.17.1 refuses some tokens with IndexError (unknown `kid`),
    AttributeError (a header it cannot split) or a bare Exception (algorithm, endorsements).
    """

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._token_clients: dict[str, UserTokenClient] = {}

    def _wrap(self, factory: ConnectorFactory | None, identity: ClaimsIdentity) -> ConnectorFactory | None:
        if factory is None:
            return None
        app_id = JwtTokenValidation.get_app_id_from_claims(identity.claims) or ""
        return _ReusedConnectors(factory, app_id, self._clients)

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        try:
            result = await self._inner.authenticate_request(activity, auth_header)
        except (PermissionError, jwt.PyJWTError):
            raise
        except requests.RequestException as exc:
            raise SigningKeysUnavailableError(type(exc).__name__) from exc
        except Exception as exc:  # the edge's authentication: whatever botbuilder raises here is a refused token
            raise PermissionError(f"token refused ({type(exc).__name__})") from exc
        result.connector_factory = self._wrap(result.connector_factory, result.claims_identity)
        return result

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._wrap(self._inner.create_connector_factory(claims_identity), claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = JwtTokenValidation.get_app_id_from_claims(claims_identity.claims) or ""
        if app_id not in self._token_clients:
            self._token_clients[app_id] = await self._inner.create_user_token_client(claims_identity)
        return self._token_clients[app_id]

    def get_originating_audience(self) -> str:
        return str(self._inner.get_originating_audience())

    async def authenticate_channel_request(self, auth_header: str) -> ClaimsIdentity:
        return await self._inner.authenticate_channel_request(auth_header)


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


def _looks_like_bot_framework_token(header: str) -> bool:
    """A cheap look before botbuilder validates the signature: exactly `Bearer <jwt>`, whose JSON header names
    RS256 and a key id and whose claims carry an issuer and an expiry (PyJWT accepts a token without `exp`)."""
    match = _BEARER_JWT.fullmatch(header) if len(header) <= MAX_AUTHORIZATION_LENGTH else None
    if match is None:
        return False
    token = match.group(1)
    try:
        head = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    kid, expires = head.get("kid"), claims.get("exp")
    return (
        head.get("alg") in SIGNING_ALGORITHMS
        and isinstance(kid, str)
        and bool(kid)
        and isinstance(claims.get("iss"), str)
        and isinstance(expires, int | float)
        and not isinstance(expires, bool)
    )


def _invoke(status: int, body: object | None = None) -> Activity:
    return Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))


def _action_response(status_code: int, content_type: str, value: object) -> Activity:
    """An Action.Execute answer: always HTTP 200; the body's statusCode/type/value carry the real result."""
    return _invoke(200, {"statusCode": status_code, "type": content_type, "value": value})


def _card_invoke(card: Card) -> Activity:
    return _action_response(200, CARD_CONTENT_TYPE, card)


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
    kind = (activity.conversation.conversation_type if activity.conversation else None) or "personal"
    if kind == "channel":
        return "channel"
    return (
        "groupChat" if kind == "groupChat" or (activity.conversation and activity.conversation.is_group) else "personal"
    )


def _object(value: object) -> dict[str, Any]:
    """A JSON object from untrusted activity content, or an empty one."""
    return value if isinstance(value, dict) else {}


def _teams_channel_data(activity: Activity) -> TeamsChannelData | None:
    """Teams' channelData (team, channel, tenant), or None when it is missing or not shaped like Teams sends it."""
    if not isinstance(activity.channel_data, dict):
        return None
    try:
        return teams_get_channel_data(activity)
    except (ValueError, TypeError, AttributeError):  # msrest's DeserializationError is a ValueError
        return None


def _tenant_id(activity: Activity) -> str:
    tenant = _object(_object(activity.channel_data).get("tenant"))
    return str(tenant.get("id") or (activity.conversation.tenant_id if activity.conversation else "") or "")


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
            for account in page.members or []:
                members.append(Member(account.id, account.aad_object_id, account.name or ""))
            token = page.continuation_token
            if not token:
                return members


def _reply_activity(reply: Reply) -> Activity | None:
    if isinstance(reply, CardReply):
        return MessageFactory.attachment(CardFactory.adaptive_card(reply.card))
    if isinstance(reply, TextReply):
        return MessageFactory.text(reply.text)
    return None


class TeamsEdge:
    """Owns the CloudAdapter and the bot; processes inbound activities and sends proactive messages."""

    def __init__(
        self,
        handler: TurnHandler,
        *,
        app_id: str,
        app_password: str = "",
        app_type: str = "MultiTenant",
        tenant_id: str = "",
        openid_metadata_url: str = "",
        sign_in_card: Callable[[SignInReply], Card],
    ) -> None:
        config = _BotConfiguration(app_id, app_password, app_type, tenant_id, openid_metadata_url)
        credentials = _ReusedCredentials(ConfigurationServiceClientCredentialFactory(config))
        self._auth = _ReusingAuthentication(
            ConfigurationBotFrameworkAuthentication(config, credentials_factory=credentials)
        )
        self._adapter = CloudAdapter(self._auth)
        self._app_id = app_id
        self._handler = handler
        self._sign_in_card = sign_in_card
        self._team_classes: dict[str, str | None] = {}
        self._bot = _GradebotBot(self)

    def may_be_authentic(self, auth_header: str) -> bool:
        """A cheap look at the Authorization header, before the body is parsed: False means answer 401 now."""
        return not self._app_id or _looks_like_bot_framework_token(auth_header)

    async def process(self, body: Mapping[str, Any], auth_header: str) -> EdgeResponse:
        """Authenticate and run one inbound activity; never raises for bad input (401/400 instead)."""
        if not self.may_be_authentic(auth_header):
            # botbuilder 4.17.1 crashes (500) on a missing header in parameterized mode, and on several malformed
            # tokens; refuse them here, before any key lookup.
            log.info("rejected an inbound activity: malformed Authorization header")
            return EdgeResponse(401)
        try:
            activity = Activity().deserialize(dict(body))
        except (TypeError, ValueError, AttributeError):  # msrest raises DeserializationError, a ValueError
            return EdgeResponse(400, {"error": "The body is not a Bot Framework activity."})
        problem = _unusable(activity)
        if problem is not None:
            return EdgeResponse(400, {"error": problem})
        try:
            result = await self._adapter.process_activity(auth_header, activity, self._bot.on_turn)
        except (PermissionError, jwt.PyJWTError) as exc:
            log.info("rejected an inbound activity: %s", type(exc).__name__)
            return EdgeResponse(401)
        except SigningKeysUnavailableError as exc:
            log.warning("Bot Framework signing keys unavailable: %s", exc)
            return EdgeResponse(503, {"error": "Signing keys unavailable; retry later."})
        if result is None:
            return EdgeResponse(201 if activity.type != ActivityTypes.invoke else 200)
        response_body = result.body.serialize() if isinstance(result.body, Model) else result.body  # type: ignore[no-untyped-call]
        return EdgeResponse(int(result.status), response_body)

    async def class_id_for(self, context: TurnContext, team_id: str, hinted: str | None) -> str | None:
        """The class behind a team: from the activity, else from team details (fetched once, off the event loop)."""
        if hinted:
            self._team_classes[team_id] = hinted
            return hinted
        if team_id in self._team_classes:
            return self._team_classes[team_id]
        try:
            client = await TeamsInfo.get_teams_connector_client(context)
            # botbuilder's TeamsInfo.get_team_details is a blocking HTTP call inside an async def.
            details = await asyncio.to_thread(client.teams.get_team_details, team_id)
        except _CONNECTOR_FAILURES as exc:
            log.warning("team details unavailable for team %s: %s", team_id, type(exc).__name__)
            return None
        aad_group_id = getattr(details, "aad_group_id", None)
        self._team_classes[team_id] = aad_group_id
        return aad_group_id

    async def send_card(self, reference: Mapping[str, Any], card: Card) -> str | None:
        """Post a card into a stored conversation; returns the new activity's id."""
        sent: list[str | None] = []

        async def callback(context: TurnContext) -> None:
            response = await context.send_activity(MessageFactory.attachment(CardFactory.adaptive_card(card)))
            sent.append(response.id if response is not None else None)

        await self._continue(reference, callback)
        return sent[0] if sent else None

    async def update_card(self, reference: Mapping[str, Any], activity_id: str, card: Card) -> None:
        """Replace a card the bot posted earlier, for everyone in the conversation."""

        async def callback(context: TurnContext) -> None:
            update = MessageFactory.attachment(CardFactory.adaptive_card(card))
            update.id = activity_id
            await context.update_activity(update)

        await self._continue(reference, callback)

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
            reference = TurnContext.get_conversation_reference(context.activity)
            created.append(reference.serialize())

        try:
            await self._adapter.create_conversation(self._app_id, callback, params, "msteams", service_url, None)
        except HttpOperationError as exc:
            raise _delivery_error(exc) from exc
        return created[0]

    async def _continue(self, reference: Mapping[str, Any], callback: Callable[[TurnContext], Awaitable[None]]) -> None:
        ref = ConversationReference().deserialize(dict(reference))
        try:
            await self._adapter.continue_conversation(ref, callback, self._app_id)
        except HttpOperationError as exc:
            raise _delivery_error(exc) from exc


def _delivery_error(exc: HttpOperationError) -> DeliveryError:
    response = getattr(exc, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", None) or {}
    retry_after: float | None = None
    try:
        raw = headers.get("Retry-After")
        retry_after = float(raw) if raw else None
    except (TypeError, ValueError):
        retry_after = None
    code: str | None = None
    try:
        body = json.loads(getattr(response, "text", "") or "{}")
        code = body.get("subCode") or (body.get("error") or {}).get("code")
    except (ValueError, AttributeError):
        code = None
    return DeliveryError(status, retry_after, code)


class _GradebotBot(Bot):  # type: ignore[misc]
    """Routes each activity type; its broad `except` (the edge's other one guards authentication) keeps errors in a
    turn from becoming HTTP 500."""

    def __init__(self, edge: TeamsEdge) -> None:
        self._edge = edge

    async def on_turn(self, context: TurnContext) -> None:
        activity = context.activity
        try:
            caller, conversation = await self._describe(context)
            if activity.type in (
                ActivityTypes.message,
                ActivityTypes.installation_update,
                ActivityTypes.conversation_update,
                ActivityTypes.invoke,
            ):
                await self._edge._handler.conversation_seen(caller, conversation)
            if activity.type == ActivityTypes.message and caller is not None:
                await self._on_message(context, caller, conversation)
            elif activity.type == ActivityTypes.invoke:
                await self._on_invoke(context, caller, conversation)
            elif activity.type in (ActivityTypes.installation_update, ActivityTypes.conversation_update):
                await self._on_installed(context, caller, conversation)
        except _CONNECTOR_FAILURES as exc:
            log.warning(
                "could not reach the conversation's serviceUrl (or it refused): %s type=%s conversation=%s activity=%s",
                type(exc).__name__,
                activity.type,
                activity.conversation.id if activity.conversation else None,
                activity.id,
            )
            await self._apologize(context)
        except Exception:  # the edge: log ids only, answer something sensible, never a 500
            log.exception(
                "turn failed: type=%s name=%s conversation=%s activity=%s",
                activity.type,
                activity.name,
                activity.conversation.id if activity.conversation else None,
                activity.id,
            )
            await self._apologize(context)

    async def _describe(self, context: TurnContext) -> tuple[Caller | None, ConversationInfo]:
        activity = context.activity
        tenant_id = _tenant_id(activity)
        channel_data = _teams_channel_data(activity)
        team = channel_data.team if channel_data is not None else None
        kind = _conversation_kind(activity)
        team_id = team.id if team is not None and team.id else None
        class_id: str | None = None
        if team_id:
            class_id = await self._edge.class_id_for(context, team_id, getattr(team, "aad_group_id", None))
        reference: dict[str, Any] = TurnContext.get_conversation_reference(activity).serialize()
        conversation = ConversationInfo(
            id=activity.conversation.id if activity.conversation else "",
            kind=kind,
            service_url=activity.service_url or "",
            team_id=team_id,
            class_id=class_id,
            reference=reference,
        )
        sender = activity.from_property
        if sender is None or not sender.id or not getattr(sender, "aad_object_id", None):
            return None, conversation
        caller = Caller(
            teams_id=sender.id,
            aad_object_id=sender.aad_object_id,
            name=sender.name or "",
            tenant_id=tenant_id,
            timezone=activity.local_timezone or None,
        )
        return caller, conversation

    async def _on_message(self, context: TurnContext, caller: Caller, conversation: ConversationInfo) -> None:
        turn = Turn(caller=caller, conversation=conversation, text=_strip_mentions(context.activity))
        reply = await self._edge._handler.handle(turn, TeamsTurnIO(context, conversation.team_id))
        await self._send(context, reply)

    async def _send(self, context: TurnContext, reply: Reply) -> None:
        if isinstance(reply, SignInReply):
            await context.send_activity(
                MessageFactory.attachment(CardFactory.adaptive_card(self._edge._sign_in_card(reply)))
            )
            return
        if isinstance(reply, PreconditionFailedReply):
            await context.send_activity(MessageFactory.text(reply.message))
            return
        activity = _reply_activity(reply)
        if activity is not None:
            await context.send_activity(activity)

    async def _on_installed(self, context: TurnContext, caller: Caller | None, conversation: ConversationInfo) -> None:
        """Welcome a teacher once in a new 1:1 chat (Teams sends both installationUpdate and conversationUpdate)."""
        activity = context.activity
        added = [m.id for m in activity.members_added or [] if m is not None]
        bot_added = (
            activity.type == ActivityTypes.installation_update and activity.action in ("add", "add-upgrade")
        ) or (activity.recipient is not None and activity.recipient.id in added)
        if not bot_added or caller is None or conversation.kind != "personal":
            return
        if await self._edge._handler.first_welcome(conversation):
            turn = Turn(caller=caller, conversation=conversation, text="help")
            await self._send(context, await self._edge._handler.handle(turn, TeamsTurnIO(context, None)))

    async def _on_invoke(self, context: TurnContext, caller: Caller | None, conversation: ConversationInfo) -> None:
        activity = context.activity
        value = _object(activity.value)
        if caller is None:
            problem = "The invoke has no caller: Teams sends from.id and from.aadObjectId."
            await context.send_activity(_invoke(HTTPStatus.BAD_REQUEST, {"error": problem}))
            return
        if activity.name == "adaptiveCard/action":
            await self._on_card_action(context, caller, conversation, value)
        elif activity.name == "signin/tokenExchange":
            exchanged = await self._edge._handler.exchange_sso(
                caller, str(value.get("id") or ""), str(value.get("token") or "")
            )
            if exchanged:
                await context.send_activity(_invoke(HTTPStatus.OK))
            else:
                await context.send_activity(
                    _invoke(
                        HTTPStatus.PRECONDITION_FAILED,
                        {
                            "id": value.get("id"),
                            "connectionName": value.get("connectionName"),
                            "failureDetail": "The bot is unable to exchange token. Proceed with regular login.",
                        },
                    )
                )
        elif activity.name == "signin/verifyState":
            verified = await self._edge._handler.verify_sign_in(caller, str(value.get("state") or ""))
            await context.send_activity(_invoke(HTTPStatus.OK if verified else HTTPStatus.NOT_FOUND))
        elif activity.name == "signin/failure":
            log.info("Teams reported a sign-in failure: code=%s", value.get("code"))
            await context.send_activity(_invoke(HTTPStatus.OK))
        else:
            await context.send_activity(_invoke(HTTPStatus.OK))

    async def _on_card_action(
        self, context: TurnContext, caller: Caller, conversation: ConversationInfo, value: Mapping[str, Any]
    ) -> None:
        action = _object(value.get("action"))
        authentication = _object(value.get("authentication"))
        data = _object(action.get("data"))
        turn = Turn(
            caller=caller,
            conversation=conversation,
            verb=str(action.get("verb") or ""),
            data=data,
            trigger="automatic" if value.get("trigger") == "automatic" else "manual",
            reply_to_id=context.activity.reply_to_id,
            sso_token=str(authentication.get("token")) if authentication.get("token") else None,
            sign_in_state=str(value.get("state")) if value.get("state") else None,
        )
        reply = await self._edge._handler.handle(turn, TeamsTurnIO(context, conversation.team_id))
        await context.send_activity(self._action_response(reply))

    def _action_response(self, reply: Reply) -> Activity:
        if isinstance(reply, CardReply):
            return _card_invoke(reply.card)
        if isinstance(reply, TextReply):
            return _action_response(200, MESSAGE_TYPE, reply.text)
        if isinstance(reply, SignInReply):
            resource_id, resource_uri = self._edge._handler.sign_in_resource()
            login: dict[str, Any] = {
                "text": reply.message,
                "connectionName": "gradebot",
                "buttons": [{"type": "signin", "title": "Sign in", "text": "Sign in", "value": reply.sign_in_url}],
            }
            if reply.offer_sso:
                login["tokenExchangeResource"] = {"id": resource_id, "uri": resource_uri, "providerId": ""}
            return _action_response(401, LOGIN_REQUEST_TYPE, login)
        return _action_response(412, PRECONDITION_TYPE, {"code": "412", "message": reply.message})

    async def _apologize(self, context: TurnContext) -> None:
        text = "Sorry, something went wrong on Gradebot's side. Nothing you typed was lost; please try again."
        try:
            if context.activity.type == ActivityTypes.invoke:
                if not context.turn_state.get(self._edge._adapter._INVOKE_RESPONSE_KEY):
                    await context.send_activity(_action_response(200, MESSAGE_TYPE, text))
            elif context.activity.type == ActivityTypes.message:
                await context.send_activity(MessageFactory.text(text))
        except _CONNECTOR_FAILURES as exc:
            log.warning("could not deliver the apology for activity %s: %s", context.activity.id, type(exc).__name__)
