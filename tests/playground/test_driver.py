"""The Playground driver against a small stand-in for the Playground's HTTP + WebSocket API (runs everywhere).

The stand-in copies the behaviour the driver depends on: events produced while no client is connected are buffered
and flushed on connect; the bot's replies arrive on the stream; invoke answers with the bot's body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from tests.playground.driver import (
    Playground,
    PlaygroundError,
    PlaygroundTimeoutError,
    find_execute_action,
    in_conversation,
)

BOT = {"id": "28:gradebot", "name": "Gradebot"}
ME = "29:teacher"
PERSONAL = "a:personal"
CHANNEL = "19:class@thread.tacv2"
CARD = {
    "type": "AdaptiveCard",
    "version": "1.5",
    "body": [{"type": "TextBlock", "text": "Grade"}],
    "actions": [
        {
            "type": "ActionSet",
            "actions": [{"type": "Action.Execute", "verb": "grade", "data": {"submission": "s1", "points": "0"}}],
        }
    ],
}

FakeServer = Callable[[], Awaitable[tuple[TestServer, dict[str, Any]]]]


def bot_event(
    conversation: str, text: str, message_id: str = "m-bot", cards: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    attachments = [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card} for card in cards or []]
    return {
        "action": "createMessage",
        "actionConversationId": conversation,
        "message": {"messageId": message_id, "from": {"id": BOT["id"]}, "text": text, "attachments": attachments},
    }


def build_fake_playground() -> tuple[web.Application, dict[str, Any]]:
    state: dict[str, Any] = {"backlog": [], "sockets": [], "requests": []}

    async def emit(event: dict[str, Any]) -> None:
        if not state["sockets"]:
            state["backlog"].append(event)
        for socket in state["sockets"]:
            await socket.send_json(event)

    async def config(request: web.Request) -> web.Response:
        return web.json_response({"config": {"bot": BOT, "currentUser": {"id": ME}, "personalChat": {"id": PERSONAL}}})

    async def stream(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        for event in state["backlog"]:
            await socket.send_json(event)
        state["backlog"].clear()
        state["sockets"].append(socket)
        async for _ in socket:
            pass
        state["sockets"].remove(socket)
        return socket

    async def messages(request: web.Request) -> web.Response:
        conversation = request.match_info["conversation"]
        body = await request.json()
        state["requests"].append((conversation, body))
        await emit(
            {
                "action": "createMessage",
                "actionConversationId": conversation,
                "message": {**body, "messageId": "m-user"},
            }
        )
        if body["text"] == "card":
            await emit(bot_event(conversation, "", "m-card", [CARD]))
        else:
            await emit(
                bot_event(conversation, "other conversation", "m-elsewhere") | {"actionConversationId": "a:other"}
            )
            await emit(bot_event(f"{conversation};messageid=1", f"Echo: {body['text']}", "m-echo"))
        return web.json_response({"messageId": "m-user"})

    async def invoke(request: web.Request) -> web.Response:
        body = await request.json()
        state["requests"].append(("invoke", body))
        return web.json_response(
            {"type": "application/vnd.microsoft.activity.message", "value": body["value"]["action"]["data"]}
        )

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"code": "UserBotError"}, status=502)

    app = web.Application()
    app.router.add_get("/_internal/v1/config", config)
    app.router.add_get("/_ws_conversation/v1/conversations/stream", stream)
    app.router.add_post("/_conversation/v1/conversations/{conversation}/messages", messages)
    app.router.add_post("/_conversation/v1/invoke", invoke)
    app.router.add_post("/_internal/v1/customActivities", refuse)
    return app, state


@pytest.fixture
async def fake_playground(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> tuple[TestServer, dict[str, Any]]:
    app, state = build_fake_playground()
    server = await aiohttp_server(app)
    return server, state


def url(server: TestServer) -> str:
    return str(server.make_url("/")).rstrip("/")


async def test_connect_drops_the_replayed_backlog(fake_playground: tuple[TestServer, dict[str, Any]]) -> None:
    server, state = fake_playground
    state["backlog"].append(bot_event(PERSONAL, "Echo: from before we connected", "m-old"))
    async with Playground(url(server)) as playground:
        await playground.connect()
        assert playground.pending_events() == []
        await playground.send(PERSONAL, "now")
        event = await playground.wait_for_bot_message(PERSONAL, lambda e: Playground.text(e).startswith("Echo:"))
        assert Playground.message_id(event) == "m-echo"
        assert Playground.text(event) == "Echo: now"


async def test_waits_skip_the_users_own_messages_and_other_conversations(
    fake_playground: tuple[TestServer, dict[str, Any]],
) -> None:
    server, _ = fake_playground
    async with Playground(url(server)) as playground:
        await playground.connect()
        await playground.send(CHANNEL, "hello", mention_bot=True)
        event = await playground.wait_for_bot_message(CHANNEL)
        assert event["actionConversationId"] == f"{CHANNEL};messageid=1"
        remaining = playground.pending_events()
        assert [e["message"]["messageId"] for e in remaining] == ["m-user", "m-elsewhere"]


async def test_mentions_are_sent_the_way_teams_sends_them(fake_playground: tuple[TestServer, dict[str, Any]]) -> None:
    server, state = fake_playground
    async with Playground(url(server)) as playground:
        await playground.send(CHANNEL, "classes", mention_bot=True)
        await playground.send(PERSONAL, "help", as_user="29:student")
    (channel, mentioned), (personal, plain) = state["requests"]
    assert channel == CHANNEL
    assert mentioned["from"] == {"id": ME}
    assert mentioned["text"] == "<at>Gradebot</at> classes"
    assert mentioned["mentions"] == [{"mentioned": BOT, "text": "<at>Gradebot</at>"}]
    assert (personal, plain["from"], plain["text"], "mentions" in plain) == (
        PERSONAL,
        {"id": "29:student"},
        "help",
        False,
    )


async def test_press_merges_the_cards_static_data_with_the_inputs(
    fake_playground: tuple[TestServer, dict[str, Any]],
) -> None:
    server, state = fake_playground
    async with Playground(url(server)) as playground:
        await playground.connect()
        await playground.send(PERSONAL, "card")
        card_event = await playground.wait_for_bot_message(PERSONAL, lambda e: bool(Playground.cards(e)))
        body = await playground.press(PERSONAL, card_event, "grade", {"points": "8", "feedback": "Good"})
        with pytest.raises(PlaygroundError, match=r"no Action\.Execute with verb 'return'"):
            await playground.press(PERSONAL, card_event, "return")
    assert body["value"] == {"submission": "s1", "points": "8", "feedback": "Good"}
    sent = state["requests"][-1][1]
    assert sent["replyToId"] == "m-card"
    assert sent["conversation"] == {"id": PERSONAL}
    assert sent["value"]["action"] == {"type": "Action.Execute", "verb": "grade", "data": body["value"]}


async def test_a_missing_reply_times_out_with_a_description(fake_playground: tuple[TestServer, dict[str, Any]]) -> None:
    server, _ = fake_playground
    async with Playground(url(server)) as playground:
        await playground.connect()
        await playground.send(PERSONAL, "hello")
        with pytest.raises(PlaygroundTimeoutError, match="no matching bot message in a:personal"):
            await playground.wait_for_bot_message(PERSONAL, lambda e: "never" in Playground.text(e), timeout=0.2)


async def test_refusals_and_closed_streams_raise(fake_playground: tuple[TestServer, dict[str, Any]]) -> None:
    server, state = fake_playground
    async with Playground(url(server)) as playground:
        with pytest.raises(PlaygroundError, match="HTTP 502"):
            await playground.custom_activity({"type": "message"})
        with pytest.raises(PlaygroundError, match="call connect"):
            await playground.wait_for_bot_message(PERSONAL)
        await playground.connect()
        for socket in list(state["sockets"]):
            await socket.close()
        with pytest.raises(PlaygroundError, match="closed the event stream"):
            await playground.wait_for_bot_message(PERSONAL, timeout=5)


def test_card_and_conversation_helpers() -> None:
    assert find_execute_action(CARD, "grade") == CARD["actions"][0]["actions"][0]  # type: ignore[index]
    assert find_execute_action(CARD, "missing") is None
    assert in_conversation({"actionConversationId": f"{CHANNEL};messageid=42"}, CHANNEL)
    assert in_conversation({"actionConversationId": CHANNEL}, CHANNEL)
    assert not in_conversation({"actionConversationId": "19:class@thread.tacv2-other"}, CHANNEL)


async def test_stream_frames_other_than_text_are_ignored(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    # The server pings the driver mid-stream; the driver answers and keeps reading.
    async def stream(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=False)
        await socket.prepare(request)
        first = await socket.receive()
        assert first.type == WSMsgType.PING
        await socket.pong(first.data)
        await socket.ping(b"are you there")
        answer = await socket.receive()
        await socket.send_json(bot_event(PERSONAL, f"got {answer.type.name}"))
        await asyncio.sleep(1)
        return socket

    async def config(request: web.Request) -> web.Response:
        return web.json_response({"config": {"bot": BOT, "currentUser": {"id": ME}}})

    app = web.Application()
    app.router.add_get("/_ws_conversation/v1/conversations/stream", stream)
    app.router.add_get("/_internal/v1/config", config)
    server = await aiohttp_server(app)
    async with Playground(url(server)) as playground:
        await playground.connect()
        event = await playground.wait_for_bot_message(PERSONAL)
    assert Playground.text(event) == "got PONG"
