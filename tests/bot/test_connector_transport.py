"""The reused Bot Connector clients send through one aiohttp session (bot/teams/auth.py): the body, the
credentials' bearer token and the answer arrive as msrest's requests transport delivered them, and a refusal or an
unreachable connector raises what the edge already maps."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp import web
from botbuilder.schema import Activity, ErrorResponseException
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from msrest.exceptions import ClientRequestError

from bot.teams.auth import connector_session, use_aiohttp


class Credentials(MicrosoftAppCredentials):  # type: ignore[misc]
    """botbuilder's app credentials with a token at hand (no authority to ask)."""

    def get_access_token(self, force_refresh: bool = False) -> str:
        return "token-for-the-connector"


async def _client(base_url: str) -> tuple[ConnectorClient, Any]:
    client = ConnectorClient(Credentials("app-id", "secret"), base_url=base_url)
    session = connector_session()
    use_aiohttp(client, session)
    return client, session


async def test_a_reply_and_a_refusal_travel_as_with_msrests_own_transport(aiohttp_server: Any) -> None:
    received: list[tuple[str, str, dict[str, Any]]] = []

    async def reply(request: web.Request) -> web.Response:
        received.append((request.path, request.headers.get("Authorization", ""), await request.json()))
        if len(received) == 1:
            return web.json_response({"id": "sent-1"}, status=201)
        body = {"error": {"code": "TooManyRequests", "message": "slow down"}}
        return web.json_response(body, status=429, headers={"Retry-After": "7"})

    app = web.Application()
    app.router.add_post("/v3/conversations/{conversation}/activities/{activity}", reply)
    server = await aiohttp_server(app)
    client, session = await _client(str(server.make_url("/")))
    try:
        activity = Activity(type="message", text="Grüße ✓")
        answer = await client.conversations.reply_to_activity("a:1", "in-1", activity)
        assert answer.id == "sent-1"
        path, authorization, body = received[0]
        assert path == "/v3/conversations/a:1/activities/in-1"
        assert authorization == "Bearer token-for-the-connector"
        assert body["text"] == "Grüße ✓" and body["type"] == "message"

        with pytest.raises(ErrorResponseException) as caught:
            await client.conversations.reply_to_activity("a:1", "in-2", activity)
        refused = caught.value.response  # what bot/teams/edge.py reads for a DeliveryError
        assert refused.status_code == 429 and refused.headers.get("Retry-After") == "7"
        assert "TooManyRequests" in refused.text
    finally:
        await session.close()


async def test_an_unreachable_connector_raises_msrests_client_request_error() -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    client, session = await _client(f"http://127.0.0.1:{port}/")
    try:
        with pytest.raises(ClientRequestError, match="ClientConnectorError"):
            await client.conversations.reply_to_activity("a:1", "in-1", Activity(type="message", text="x"))
    finally:
        await session.close()
