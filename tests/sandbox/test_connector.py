"""The Bot Connector stand-in over real HTTP, and through botbuilder's own ConnectorClient / TeamsConnectorClient."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from botbuilder.schema import Activity, ChannelAccount, ConversationParameters, ErrorResponseException
from botframework.connector import ConnectorClient
from botframework.connector.aio import ConnectorClient as AsyncConnectorClient
from botframework.connector.auth import MicrosoftAppCredentials
from botframework.connector.teams import TeamsConnectorClient

from sandbox.app import Sandbox
from sandbox.connector import ConnectorFault, member_id, personal_conversation_id
from sandbox.directory import BOT_APP_ID, SchoolClass, default_directory, make_user, stable_id, student_name
from sandbox.identity import BOT_FRAMEWORK_AUDIENCE
from sandbox.school import School
from tests.sandbox.identity_fixtures import new_sandbox, running_sandbox, student, teacher

BIG_CLASS_STUDENTS = 120


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def a_class(sandbox: Sandbox) -> SchoolClass:
    return sorted(sandbox.directory.classes.values(), key=lambda c: c.display_name)[0]


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any, aiohttp.ClientResponse]:
    async with http.request(method, url, json=body, headers=headers) as response:
        text = await response.text()
        parsed = await response.json(content_type=None) if text else None
        return response.status, parsed, response


def message(text: str) -> dict[str, Any]:
    return {"type": "message", "text": text, "from": {"id": f"28:{BOT_APP_ID}"}}


async def recorded(http: aiohttp.ClientSession, sandbox: Sandbox, conversation_id: str | None = None) -> list[Any]:
    query = {"conversationId": conversation_id} if conversation_id else {}
    async with http.get(f"{sandbox.base_url}/_sandbox/connector/activities", params=query) as response:
        return list((await response.json())["activities"])


# ---- conversations and activities -----------------------------------------------------------------------------------


async def test_create_personal_conversation_is_deterministic(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    rosa = teacher(sandbox)
    parameters = {
        "isGroup": False,
        "bot": {"id": f"28:{BOT_APP_ID}"},
        "members": [{"id": member_id(rosa.id)}],
        "channelData": {"tenant": {"id": sandbox.directory.tenant_id}},
        "tenantId": sandbox.directory.tenant_id,
    }
    status, first, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", parameters)
    assert status == 201
    assert first == {"id": personal_conversation_id(rosa.id)} and first["id"].startswith("a:1")
    _, second, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", parameters)
    assert second["id"] == first["id"]

    with_activity = {**parameters, "activity": message("Your digest")}
    _, third, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", with_activity)
    assert third["id"] == first["id"] and third["activityId"]
    (record,) = await recorded(http, sandbox, first["id"])
    assert record["operation"] == "send" and record["activity"]["text"] == "Your digest"

    other = {**parameters, "members": [{"id": member_id(student(sandbox).id)}]}
    _, different, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", other)
    assert different["id"] != first["id"]

    status, body, _ = await call(
        http, "POST", f"{sandbox.connector_url}/v3/conversations", {**parameters, "members": [{"id": "29:nobody"}]}
    )
    assert status == 400 and body["error"]["code"] == "BadArgument"


async def test_send_reply_update_delete_are_recorded(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    conversation = personal_conversation_id(teacher(sandbox).id)
    activities = f"{sandbox.connector_url}/v3/conversations/{conversation}/activities"
    status, sent, _ = await call(http, "POST", activities, message("one"))
    assert status == 201
    _, replied, _ = await call(http, "POST", f"{activities}/{sent['id']}", message("two"))
    assert int(replied["id"]) > int(sent["id"])
    status, updated, _ = await call(http, "PUT", f"{activities}/{sent['id']}", message("one, edited"))
    assert status == 200 and updated == {"id": sent["id"]}
    status, _, _ = await call(http, "DELETE", f"{activities}/{replied['id']}")
    assert status == 200

    records = await recorded(http, sandbox, conversation)
    assert [(r["operation"], r["activityId"]) for r in records] == [
        ("send", sent["id"]),
        ("reply", replied["id"]),
        ("update", sent["id"]),
        ("delete", replied["id"]),
    ]
    assert records[1]["replyToId"] == sent["id"]
    assert records[2]["activity"]["text"] == "one, edited" and records[3]["activity"] is None
    assert all(r["conversationId"] == conversation and r["timestamp"].endswith("Z") for r in records)
    assert len(sandbox.connector.activities) == 4

    status, body, _ = await call(http, "PUT", f"{activities}/{replied['id']}", message("gone"))
    assert status == 404 and body["error"]["code"] == "ActivityNotFoundInConversation"

    async with http.delete(f"{sandbox.base_url}/_sandbox/connector/activities") as response:
        assert response.status == 204
    assert await recorded(http, sandbox) == []


async def test_proactive_reply_to_an_unknown_activity_is_accepted(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    # CloudAdapter.continue_conversation replies to a fresh UUID; Teams posts it as a new message.
    team = a_class(sandbox).team_id
    status, body, _ = await call(
        http, "POST", f"{sandbox.connector_url}/v3/conversations/{team}/activities/3f6c0a9e-unknown", message("hi")
    )
    assert status == 201 and body["id"]
    (record,) = await recorded(http, sandbox, team)
    assert record["operation"] == "reply" and record["replyToId"] == "3f6c0a9e-unknown"


async def test_channel_thread_creation(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    team = a_class(sandbox).team_id
    parameters = {"isGroup": True, "channelData": {"channel": {"id": team}}, "activity": message("New assignment")}
    status, created, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", parameters)
    assert status == 201
    assert created["id"] == f"{team};messageid={created['activityId']}"
    status, _, _ = await call(
        http, "POST", f"{sandbox.connector_url}/v3/conversations/{created['id']}/activities", message("thread reply")
    )
    assert status == 201
    assert [r["conversationId"] for r in await recorded(http, sandbox, team)] == [created["id"], created["id"]]

    for malformed in ({"isGroup": True}, {"isGroup": True, "channelData": "General", "bot": 7}):
        status, body, _ = await call(http, "POST", f"{sandbox.connector_url}/v3/conversations", malformed)
        assert status == 400 and body["error"]["code"] == "BadArgument"


async def test_unknown_conversation_and_team_are_404(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    for method, path in (
        ("POST", "/v3/conversations/a:1nope/activities"),
        ("GET", "/v3/conversations/19:nope@thread.tacv2/members"),
        ("GET", "/v3/teams/19:nope@thread.tacv2"),
        ("GET", "/v3/teams/19:nope@thread.tacv2/conversations"),
    ):
        status, body, _ = await call(http, method, f"{sandbox.connector_url}{path}", message("x"))
        assert status == 404, path
        assert body["error"]["code"] == "ConversationNotFound"


async def test_oversized_message_is_413(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    conversation = personal_conversation_id(teacher(sandbox).id)
    status, body, _ = await call(
        http, "POST", f"{sandbox.connector_url}/v3/conversations/{conversation}/activities", message("x" * 110_000)
    )
    assert status == 413 and body["error"]["code"] == "MessageSizeTooBig"


# ---- rosters and team details ---------------------------------------------------------------------------------------


async def test_members_of_a_class_team(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    school_class = a_class(sandbox)
    base = f"{sandbox.connector_url}/v3/conversations/{school_class.team_id}"
    status, members, _ = await call(http, "GET", f"{base}/members")
    assert status == 200
    assert [m["aadObjectId"] for m in members] == school_class.member_ids
    first_teacher = sandbox.directory.users[school_class.teacher_ids[0]]
    assert members[0] == {
        "id": f"29:{first_teacher.id}",
        "name": first_teacher.display_name,
        "aadObjectId": first_teacher.id,
        "givenName": first_teacher.given_name,
        "surname": first_teacher.surname,
        "email": first_teacher.mail,
        "userPrincipalName": first_teacher.user_principal_name,
        "tenantId": sandbox.directory.tenant_id,
        "userRole": "user",
    }
    for key in (f"29:{first_teacher.id}", first_teacher.id, first_teacher.user_principal_name.upper()):
        status, one, _ = await call(http, "GET", f"{base}/members/{key}")
        assert status == 200 and one["aadObjectId"] == first_teacher.id, key

    outsider = next(u for u in sandbox.directory.users.values() if u.id not in school_class.member_ids)
    status, body, _ = await call(http, "GET", f"{base}/members/{outsider.id}")
    assert status == 404 and body["error"]["code"] == "MemberNotFoundInConversation"

    personal = personal_conversation_id(outsider.id)
    _, only, _ = await call(http, "GET", f"{sandbox.connector_url}/v3/conversations/{personal}/members")
    assert [m["aadObjectId"] for m in only] == [outsider.id]


def big_class_school() -> tuple[School, SchoolClass]:
    directory = default_directory()
    school_id = next(iter(directory.schools))
    pupils = [make_user("student", *student_name(i), 5000 + i) for i in range(BIG_CLASS_STUDENTS)]
    for pupil in pupils:
        directory.users.setdefault(pupil.id, pupil)
    teacher_id = next(u.id for u in directory.users.values() if u.role == "teacher")
    big = SchoolClass(
        id=stable_id("class", "BIG1"),
        display_name="Big Lecture",
        mail_nickname="big1",
        class_code="BIG1",
        description="A large class",
        school_id=school_id,
        teacher_ids=[teacher_id],
        student_ids=[p.id for p in pupils],
    )
    directory.classes[big.id] = big
    return School(directory), big


async def test_paged_members_follow_continuation_tokens(http: aiohttp.ClientSession) -> None:
    school, big = big_class_school()
    async with running_sandbox(new_sandbox(school)) as sandbox:
        url = f"{sandbox.connector_url}/v3/conversations/{big.team_id}/pagedmembers"
        seen: list[str] = []
        pages = 0
        params: dict[str, str] = {"pageSize": "10"}  # below Teams' minimum: clamped to 50
        while True:
            status, page, _ = await call(http, "GET", f"{url}?{urlencode(params)}")
            assert status == 200
            pages += 1
            seen += [m["aadObjectId"] for m in page["members"]]
            if not page.get("continuationToken"):
                break
            assert len(page["members"]) == 50
            params = {"pageSize": "10", "continuationToken": page["continuationToken"]}
        assert pages == 3 and seen == big.member_ids

        status, whole, _ = await call(http, "GET", f"{url}?pageSize=5000")
        assert len(whole["members"]) == len(big.member_ids) and "continuationToken" not in whole
        status, body, _ = await call(http, "GET", f"{url}?continuationToken=bogus")
        assert status == 400 and body["error"]["code"] == "BadArgument"


async def test_team_details_and_channels(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    school_class = a_class(sandbox)
    status, details, _ = await call(http, "GET", f"{sandbox.connector_url}/v3/teams/{school_class.team_id}")
    assert status == 200
    assert details["aadGroupId"] == school_class.id and details["name"] == school_class.display_name
    assert details["id"] == school_class.team_id == f"19:{school_class.id}@thread.tacv2"
    assert details["memberCount"] == len(school_class.member_ids)
    _, channels, _ = await call(http, "GET", f"{sandbox.connector_url}/v3/teams/{school_class.team_id}/conversations")
    assert channels == {"conversations": [{"id": school_class.team_id, "name": None}]}


# ---- faults and authentication --------------------------------------------------------------------------------------


async def test_scripted_429_then_success(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    conversation = personal_conversation_id(teacher(sandbox).id)
    url = f"{sandbox.connector_url}/v3/conversations/{conversation}/activities"
    fault = {"status": 429, "retryAfter": 1, "count": 2, "method": "POST", "pathRegex": "/activities$"}
    status, _, _ = await call(http, "POST", f"{sandbox.base_url}/_sandbox/connector/faults", fault)
    assert status == 201

    status, _, _ = await call(http, "GET", f"{sandbox.connector_url}/v3/conversations/{conversation}/members")
    assert status == 200  # GET does not match the fault
    for _ in range(2):
        status, body, response = await call(http, "POST", url, message("digest"))
        assert status == 429 and response.headers["Retry-After"] == "1"
        assert body["error"]["code"] == "TooManyRequests"
    status, _, _ = await call(http, "POST", url, message("digest"))
    assert status == 201
    assert len(await recorded(http, sandbox, conversation)) == 1
    assert sandbox.connector.faults == []


async def test_scripted_403_blocked_bot_and_clearing(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    conversation = personal_conversation_id(teacher(sandbox).id)
    url = f"{sandbox.connector_url}/v3/conversations/{conversation}/activities"
    faults = f"{sandbox.base_url}/_sandbox/connector/faults"
    await call(http, "POST", faults, {"status": 403, "count": 5})
    status, body, _ = await call(http, "POST", url, message("digest"))
    assert status == 403 and body["subCode"] == "MessageWritesBlocked"
    assert body["error"]["code"] == "ConversationBlockedByUser"
    _, listed, _ = await call(http, "GET", faults)
    assert listed["faults"][0]["remaining"] == 4

    async with http.delete(faults) as response:
        assert response.status == 204
    status, _, _ = await call(http, "POST", url, message("digest"))
    assert status == 201

    status, body, _ = await call(http, "POST", faults, {"status": 200})
    assert status == 400 and body["error"]["code"] == "BadRequest"
    status, body, _ = await call(http, "POST", faults, {"status": 429, "pathRegex": "("})
    assert status == 400


async def test_bearer_tokens_are_checked_when_present(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    url = f"{sandbox.connector_url}/v3/teams/{a_class(sandbox).team_id}"
    bot = sandbox.directory.apps[BOT_APP_ID]
    good = sandbox.identity.app_access_token(bot, BOT_FRAMEWORK_AUDIENCE)
    graph_token = sandbox.identity.app_access_token(bot)
    assert (await call(http, "GET", url, headers={"Authorization": f"Bearer {good}"}))[0] == 200
    assert (await call(http, "GET", url))[0] == 200
    for header in (f"Bearer {graph_token}", "Bearer not-a-jwt", f"Basic {good}"):
        status, body, _ = await call(http, "GET", url, headers={"Authorization": header})
        assert status == 401 and body == {"message": "Authorization has been denied for this request."}


# ---- wire compatibility with botbuilder 4.17.1 ----------------------------------------------------------------------


async def test_botbuilder_async_connector_client_round_trip(sandbox: Sandbox) -> None:
    rosa = teacher(sandbox)
    async with AsyncConnectorClient(MicrosoftAppCredentials.empty(), base_url=sandbox.connector_url) as client:
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=f"28:{BOT_APP_ID}"),
            members=[ChannelAccount(id=member_id(rosa.id))],
            tenant_id=sandbox.directory.tenant_id,
            channel_data={"tenant": {"id": sandbox.directory.tenant_id}},
        )
        created = await client.conversations.create_conversation(parameters)
        assert created.id == personal_conversation_id(rosa.id)
        sent = await client.conversations.send_to_conversation(created.id, Activity(type="message", text="hello"))
        await client.conversations.update_activity(
            created.id, sent.id, Activity(type="message", id=sent.id, text="hello again")
        )
        member = await client.conversations.get_conversation_member(created.id, rosa.user_principal_name)
        assert member.id == member_id(rosa.id)
        paged = await client.conversations.get_conversation_paged_members(a_class(sandbox).team_id, page_size=50)
        assert len(paged.members) == len(a_class(sandbox).member_ids) and paged.continuation_token is None

        sandbox.connector.add_fault(ConnectorFault.from_json({"status": 429, "retryAfter": 2, "method": "POST"}))
        with pytest.raises(ErrorResponseException) as raised:
            await client.conversations.send_to_conversation(created.id, Activity(type="message", text="again"))
        assert raised.value.response.status_code == 429
        assert raised.value.error.error.code == "TooManyRequests"
    assert [r.operation for r in sandbox.connector.activities] == ["send", "update"]
    assert sandbox.connector.activities[1].activity is not None
    assert sandbox.connector.activities[1].activity["text"] == "hello again"


async def test_botbuilder_sync_teams_client_in_a_thread(sandbox: Sandbox) -> None:
    school_class = a_class(sandbox)

    def team_details() -> tuple[Any, Any]:
        teams = TeamsConnectorClient(MicrosoftAppCredentials.empty(), base_url=sandbox.connector_url)
        connector = ConnectorClient(MicrosoftAppCredentials.empty(), base_url=sandbox.connector_url)
        details = teams.teams.get_team_details(school_class.team_id)
        sent = connector.conversations.send_to_conversation(
            school_class.team_id, Activity(type="message", text="class post")
        )
        return details, sent

    details, sent = await asyncio.to_thread(team_details)
    assert details.aad_group_id == school_class.id and details.name == school_class.display_name
    assert sent.id == sandbox.connector.activities[0].activity_id
