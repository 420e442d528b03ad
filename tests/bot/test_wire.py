"""bot/teams/wire.py against msrest itself: every activity shape Gradebot sends or keeps serializes to the JSON
msrest writes, cards go out as they are and are not copied, and inbound activities read as msrest reads them."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import DeserializationError
from botbuilder.core import CardFactory, InvokeResponse, MessageFactory, TurnContext
from botbuilder.schema import (
    Activity,
    CardAction,
    CardImage,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ExpectedReplies,
    HeroCard,
    Mention,
    SuggestedActions,
)
from botframework.connector import models
from msrest.serialization import Model, Serializer

from bot.teams.wire import ModelsAsJson, card_message, read_activity, to_json

DEPENDENCIES = {name: kind for name, kind in models.__dict__.items() if isinstance(kind, type)}
CARD = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "TextBlock", "text": "Wie geht's? ✓"}]}


def _as_teams_sends() -> list[tuple[Model, str]]:
    """Replies with the conversation's addresses set (as botbuilder sends them), and what else goes to the Connector."""
    inbound = Activity(
        type="message",
        id="1:inbound",
        channel_id="msteams",
        service_url="https://smba.example/amer/",
        from_property=ChannelAccount(id="29:rosa", name="Rosa", aad_object_id="0b0e", role="user"),
        recipient=ChannelAccount(id="28:bot", name="Gradebot"),
        conversation=ConversationAccount(id="a:1", conversation_type="personal", tenant_id="t", is_group=False),
        locale="de-DE",
    )
    reference = TurnContext.get_conversation_reference(inbound)
    hero = CardFactory.hero_card(HeroCard(title="t", images=[CardImage(url="https://example.org/a.png")]))
    mention = Mention(mentioned=ChannelAccount(id="28:bot", name="Gradebot"), text="<at>Gradebot</at>", type="mention")
    text = MessageFactory.text("Sorry — ✓", input_hint="acceptingInput")
    text.entities = [mention]
    text.suggested_actions = SuggestedActions(actions=[CardAction(type="imBack", title="help", value="help")])
    text.timestamp = datetime(2026, 12, 7, 3, 4, 5, 678000, tzinfo=UTC)
    text.channel_data = {"notification": {"alert": True}, "list": [1, None, "x"]}
    invoke = Activity(type="invokeResponse", value=InvokeResponse(status=200, body={"statusCode": 200, "value": CARD}))
    sent: list[tuple[Model, str]] = [
        (TurnContext.apply_conversation_reference(activity, reference), "Activity")
        for activity in (
            MessageFactory.carousel([CardFactory.adaptive_card(CARD), hero], text="two"),
            card_message(CARD),
            text,
            invoke,
        )
    ]
    parameters = ConversationParameters(
        is_group=False,
        bot=ChannelAccount(id="28:bot"),
        members=[ChannelAccount(id="29:rosa")],
        tenant_id="t",
        channel_data={"tenant": {"id": "t"}},
    )
    return [*sent, (parameters, "ConversationParameters"), (reference, "ConversationReference")]


@pytest.mark.parametrize("model, data_type", _as_teams_sends())
def test_a_model_serializes_to_the_json_msrest_writes(model: Model, data_type: str) -> None:
    expected = Serializer(DEPENDENCIES).body(model, data_type)
    assert ModelsAsJson(DEPENDENCIES).body(model, data_type) == expected
    assert json.dumps(to_json(model)) == json.dumps(model.serialize())  # same keys in the same order
    assert json.dumps(to_json(model)) == json.dumps(expected)


def test_a_card_goes_out_as_built_and_botbuilders_copy_shares_it() -> None:
    reply = card_message(CARD)
    assert [attachment.content for attachment in reply.attachments] == [CARD]
    copied = copy.deepcopy(reply)  # what TurnContext.send_activities does before it addresses the copy
    copied.id = "changed"
    assert reply.id is None and copied.attachments[0].content is reply.attachments[0].content
    body = ModelsAsJson(DEPENDENCIES).body(copied, "Activity")
    assert body["attachments"][0]["content"] is reply.attachments[0].content
    # expectReplies: botbuilder serializes the buffered replies with msrest's own serializer
    assert ExpectedReplies(activities=[copied]).serialize()["activities"][0]["attachments"][0]["content"] == CARD


def test_an_inbound_activity_reads_as_msrest_reads_it() -> None:
    body: dict[str, Any] = {
        "type": "message",
        "id": "1",
        "serviceUrl": "https://smba.example/amer/",
        "from": {"id": "29:rosa", "aadObjectId": "0b0e", "extra": [1]},
        "conversation": {"id": "a:1", "tenantId": "t"},
        "channelData": {"tenant": {"id": "t"}, "team": {"id": "19:x"}},
        "entities": [{"type": "mention", "mentioned": {"id": "28:bot"}, "text": "<at>G</at>"}],
        "unknown": {"kept": True},
        "text": "help",
    }
    for _ in range(2):  # the deserializer is made once and reused
        assert read_activity(dict(body)) == Activity().deserialize(dict(body))
        assert read_activity(dict(body)).serialize() == Activity().deserialize(dict(body)).serialize()


ODD_BODIES: list[object] = [
    {"type": "message", "timestamp": "not a time"},
    {"type": "message", "from": "29:rosa"},
    {"type": "message", "from": ["29:rosa"]},
    {"type": "message", "entities": "mention"},
    {"type": "message", "entities": [1, "a", None, {"type": 5}]},
    {"type": "message", "membersAdded": [{"id": 5, "name": None}], "conversation": {"isGroup": "true"}},
    {"type": "message", "attachments": [{"contentType": "x", "content": {"a": [1, {}], "b": None}}]},
    {"type": "invoke", "value": {"action": {"data": {"deep": [[[]]]}}}, "channelData": [], "replyToId": 7},
    {"type": "message", "conversation": {"id": "a:1", "isGroup": 2}, "localTimestamp": "2026-12-07T03:04:05+01:00"},
    {"type": ["message"], "text": {"t": 1}},
    [],
]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_an_odd_inbound_body_reads_or_fails_as_with_msrest(body: object) -> None:
    try:
        expected: object = Activity().deserialize(copy.deepcopy(body))
    except DeserializationError:
        with pytest.raises(DeserializationError):
            read_activity(copy.deepcopy(body))  # type: ignore[arg-type]
        return
    read = read_activity(copy.deepcopy(body))  # type: ignore[arg-type]
    assert read == expected and to_json(read) == expected.serialize()  # type: ignore[attr-defined]
