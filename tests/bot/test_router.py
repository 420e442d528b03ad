"""The typed router: each command word and each payload type is registered once, by the room that owns it, and
an unknown verb or word gets a clear answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app import PARTS
from bot.kernel.router import Context, Router
from bot.kernel.turn import Reply, TextReply
from cards.lists import ShowAssignmentsAction
from tests.bot.activities import card_action, message
from tests.bot.conftest import World, card_text, replies
from tests.cards.walk import payload_types

COMMANDS = {"help", "classes", "assignments", "ungraded", "grade", "undo", "remind", "signout"}


async def test_every_card_verb_and_every_command_has_exactly_one_handler(world: World) -> None:
    router = world.client.app[PARTS].router
    assert router.verbs == set(payload_types())
    assert router.commands == COMMANDS


async def test_a_verb_or_word_registered_twice_is_refused_at_start(world: World) -> None:
    router = world.client.app[PARTS].router

    async def again(context: Context, payload: ShowAssignmentsAction) -> Reply:
        return TextReply("never")

    with pytest.raises(ValueError, match="showAssignments"):
        router.action(ShowAssignmentsAction, again)
    with pytest.raises(ValueError, match="help"):
        router.command("help", lambda context, rest: again(context, ShowAssignmentsAction("c")))
    assert isinstance(router, Router)


@pytest.mark.parametrize("verb", ["deleteEverything", "", "GRADE", "grade\u202e"])
async def test_an_unknown_verb_is_answered_with_a_card_that_says_so(world: World, verb: str) -> None:
    rosa = world.user("rosa")
    status, body = await world.post(card_action(rosa, verb, {}, world.sandbox.connector_url))
    assert status == 200 and body["statusCode"] == 200
    assert "older version of Gradebot" in card_text(body["value"])


async def test_an_unknown_word_gets_help(world: World) -> None:
    status, body = await world.post(message(world.user("rosa"), "grdae", world.sandbox.connector_url))
    assert status == 200
    assert "Gradebot" in card_text(replies(body))


async def test_an_unchanged_conversation_is_not_written_again_on_every_turn_but_a_change_is(world: World) -> None:
    rosa, store = world.user("rosa"), world.client.app[PARTS].store
    first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    world.clock.fixed = first
    activity = message(rosa, "help", world.sandbox.connector_url)
    assert (await world.post(activity))[0] == 200
    world.clock.fixed = first + timedelta(minutes=5)
    assert (await world.post(message(rosa, "help", world.sandbox.connector_url)))[0] == 200
    stored = await store.get_conversation(activity["conversation"]["id"])
    assert stored is not None and stored.updated_at == first  # the second turn changed nothing, so wrote nothing

    world.clock.fixed = first + timedelta(minutes=10)
    moved = message(rosa, "help", world.sandbox.connector_url.rstrip("/") + "/moved/", timezone="America/Chicago")
    await world.post(moved)
    stored = await store.get_conversation(activity["conversation"]["id"])
    profile = await store.get_user_profile(rosa.id)
    assert stored is not None and stored.service_url.endswith("/moved/")
    assert stored.updated_at == first + timedelta(minutes=10)
    assert profile is not None and profile.timezone == "America/Chicago" and profile.service_url == stored.service_url
