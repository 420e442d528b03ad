"""Teams-shaped activities for end-to-end tests: what Teams (or the Agents Playground) POSTs to /api/messages."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from sandbox.connector import personal_conversation_id
from sandbox.directory import TENANT_ID, SchoolClass, User

BOT_ID = "28:gradebot"
_ids = itertools.count(1)


def _account(user: User) -> dict[str, Any]:
    return {"id": f"29:{user.id}", "name": user.display_name, "aadObjectId": user.id}


def personal_conversation(user: User) -> dict[str, Any]:
    """The bot's 1:1 chat with `user`, with the id the sandbox's Bot Connector knows it by."""
    return {"id": personal_conversation_id(user.id), "conversationType": "personal", "tenantId": TENANT_ID}


def channel_conversation(school_class: SchoolClass) -> dict[str, Any]:
    return {
        "id": f"{school_class.team_id};messageid={next(_ids)}",
        "conversationType": "channel",
        "isGroup": True,
        "tenantId": TENANT_ID,
    }


def team_channel_data(
    school_class: SchoolClass | None, *, team_id: str | None = None, with_group: bool = True
) -> dict[str, Any]:
    data: dict[str, Any] = {"tenant": {"id": TENANT_ID}}
    if school_class is not None or team_id is not None:
        team: dict[str, Any] = {"id": team_id or school_class.team_id}  # type: ignore[union-attr]
        if with_group and school_class is not None:
            team["aadGroupId"] = school_class.id
        data["team"] = team
        data["channel"] = {"id": team["id"]}
    return data


def message(
    user: User,
    text: str,
    service_url: str,
    *,
    school_class: SchoolClass | None = None,
    team_id: str | None = None,
    with_group: bool = True,
    expect_replies: bool = True,
    timezone: str | None = "Europe/Berlin",
) -> dict[str, Any]:
    """A message from `user`: 1:1 by default, in a team channel when `school_class` (or `team_id`) is given."""
    in_team = school_class is not None or team_id is not None
    conversation = (
        channel_conversation(school_class)
        if school_class is not None
        else {
            "id": f"{team_id};messageid={next(_ids)}",
            "conversationType": "channel",
            "isGroup": True,
            "tenantId": TENANT_ID,
        }
        if team_id is not None
        else personal_conversation(user)
    )
    activity: dict[str, Any] = {
        "type": "message",
        "id": str(uuid.uuid4()),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": _account(user),
        "recipient": {"id": BOT_ID, "name": "Gradebot"},
        "conversation": conversation,
        "channelData": team_channel_data(school_class, team_id=team_id, with_group=with_group)
        if in_team
        else {"tenant": {"id": TENANT_ID}},
        "text": f"<at>Gradebot</at> {text}" if in_team else text,
        "textFormat": "plain",
        "locale": "en-US",
    }
    if in_team:
        activity["entities"] = [
            {"type": "mention", "text": "<at>Gradebot</at>", "mentioned": {"id": BOT_ID, "name": "Gradebot"}}
        ]
    if timezone:
        activity["localTimezone"] = timezone
    if expect_replies:
        activity["deliveryMode"] = "expectReplies"
    return activity


def card_action(
    user: User,
    verb: str,
    data: dict[str, Any],
    service_url: str,
    *,
    school_class: SchoolClass | None = None,
    trigger: str = "manual",
    authentication: dict[str, Any] | None = None,
    state: str | None = None,
    reply_to_id: str = "card-message-1",
) -> dict[str, Any]:
    """An `adaptiveCard/action` invoke (Action.Execute) from `user`."""
    value: dict[str, Any] = {"action": {"type": "Action.Execute", "verb": verb, "data": data}, "trigger": trigger}
    if authentication is not None:
        value["authentication"] = authentication
    if state is not None:
        value["state"] = state
    return {
        "type": "invoke",
        "name": "adaptiveCard/action",
        "id": str(uuid.uuid4()),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": _account(user),
        "recipient": {"id": BOT_ID, "name": "Gradebot"},
        "conversation": channel_conversation(school_class) if school_class is not None else personal_conversation(user),
        "channelData": team_channel_data(school_class)
        if school_class is not None
        else {"tenant": {"id": TENANT_ID}, "source": {"name": "message"}},
        "replyToId": reply_to_id,
        "value": value,
        "locale": "en-US",
    }


def invoke(user: User, name: str, value: dict[str, Any], service_url: str) -> dict[str, Any]:
    return {
        "type": "invoke",
        "name": name,
        "id": str(uuid.uuid4()),
        "channelId": "msteams",
        "serviceUrl": service_url,
        "from": _account(user),
        "recipient": {"id": BOT_ID, "name": "Gradebot"},
        "conversation": personal_conversation(user),
        "channelData": {"tenant": {"id": TENANT_ID}},
        "value": value,
    }
