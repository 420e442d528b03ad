"""The sandbox's Teams Bot Connector stand-in (the `serviceUrl` a bot replies to): conversations, activities, rosters
and team details for the seeded class teams, with every write recorded and scriptable faults (429, 403, …).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Literal

from aiohttp import web

from sandbox.directory import BOT_APP_ID, Directory, SchoolClass, User
from sandbox.identity import BOT_FRAMEWORK_AUDIENCE
from sandbox.tokens import InvalidTokenError, TokenAuthority

log = logging.getLogger(__name__)

PAGE_SIZE_MIN = 50
PAGE_SIZE_MAX = 500
PAGE_SIZE_DEFAULT = 200
MESSAGE_SIZE_LIMIT_BYTES = 100 * 1024
THREAD_SEPARATOR = ";messageid="

Operation = Literal["send", "reply", "update", "delete"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ConnectorError(Exception):
    """A Bot Connector refusal, answered as `{"error": {"code", "message"}}` with its HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class FaultSpecError(ValueError):
    """A `/_sandbox/connector/faults` body that does not describe a fault."""


def personal_conversation_id(user_id: str, bot_app_id: str = BOT_APP_ID) -> str:
    """The deterministic 1:1 conversation id of (bot, user), shaped like Teams' `a:1…` ids."""
    digest = hashlib.sha256(f"{bot_app_id.removeprefix('28:')}|{user_id}".encode()).digest()
    return "a:1" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def member_id(user_id: str) -> str:
    """The Teams user id (`29:…`) the sandbox gives a directory user."""
    return f"29:{user_id}"


def _utc_now_iso(clock: Callable[[], float]) -> str:
    moment = datetime.datetime.fromtimestamp(clock(), datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Conversation:
    """A conversation the connector knows: a class team's channel (or a thread in it) or a bot's 1:1 chat."""

    id: str
    kind: Literal["channel", "personal"]
    school_class: SchoolClass | None = None
    user: User | None = None
    bot_app_id: str = BOT_APP_ID


@dataclass(frozen=True, slots=True)
class RecordedActivity:
    """One write the bot made through the connector."""

    conversation_id: str
    activity_id: str
    operation: Operation
    activity: Mapping[str, Any] | None
    timestamp: str
    reply_to_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "conversationId": self.conversation_id,
            "activityId": self.activity_id,
            "operation": self.operation,
            "replyToId": self.reply_to_id,
            "activity": self.activity,
            "timestamp": self.timestamp,
        }


@dataclass(slots=True)
class ConnectorFault:
    """The next `remaining` connector calls matching `method` and `path_regex` get `status` instead of an answer."""

    status: int
    remaining: int = 1
    method: str | None = None
    path_regex: re.Pattern[str] | None = None
    retry_after: int | None = None
    body: Mapping[str, Any] | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method != method.upper():
            return False
        return self.path_regex is None or self.path_regex.search(path) is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "remaining": self.remaining,
            "method": self.method,
            "pathRegex": self.path_regex.pattern if self.path_regex else None,
            "retryAfter": self.retry_after,
        }

    def response_body(self) -> Mapping[str, Any]:
        if self.body is not None:
            return self.body
        return default_fault_body(self.status)

    @classmethod
    def from_json(cls, spec: Mapping[str, Any]) -> ConnectorFault:
        """Parse `{"status", "count"?, "method"?, "pathRegex"?, "retryAfter"?, "body"?, "code"?, "message"?,
        "subCode"?}`."""
        status = spec.get("status")
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise FaultSpecError("status must be an HTTP error status (400-599).")
        count = spec.get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise FaultSpecError("count must be a positive integer.")
        method = spec.get("method")
        if method is not None and not isinstance(method, str):
            raise FaultSpecError("method must be a string such as POST.")
        pattern = spec.get("pathRegex")
        try:
            compiled = re.compile(pattern) if isinstance(pattern, str) and pattern else None
        except re.error as exc:
            raise FaultSpecError(f"pathRegex is not a regular expression: {exc}") from exc
        retry_after = spec.get("retryAfter")
        if retry_after is not None and (not isinstance(retry_after, int) or retry_after < 0):
            raise FaultSpecError("retryAfter must be a non-negative integer (seconds).")
        if retry_after is None and status == 429:
            retry_after = 1
        body = spec.get("body")
        if body is not None and not isinstance(body, dict):
            raise FaultSpecError("body must be a JSON object.")
        if body is None and any(k in spec for k in ("code", "message", "subCode")):
            default = default_fault_body(status)
            error = dict(default["error"])
            error.update({k: str(spec[k]) for k in ("code", "message") if k in spec})
            body = {**default, "error": error}
            if "subCode" in spec:
                body["subCode"] = str(spec["subCode"])
        return cls(
            status=status,
            remaining=count,
            method=method.upper() if method else None,
            path_regex=compiled,
            retry_after=retry_after,
            body=body,
        )


def default_fault_body(status: int) -> dict[str, Any]:
    """What Teams answers for a status: 429 TooManyRequests; 403 a blocked bot (`subCode: MessageWritesBlocked`)."""
    if status == 429:
        return {
            "error": {"code": "TooManyRequests", "message": "Too many requests. Retry after the Retry-After delay."}
        }
    if status == 403:
        return {
            "error": {"code": "ConversationBlockedByUser", "message": "User blocked the conversation with the bot."},
            "subCode": "MessageWritesBlocked",
        }
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return {"error": {"code": phrase.replace(" ", ""), "message": f"Injected fault: {phrase}."}}


def _dig(value: Any, *keys: str) -> Any:
    """`value[k1][k2]…`, or None as soon as a level is missing or not an object."""
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _account_json(user: User, tenant_id: str) -> dict[str, Any]:
    return {
        "id": member_id(user.id),
        "name": user.display_name,
        "aadObjectId": user.id,
        "givenName": user.given_name,
        "surname": user.surname,
        "email": user.mail,
        "userPrincipalName": user.user_principal_name,
        "tenantId": tenant_id,
        "userRole": "user",
    }


class Connector:
    """State of the connector stand-in: the directory it serves, created conversations, writes and pending faults."""

    def __init__(self, directory: Directory, clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.clock = clock
        self.activities: list[RecordedActivity] = []
        self.faults: list[ConnectorFault] = []
        self.created: dict[str, Conversation] = {}
        self._personal_index: dict[str, tuple[str, str]] = {}
        self._indexed_sizes = (-1, -1)
        self._last_activity_ms = 0
        self._known_activities: dict[str, set[str]] = {}

    # ---- the record --------------------------------------------------------------------------------------------

    def activities_in(self, conversation_id: str | None = None) -> list[RecordedActivity]:
        """Recorded writes, oldest first; with a conversation id, those in it and in its threads."""
        if conversation_id is None:
            return list(self.activities)
        return [
            a
            for a in self.activities
            if a.conversation_id == conversation_id or a.conversation_id.startswith(conversation_id + THREAD_SEPARATOR)
        ]

    def clear_activities(self) -> None:
        self.activities.clear()

    def add_fault(self, fault: ConnectorFault) -> None:
        self.faults.append(fault)

    def clear_faults(self) -> None:
        self.faults.clear()

    def take_fault(self, method: str, path: str) -> ConnectorFault | None:
        """The first pending fault matching this call (its count decremented), or None."""
        for fault in self.faults:
            if fault.matches(method, path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    def _record(
        self,
        conversation_id: str,
        activity_id: str,
        operation: Operation,
        activity: Mapping[str, Any] | None,
        reply_to_id: str | None = None,
    ) -> None:
        self.activities.append(
            RecordedActivity(conversation_id, activity_id, operation, activity, _utc_now_iso(self.clock), reply_to_id)
        )
        log.info("connector %s conversation=%s activity=%s", operation, conversation_id, activity_id)

    def _new_activity_id(self) -> str:
        """Teams message ids are epoch milliseconds; keep them unique and increasing."""
        self._last_activity_ms = max(self._last_activity_ms + 1, int(self.clock() * 1000))
        return str(self._last_activity_ms)

    # ---- conversations -------------------------------------------------------------------------------------------

    def _personal_lookup(self, conversation_id: str) -> tuple[str, str] | None:
        sizes = (len(self.directory.apps), len(self.directory.users))
        if sizes != self._indexed_sizes:
            self._personal_index = {
                personal_conversation_id(user_id, app_id): (app_id, user_id)
                for app_id in self.directory.apps
                for user_id in self.directory.users
            }
            self._indexed_sizes = sizes
        return self._personal_index.get(conversation_id)

    def resolve(self, conversation_id: str) -> Conversation:
        """The conversation behind an id (a channel thread resolves to its channel); 404 ConversationNotFound."""
        if conversation_id in self.created:
            return self.created[conversation_id]
        base = conversation_id.split(THREAD_SEPARATOR, 1)[0]
        school_class = self.directory.class_by_team(base)
        if school_class is not None:
            return Conversation(conversation_id, "channel", school_class=school_class)
        pair = self._personal_lookup(conversation_id)
        if pair is not None:
            app_id, user_id = pair
            return Conversation(conversation_id, "personal", user=self.directory.users[user_id], bot_app_id=app_id)
        raise ConnectorError(404, "ConversationNotFound", "Conversation not found.")

    def _team(self, team_id: str) -> SchoolClass:
        school_class = self.directory.class_by_team(team_id)
        if school_class is None:
            raise ConnectorError(404, "ConversationNotFound", "Team not found.")
        return school_class

    def _find_user(self, key: str) -> User | None:
        key = key.removeprefix("29:")
        return self.directory.users.get(key) or self.directory.user_by_upn(key)

    def create_conversation(self, parameters: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /v3/conversations`: a 1:1 chat with one user, or a new thread in a class channel."""
        tenant = parameters.get("tenantId") or _dig(parameters, "channelData", "tenant", "id")
        if tenant and tenant != self.directory.tenant_id:
            raise ConnectorError(403, "Forbidden", "The bot is not installed in that tenant.")
        bot_app_id = str(_dig(parameters, "bot", "id") or BOT_APP_ID).removeprefix("28:")
        activity = parameters.get("activity")
        if activity is not None and not isinstance(activity, dict):
            raise ConnectorError(400, "BadArgument", "activity must be an object.")
        if parameters.get("isGroup"):
            channel = _dig(parameters, "channelData", "channel", "id")
            school_class = self.directory.class_by_team(str(channel)) if channel else None
            if school_class is None:
                raise ConnectorError(400, "BadArgument", "Bots cannot create group chats; name a known channel.")
            if activity is None:
                raise ConnectorError(400, "BadArgument", "A new channel thread needs an activity.")
            activity_id = self._new_activity_id()
            thread_id = f"{school_class.team_id}{THREAD_SEPARATOR}{activity_id}"
            self._remember(thread_id, activity_id)
            self._record(thread_id, activity_id, "send", activity)
            return {"id": thread_id, "activityId": activity_id}
        members = parameters.get("members") or []
        if not isinstance(members, list) or len(members) != 1 or not isinstance(members[0], dict):
            raise ConnectorError(400, "BadArgument", "A 1:1 conversation needs exactly one member.")
        raw_member = str(members[0].get("id") or members[0].get("aadObjectId") or "")
        user = self.directory.users.get(raw_member.removeprefix("29:"))
        if user is None:
            raise ConnectorError(400, "BadArgument", "Failed to decrypt pairwise id: unknown member.")
        conversation_id = personal_conversation_id(user.id, bot_app_id)
        self.created[conversation_id] = Conversation(conversation_id, "personal", user=user, bot_app_id=bot_app_id)
        response: dict[str, Any] = {"id": conversation_id}
        if activity is not None:
            activity_id = self._new_activity_id()
            self._remember(conversation_id, activity_id)
            self._record(conversation_id, activity_id, "send", activity)
            response["activityId"] = activity_id
        return response

    # ---- activities ----------------------------------------------------------------------------------------------

    def _remember(self, conversation_id: str, activity_id: str) -> None:
        self._known_activities.setdefault(conversation_id, set()).add(activity_id)

    def _require_known(self, conversation_id: str, activity_id: str) -> None:
        if activity_id not in self._known_activities.get(conversation_id, set()):
            raise ConnectorError(
                404, "ActivityNotFoundInConversation", "The activity was not found in the conversation."
            )

    def send(self, conversation_id: str, activity: Mapping[str, Any], reply_to_id: str | None = None) -> dict[str, Any]:
        """`POST …/activities` (send) or `POST …/activities/{id}` (reply; an unknown id is accepted, as in Teams)."""
        self.resolve(conversation_id)
        activity_id = self._new_activity_id()
        self._remember(conversation_id, activity_id)
        self._record(conversation_id, activity_id, "reply" if reply_to_id else "send", activity, reply_to_id)
        return {"id": activity_id}

    def update(self, conversation_id: str, activity_id: str, activity: Mapping[str, Any]) -> dict[str, Any]:
        self.resolve(conversation_id)
        self._require_known(conversation_id, activity_id)
        self._record(conversation_id, activity_id, "update", activity)
        return {"id": activity_id}

    def delete(self, conversation_id: str, activity_id: str) -> None:
        self.resolve(conversation_id)
        self._require_known(conversation_id, activity_id)
        self._known_activities[conversation_id].discard(activity_id)
        self._record(conversation_id, activity_id, "delete", None)

    # ---- rosters and teams -----------------------------------------------------------------------------------------

    def _member_users(self, conversation: Conversation) -> list[User]:
        if conversation.school_class is not None:
            users = self.directory.users
            return [users[m] for m in conversation.school_class.member_ids if m in users]
        return [conversation.user] if conversation.user is not None else []

    def members(self, conversation_id: str) -> list[dict[str, Any]]:
        conversation = self.resolve(conversation_id)
        return [_account_json(u, self.directory.tenant_id) for u in self._member_users(conversation)]

    def member(self, conversation_id: str, member_key: str) -> dict[str, Any]:
        """One member by `29:` id, Entra object id or UPN; 404 MemberNotFoundInConversation otherwise."""
        conversation = self.resolve(conversation_id)
        user = self._find_user(member_key)
        if user is None or user not in self._member_users(conversation):
            raise ConnectorError(404, "MemberNotFoundInConversation", "The member was not found in the conversation.")
        return _account_json(user, self.directory.tenant_id)

    def paged_members(
        self, conversation_id: str, page_size: int | None = None, continuation_token: str | None = None
    ) -> dict[str, Any]:
        """A page of members (size clamped to 50..500 like Teams) and an opaque token for the next page."""
        conversation = self.resolve(conversation_id)
        size = min(PAGE_SIZE_MAX, max(PAGE_SIZE_MIN, page_size if page_size is not None else PAGE_SIZE_DEFAULT))
        base = conversation.id.split(THREAD_SEPARATOR, 1)[0]
        offset = _decode_continuation(continuation_token, base) if continuation_token else 0
        users = self._member_users(conversation)
        page = users[offset : offset + size]
        result: dict[str, Any] = {"members": [_account_json(u, self.directory.tenant_id) for u in page]}
        if offset + size < len(users):
            result["continuationToken"] = _encode_continuation(base, offset + size)
        return result

    def team_details(self, team_id: str) -> dict[str, Any]:
        school_class = self._team(team_id)
        return {
            "id": school_class.team_id,
            "name": school_class.display_name,
            "aadGroupId": school_class.id,
            "type": "standard",
            "channelCount": 1,
            "memberCount": len(school_class.member_ids),
        }

    def team_channels(self, team_id: str) -> dict[str, Any]:
        """The class team's channels: only General, whose id is the team id and whose name is null (as in Teams)."""
        school_class = self._team(team_id)
        return {"conversations": [{"id": school_class.team_id, "name": None}]}


def _encode_continuation(conversation_id: str, offset: int) -> str:
    raw = json.dumps({"c": hashlib.sha256(conversation_id.encode()).hexdigest()[:16], "o": offset}).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_continuation(token: str, conversation_id: str) -> int:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
        offset = decoded["o"]
        valid = decoded["c"] == hashlib.sha256(conversation_id.encode()).hexdigest()[:16]
    except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError) as exc:
        raise ConnectorError(400, "BadArgument", "The continuation token is not valid.") from exc
    if not valid or not isinstance(offset, int) or offset < 0:
        raise ConnectorError(400, "BadArgument", "The continuation token is not valid.")
    return offset


# ---- HTTP --------------------------------------------------------------------------------------------------------


def _error_response(error: ConnectorError) -> web.Response:
    return web.json_response({"error": {"code": error.code, "message": error.message}}, status=error.status)


async def _activity_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    if len(raw) > MESSAGE_SIZE_LIMIT_BYTES:
        raise ConnectorError(413, "MessageSizeTooBig", "Message size too big.")
    try:
        body = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConnectorError(400, "BadSyntax", "The request body is not JSON.") from exc
    if not isinstance(body, dict):
        raise ConnectorError(400, "BadSyntax", "The request body must be a JSON object.")
    return body


def create_connector_app(connector: Connector, authority: TokenAuthority) -> web.Application:
    """The `/connector` sub-application: Bot Connector v3 routes behind the fault and bearer-check middleware."""

    @web.middleware
    async def faults_and_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        authorization = request.headers.get("Authorization")
        if authorization is not None:
            scheme, _, token = authorization.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise InvalidTokenError("Not a bearer token.")
                authority.verify(token.strip(), audience=BOT_FRAMEWORK_AUDIENCE)
            except InvalidTokenError:
                return web.json_response({"message": "Authorization has been denied for this request."}, status=401)
        fault = connector.take_fault(request.method, request.path)
        if fault is not None:
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            log.info("connector fault %s for %s %s", fault.status, request.method, request.path)
            return web.json_response(fault.response_body(), status=fault.status, headers=headers)
        try:
            return await handler(request)
        except ConnectorError as error:
            return _error_response(error)

    async def create_conversation(request: web.Request) -> web.Response:
        return web.json_response(connector.create_conversation(await _activity_body(request)), status=201)

    async def send(request: web.Request) -> web.Response:
        body = await _activity_body(request)
        return web.json_response(connector.send(request.match_info["conversation_id"], body), status=201)

    async def reply(request: web.Request) -> web.Response:
        body = await _activity_body(request)
        info = request.match_info
        return web.json_response(connector.send(info["conversation_id"], body, info["activity_id"]), status=201)

    async def update(request: web.Request) -> web.Response:
        body = await _activity_body(request)
        info = request.match_info
        return web.json_response(connector.update(info["conversation_id"], info["activity_id"], body))

    async def delete(request: web.Request) -> web.Response:
        connector.delete(request.match_info["conversation_id"], request.match_info["activity_id"])
        return web.Response(status=200)

    async def members(request: web.Request) -> web.Response:
        return web.json_response(connector.members(request.match_info["conversation_id"]))

    async def member(request: web.Request) -> web.Response:
        info = request.match_info
        return web.json_response(connector.member(info["conversation_id"], info["member_id"]))

    async def paged_members(request: web.Request) -> web.Response:
        raw_size = request.query.get("pageSize")
        try:
            page_size = int(raw_size) if raw_size else None
        except ValueError as exc:
            raise ConnectorError(400, "BadArgument", "pageSize must be an integer.") from exc
        result = connector.paged_members(
            request.match_info["conversation_id"], page_size, request.query.get("continuationToken") or None
        )
        return web.json_response(result)

    async def team_details(request: web.Request) -> web.Response:
        return web.json_response(connector.team_details(request.match_info["team_id"]))

    async def team_channels(request: web.Request) -> web.Response:
        return web.json_response(connector.team_channels(request.match_info["team_id"]))

    sub = web.Application(middlewares=[faults_and_auth])
    conversation = "/v3/conversations/{conversation_id}"
    sub.router.add_post("/v3/conversations", create_conversation)
    sub.router.add_post(f"{conversation}/activities", send)
    sub.router.add_post(f"{conversation}/activities/{{activity_id}}", reply)
    sub.router.add_put(f"{conversation}/activities/{{activity_id}}", update)
    sub.router.add_delete(f"{conversation}/activities/{{activity_id}}", delete)
    sub.router.add_get(f"{conversation}/activities/{{activity_id}}/members", members)
    sub.router.add_get(f"{conversation}/members", members)
    sub.router.add_get(f"{conversation}/members/{{member_id}}", member)
    sub.router.add_get(f"{conversation}/pagedmembers", paged_members)
    sub.router.add_get("/v3/teams/{team_id}", team_details)
    sub.router.add_get("/v3/teams/{team_id}/conversations", team_channels)
    return sub


def setup_connector(app: web.Application, connector: Connector, authority: TokenAuthority) -> None:
    """Mount the connector at `/connector` and its control routes at `/_sandbox/connector/…`."""
    app.add_subapp("/connector", create_connector_app(connector, authority))

    async def list_activities(request: web.Request) -> web.Response:
        recorded = connector.activities_in(request.query.get("conversationId") or None)
        return web.json_response({"activities": [a.to_json() for a in recorded]})

    async def clear_activities(request: web.Request) -> web.Response:
        connector.clear_activities()
        return web.Response(status=204)

    async def list_faults(request: web.Request) -> web.Response:
        return web.json_response({"faults": [f.to_json() for f in connector.faults]})

    async def add_fault(request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise FaultSpecError("The body must be a JSON object.")
            fault = ConnectorFault.from_json(spec)
        except (json.JSONDecodeError, UnicodeDecodeError, FaultSpecError) as exc:
            return web.json_response({"error": {"code": "BadRequest", "message": str(exc)}}, status=400)
        connector.add_fault(fault)
        return web.json_response(fault.to_json(), status=201)

    async def clear_faults(request: web.Request) -> web.Response:
        connector.clear_faults()
        return web.Response(status=204)

    async def list_conversations(request: web.Request) -> web.Response:
        created = [
            {
                "id": c.id,
                "kind": c.kind,
                "botAppId": c.bot_app_id,
                "userId": c.user.id if c.user else None,
                "classId": c.school_class.id if c.school_class else None,
            }
            for c in connector.created.values()
        ]
        return web.json_response({"conversations": created})

    app.router.add_get("/_sandbox/connector/activities", list_activities)
    app.router.add_delete("/_sandbox/connector/activities", clear_activities)
    app.router.add_get("/_sandbox/connector/faults", list_faults)
    app.router.add_post("/_sandbox/connector/faults", add_fault)
    app.router.add_delete("/_sandbox/connector/faults", clear_faults)
    app.router.add_get("/_sandbox/connector/conversations", list_conversations)
