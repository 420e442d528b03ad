"""Harness smoke run, executed inside the loopback-only namespace: an echo bot, the Playground, and the driver.

Test scaffolding, not product: a minimal botbuilder CloudAdapter bot with an empty app id (the Playground sends no
JWT) answers the Playground; the driver exercises every call the end-to-end tests rely on. Prints GRADEBOT-RESULT.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any

import botbuilder.integration.aiohttp.cloud_adapter as cloud_adapter_module
from aiohttp import web
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.core.teams import TeamsActivityHandler
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import AdaptiveCardInvokeResponse, ChannelAccount

from tests.playground.driver import Playground, PlaygroundEvent
from tests.playground.launcher import free_loopback_port, running_playground
from tests.playground.run_in_namespace import emit_result

OUTSIDE_ADDRESS = ("169.254.169.254", 80)  # Azure instance metadata: what the Playground's telemetry probes

# botbuilder-integration-aiohttp 4.17.1 serializes an invoke response body twice (HTTP 500 for every Action.Execute
# answer); pass already-serialized bodies through unchanged (reference/verification-recipes.md §1.4).
_serialize_once = cloud_adapter_module.serializer_helper
cloud_adapter_module.serializer_helper = lambda body: body if isinstance(body, dict | list) else _serialize_once(body)


class EchoConfig:
    APP_ID = ""
    APP_PASSWORD = ""
    APP_TYPE = "MultiTenant"
    APP_TENANTID = ""


def echo_card(note: str) -> dict[str, Any]:
    return {
        "type": "AdaptiveCard",
        "version": "1.5",
        "body": [{"type": "TextBlock", "text": note, "wrap": True}],
        "actions": [{"type": "Action.Execute", "title": "Press", "verb": "press", "data": {"kind": "echo"}}],
    }


class EchoBot(TeamsActivityHandler):  # type: ignore[misc]  # botbuilder ships no type information
    async def on_message_activity(self, turn_context: TurnContext) -> None:
        activity = turn_context.activity
        text = (TurnContext.remove_recipient_mention(activity) if activity.entities else activity.text) or ""
        text = text.strip()
        if text == "card":
            await turn_context.send_activity(
                MessageFactory.attachment(CardFactory.adaptive_card(echo_card("Echo card")))
            )
        else:
            await turn_context.send_activity(f"Echo: {text}")

    async def on_teams_members_added(
        self, members_added: list[ChannelAccount], team_info: Any, turn_context: TurnContext
    ) -> None:
        for member in members_added:
            if member.id != turn_context.activity.recipient.id:
                await turn_context.send_activity(f"Welcome {member.id} to {getattr(team_info, 'name', None)}")

    async def on_adaptive_card_invoke(self, turn_context: TurnContext, invoke_value: Any) -> AdaptiveCardInvokeResponse:
        action = invoke_value.action if isinstance(invoke_value.action, dict) else invoke_value.action.serialize()
        note = f"pressed verb={action.get('verb')} data={sorted((action.get('data') or {}).items())}"
        return AdaptiveCardInvokeResponse(
            status_code=200, type="application/vnd.microsoft.card.adaptive", value=echo_card(note)
        )


def loopback_only_report() -> dict[str, Any]:
    """What the namespace looks like from inside: its interfaces, and what a connect() to the outside does."""
    interfaces = [
        line.split(":", 1)[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:] if ":" in line
    ]
    outside_errno: int | None = None
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(2.0)
        try:
            probe.connect(OUTSIDE_ADDRESS)
        except OSError as error:
            outside_errno = error.errno
    return {"interfaces": interfaces, "outside_connect_errno": outside_errno, "enetunreach": errno.ENETUNREACH}


async def start_echo_bot() -> tuple[web.AppRunner, int]:
    adapter = CloudAdapter(ConfigurationBotFrameworkAuthentication(EchoConfig()))
    bot = EchoBot()

    async def messages(request: web.Request) -> web.Response:
        response: web.Response = await adapter.process(request, bot)
        return response

    app = web.Application()
    app.router.add_post("/api/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port: int = runner.addresses[0][1]
    return runner, port


def has_text(prefix: str) -> Any:
    return lambda event: Playground.text(event).startswith(prefix)


def has_card(event: PlaygroundEvent) -> bool:
    return bool(Playground.cards(event))


async def exercise_driver(playground: Playground) -> dict[str, Any]:
    config = await playground.config()
    await playground.connect()
    personal = config["personalChat"]["id"]
    team = config["teams"][0]
    general = team["id"]

    await playground.send(personal, "hello from the namespace")
    echo = await playground.wait_for_bot_message(personal, has_text("Echo:"))

    await playground.send(general, "hello channel", mention_bot=True)
    channel_echo = await playground.wait_for_bot_message(general, has_text("Echo:"))

    await playground.send(personal, "card")
    card_event = await playground.wait_for_bot_message(personal, has_card)
    invoke_body = await playground.invoke(personal, Playground.message_id(card_event), "press", {"points": "9"})
    pressed_body = await playground.press(personal, card_event, "press", {"points": "7"})

    activity = await playground.template(general, "userAdded")
    await playground.custom_activity(activity)
    welcome = await playground.wait_for_bot_message(general, has_text("Welcome"))

    return {
        "config": {
            "tenantId": config["tenantId"],
            "bot": config["bot"],
            "currentUser": config["currentUser"]["id"],
            "users": [user["id"] for user in config["users"]],
            "personalChat": personal,
            "team": {"id": general, "name": team["name"], "aadGroupId": team["aadGroupId"]},
            "channels": [channel["name"] for channel in team["channels"]],
        },
        "echo": Playground.text(echo),
        "channel_echo": Playground.text(channel_echo),
        "channel_echo_conversation": channel_echo["actionConversationId"],
        "card": Playground.cards(card_event),
        "invoke": invoke_body,
        "pressed": pressed_body,
        "welcome": Playground.text(welcome),
    }


async def main() -> int:
    result: dict[str, Any] = {"namespace": loopback_only_report()}
    runner, bot_port = await start_echo_bot()
    try:
        with tempfile.TemporaryDirectory(prefix="gradebot-playground-") as log_dir:
            async with (
                running_playground(bot_port, free_loopback_port(), Path(log_dir)) as running,
                Playground(running.base_url) as playground,
            ):
                result.update(await exercise_driver(playground))
    except Exception as error:  # the harness edge: report any failure as JSON for the test to show
        result["error"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    finally:
        await runner.cleanup()
    emit_result(result)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
