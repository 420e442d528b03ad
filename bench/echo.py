"""The server benchmark's yardstick: a bare botbuilder echo bot (CloudAdapter, ActivityHandler) with Gradebot's JWT
validation settings (bot.teams.auth.BotConfiguration) and nothing else — a connector client per turn, as botbuilder
makes it."""

from __future__ import annotations

from aiohttp import web
from botbuilder.core import ActivityHandler, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication

from bot.teams.auth import BotConfiguration


class EchoBot(ActivityHandler):  # type: ignore[misc]
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        await turn_context.send_activity(MessageFactory.text(f"echo: {turn_context.activity.text}"))


def echo_app(app_id: str, tenant_id: str, openid_metadata_url: str) -> web.Application:
    """POST /api/messages for the echo bot; its outbound token comes from the managed identity, like Gradebot's here."""
    config = BotConfiguration(app_id, "", "UserAssignedMSI", tenant_id, openid_metadata_url)
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(config))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.StreamResponse:
        response = await adapter.process(request, bot)
        return response if response is not None else web.Response(status=201)

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    return app
