"""Drive Microsoft 365 Agents Playground from tests, through the HTTP + WebSocket API its own web UI uses.

Send messages as the configured users, wait for the bot's replies, read their Adaptive Cards, press Action.Execute
(invoke), and inject raw activities. Routes as served by npm @microsoft/m365agentsplayground 0.2.28.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp

PlaygroundEvent = dict[str, Any]
"""One stream event: {"action": "createMessage"|"updateMessage"|"typing", "actionConversationId", "message": {...}}."""
EventPredicate = Callable[[PlaygroundEvent], bool]

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
MESSAGE_ACTIONS = ("createMessage", "updateMessage")
_SYNC_PING = b"gradebot-stream-sync"


class PlaygroundError(Exception):
    """The Playground refused a request, or its event stream is not usable."""


class PlaygroundTimeoutError(PlaygroundError):
    """No matching event arrived in time."""


class Playground:
    """A client for one running Playground, e.g. `async with Playground("http://127.0.0.1:56150") as pg:`.

    Call `config()` (or any sender) first, and `connect()` before sending anything whose reply you will wait for.
    """

    def __init__(
        self, base_url: str, *, session: aiohttp.ClientSession | None = None, request_timeout: float = 20.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = session
        self._owns_session = session is None
        self._request_timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._config: dict[str, Any] | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._pump: asyncio.Task[None] | None = None
        self._events: list[PlaygroundEvent] = []
        self._arrived = asyncio.Condition()
        self._stream_error: str | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None
        if self._socket is not None:
            await self._socket.close()
            self._socket = None
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    # --- plumbing -------------------------------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._request_timeout)
        return self._session

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self._http().request(method, f"{self.base_url}{path}", **kwargs) as response:
            body = await response.text()
            if response.status != 200:
                raise PlaygroundError(f"{method} {path} -> HTTP {response.status}: {body[:500]}")
            return json.loads(body) if body else None

    async def _loaded_config(self) -> dict[str, Any]:
        return self._config if self._config is not None else await self.config()

    # --- what the Playground emulates ------------------------------------------------------------------------------

    async def config(self) -> dict[str, Any]:
        """The Playground's view of its config: tenantId, bot, currentUser, users, personalChat, groupChats, teams.

        The Playground answers only once the bot endpoint accepts connections (it waits up to 15 s for it).
        """
        body = await self._request("GET", "/_internal/v1/config")
        config: dict[str, Any] = body["config"]
        self._config = config
        return config

    async def bot_id(self) -> str:
        return str((await self._loaded_config())["bot"]["id"])

    async def current_user_id(self) -> str:
        return str((await self._loaded_config())["currentUser"]["id"])

    # --- the event stream (what the web UI would render) ----------------------------------------------------------

    async def connect(self) -> None:
        """Open the conversation stream and drop the events the Playground replays from before we connected.

        The Playground flushes its backlog the moment a client connects, before reading anything from it, so every
        frame that arrives before the answer to our first ping is backlog.
        """
        if self._socket is not None:
            return
        url = self.base_url.replace("http", "ws", 1) + "/_ws_conversation/v1/conversations/stream"
        socket = await self._http().ws_connect(url, autoping=False)
        await socket.ping(_SYNC_PING)
        while True:
            frame = await socket.receive(timeout=self._request_timeout.total)
            if frame.type == aiohttp.WSMsgType.PONG and frame.data == _SYNC_PING:
                break
            if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                raise PlaygroundError(f"the Playground closed the event stream while connecting ({frame.type.name})")
        self._socket = socket
        self._events.clear()
        self._pump = asyncio.create_task(self._read_stream(socket), name="playground-stream")

    async def _read_stream(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        reason = "the Playground closed the event stream"
        try:
            async for frame in socket:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    event = json.loads(frame.data)
                    async with self._arrived:
                        self._events.append(event)
                        self._arrived.notify_all()
                elif frame.type == aiohttp.WSMsgType.PING:
                    await socket.pong(frame.data)
                elif frame.type == aiohttp.WSMsgType.ERROR:
                    reason = f"event stream error: {socket.exception()!r}"
                    break
        finally:
            async with self._arrived:
                self._stream_error = reason
                self._arrived.notify_all()

    def pending_events(self) -> list[PlaygroundEvent]:
        """Events received and not yet taken by a wait, oldest first (a copy)."""
        return list(self._events)

    async def wait_for_bot_message(
        self,
        conversation_id: str,
        predicate: EventPredicate | None = None,
        timeout: float = 10.0,  # noqa: ASYNC109  # a per-call deadline reads better in scenario code
    ) -> PlaygroundEvent:
        """Take the oldest new or updated bot message in the conversation (or a thread of it) matching predicate."""
        if self._socket is None:
            raise PlaygroundError("call connect() before waiting for messages")
        bot = await self.bot_id()

        def wanted(event: PlaygroundEvent) -> bool:
            if event.get("action") not in MESSAGE_ACTIONS:
                return False
            if not in_conversation(event, conversation_id):
                return False
            if ((event.get("message") or {}).get("from") or {}).get("id") != bot:
                return False
            return predicate is None or predicate(event)

        async def first_match() -> PlaygroundEvent:
            async with self._arrived:
                while True:
                    for event in self._events:
                        if wanted(event):
                            self._events.remove(event)
                            return event
                    if self._stream_error is not None:
                        raise PlaygroundError(self._stream_error)
                    await self._arrived.wait()

        try:
            return await asyncio.wait_for(first_match(), timeout)
        except TimeoutError:
            seen = [summarize(event) for event in self._events[-5:]]
            raise PlaygroundTimeoutError(
                f"no matching bot message in {conversation_id} within {timeout} s; latest unclaimed events: {seen}"
            ) from None

    # --- acting as a user ------------------------------------------------------------------------------------------

    async def send(
        self, conversation_id: str, text: str, mention_bot: bool = False, *, as_user: str | None = None
    ) -> str:
        """Post a message as the current user (or another configured user's id); returns the Playground's message id.

        mention_bot prefixes `<at>Bot</at>` with a mention entity, as Teams does in channels and group chats.
        """
        config = await self._loaded_config()
        body: dict[str, Any] = {
            "from": {"id": as_user or config["currentUser"]["id"]},
            "text": text,
            "textFormat": "plain",
        }
        if mention_bot:
            bot = config["bot"]
            tag = f"<at>{bot['name']}</at>"
            body["text"] = f"{tag} {text}"
            body["mentions"] = [{"mentioned": {"id": bot["id"], "name": bot["name"]}, "text": tag}]
        answer = await self._request(
            "POST", f"/_conversation/v1/conversations/{quote(conversation_id, safe='')}/messages", json=body
        )
        return str(answer["messageId"])

    async def invoke(
        self,
        conversation_id: str,
        reply_to_id: str,
        verb: str,
        data: Mapping[str, Any],
        *,
        as_user: str | None = None,
        trigger: str = "manual",
    ) -> Any:
        """Press an Action.Execute button on the card message reply_to_id; returns the bot's invoke response body.

        data is what Teams would send: the action's static data merged with the card's input values.
        """
        body = {
            "name": "adaptiveCard/action",
            "value": {"action": {"type": "Action.Execute", "verb": verb, "data": dict(data)}, "trigger": trigger},
            "from": {"id": as_user or await self.current_user_id()},
            "conversation": {"id": conversation_id},
            "replyToId": reply_to_id,
        }
        return await self._request("POST", "/_conversation/v1/invoke", json=body)

    async def press(
        self,
        conversation_id: str,
        card_event: PlaygroundEvent,
        verb: str,
        inputs: Mapping[str, Any] | None = None,
        *,
        as_user: str | None = None,
    ) -> Any:
        """Press the card's Action.Execute with this verb, as Teams would: its static data merged with the inputs.

        Input values are strings, as Teams sends them. Raises PlaygroundError when no card in the event has the verb.
        """
        for card in self.cards(card_event):
            action = find_execute_action(card, verb)
            if action is not None:
                data = {**(action.get("data") or {}), **(inputs or {})}
                return await self.invoke(conversation_id, self.message_id(card_event), verb, data, as_user=as_user)
        raise PlaygroundError(f"no Action.Execute with verb {verb!r} in the message's cards")

    async def submit(
        self, conversation_id: str, reply_to_id: str, value: Mapping[str, Any], *, as_user: str | None = None
    ) -> None:
        """Press an Action.Submit button: the bot receives a message activity whose value is the data."""
        body = {
            "conversation": {"id": conversation_id},
            "from": {"id": as_user or await self.current_user_id()},
            "replyToId": reply_to_id,
            "value": dict(value),
        }
        await self._request("POST", "/_conversation/v1/submit", json=body)

    async def template(self, conversation_id: str, activity_type: str) -> dict[str, Any]:
        """A ready-made activity the Playground would send for an event in that conversation.

        activity_type: install, uninstall, userAdded, userRemoved, botAdded, botRemoved, channelCreated,
        channelRenamed, channelDeleted, teamRenamed, teamDeleted, sendEmail, mentionInWord.
        """
        activity: dict[str, Any] = await self._request(
            "GET",
            "/_internal/v1/customActivities/template",
            params={"conversationId": conversation_id, "type": activity_type},
        )
        return activity

    async def custom_activity(self, activity: Mapping[str, Any]) -> None:
        """Send any activity to the bot as-is (set channelId, serviceUrl, conversation yourself, or use template())."""
        await self._request("POST", "/_internal/v1/customActivities", json=dict(activity))

    # --- reading events --------------------------------------------------------------------------------------------

    @staticmethod
    def cards(event: PlaygroundEvent) -> list[dict[str, Any]]:
        """The Adaptive Cards attached to a message event (empty when it has none)."""
        attachments = (event.get("message") or {}).get("attachments") or []
        return [item["content"] for item in attachments if item.get("contentType") == ADAPTIVE_CARD]

    @staticmethod
    def text(event: PlaygroundEvent) -> str:
        return str((event.get("message") or {}).get("text") or "")

    @staticmethod
    def message_id(event: PlaygroundEvent) -> str:
        return str((event.get("message") or {})["messageId"])


def find_execute_action(node: Any, verb: str) -> dict[str, Any] | None:
    """The first Action.Execute with that verb anywhere in a card (actions, ActionSets, selectActions)."""
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute" and node.get("verb") == verb:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = find_execute_action(child, verb)
        if found is not None:
            return found
    return None


def in_conversation(event: PlaygroundEvent, conversation_id: str) -> bool:
    """True for events in the conversation itself or in one of its threads (`<channel id>;messageid=<post id>`)."""
    where = str(event.get("actionConversationId", ""))
    return where == conversation_id or where.startswith(f"{conversation_id};messageid=")


def summarize(event: PlaygroundEvent) -> str:
    """A short, log-friendly description of an event (ids and text prefix only)."""
    message = event.get("message") or {}
    sender = (message.get("from") or {}).get("id")
    cards = len(Playground.cards(event))
    return (
        f"{event.get('action')} in {event.get('actionConversationId')} from {sender}: {Playground.text(event)[:40]!r}"
        + (f" +{cards} card(s)" if cards else "")
    )
