"""A grading session through Microsoft 365 Agents Playground, run inside the loopback-only namespace: the sandbox,
Gradebot (`python app.py` in sandbox mode) and the Playground, driven as Rosa Martinez; prints GRADEBOT-RESULT.

Test scaffolding: every check that matters is asserted by test_gradebot_playground.py on the JSON printed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import tempfile
import traceback
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.playground.driver import Playground, PlaygroundEvent, find_execute_action
from tests.playground.launcher import free_loopback_port, running_playground
from tests.playground.run_in_namespace import REPO_ROOT, emit_result

ROSA_UPN = "rosa.martinez@contoso-high.example"
SANDBOX_READY = "SANDBOX_READY "
START_TIMEOUT_S = 30.0
FEEDBACK = "Clear labels on every organelle; check the scale bar."
BAD_FEEDBACK = "This must not be saved."


class SessionError(Exception):
    """A part did not start, or the Playground answered something the session cannot continue from."""


# --- reading cards --------------------------------------------------------------------------------------------------


def card_texts(node: Any) -> list[str]:
    """What a person reads on a card: TextBlock texts, fact titles and values, input labels, button titles."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("text", "title", "value", "label", "placeholder") and isinstance(value, str):
                found.append(value)
            elif key != "data":
                found.extend(card_texts(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(card_texts(item))
    return found


def execute_actions(node: Any, verb: str) -> list[dict[str, Any]]:
    """Every Action.Execute with that verb, in card order (the first is what find_execute_action returns)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        if node.get("type") == "Action.Execute" and node.get("verb") == verb:
            found.append(node)
        for value in node.values():
            found.extend(execute_actions(value, verb))
    elif isinstance(node, list):
        for item in node:
            found.extend(execute_actions(item, verb))
    return found


def input_named(node: Any, input_id: str) -> dict[str, Any] | None:
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Input.") and node.get("id") == input_id:
            return node
        children: Any = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = input_named(child, input_id)
        if found is not None:
            return found
    return None


def shown_submission(card: Mapping[str, Any]) -> str | None:
    """The submission a grading card is about (its Save grade button's data), or None for other cards."""
    save = find_execute_action(card, "grade")
    return None if save is None else str((save.get("data") or {}).get("submissionId"))


def has_card(event: PlaygroundEvent) -> bool:
    return bool(Playground.cards(event))


def summary(card: Mapping[str, Any]) -> dict[str, Any]:
    return {"texts": card_texts(card), "submission": shown_submission(card)}


# --- the parts --------------------------------------------------------------------------------------------------------


@dataclass
class Parts:
    sandbox_url: str
    graph_url: str
    playground: Playground
    http: aiohttp.ClientSession


async def _stop(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


@contextlib.asynccontextmanager
async def running_sandbox() -> AsyncIterator[str]:
    """`python -m sandbox --port 0`; yields its base URL once it prints SANDBOX_READY."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sandbox", "--port", "0", cwd=REPO_ROOT, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    drain: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await process.stdout.readline()).decode(errors="replace")
                if not line:
                    raise SessionError("the sandbox exited before it was ready")
                if line.startswith(SANDBOX_READY):
                    base_url = str(json.loads(line[len(SANDBOX_READY) :])["baseUrl"])
                    break
        drain = asyncio.create_task(_drain(process.stdout))
        yield base_url
    finally:
        await _stop(process)
        if drain is not None:
            await asyncio.gather(drain, return_exceptions=True)


@contextlib.asynccontextmanager
async def running_gradebot(sandbox_url: str, database_url: str, http: aiohttp.ClientSession) -> AsyncIterator[int]:
    """`python app.py` in sandbox mode on a free port, attached to our sandbox; yields the port once /healthz answers.

    `env` passes this process's environment on, minus any Azure app id, plus Gradebot's settings for this run.
    """
    port = free_loopback_port()
    process = await asyncio.create_subprocess_exec(
        "env",
        "-u",
        "MicrosoftAppId",
        "-u",
        "MicrosoftAppPassword",
        f"PORT={port}",
        f"DATABASE_URL={database_url}",
        f"SANDBOX_URL={sandbox_url}",
        "REMINDERS=off",
        sys.executable,
        "app.py",
        cwd=REPO_ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                if process.returncode is not None:
                    raise SessionError(f"Gradebot exited during start-up (exit {process.returncode})")
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield port
    finally:
        await _stop(process)


# --- the sandbox's own view, over Graph -------------------------------------------------------------------------------


async def graph_get(parts: Parts, path: str) -> dict[str, Any]:
    async with parts.http.post(f"{parts.sandbox_url}/_sandbox/token", json={"upn": ROSA_UPN}) as response:
        response.raise_for_status()
        token = (await response.json())["access_token"]
    async with parts.http.get(f"{parts.graph_url}{path}", headers={"Authorization": f"Bearer {token}"}) as response:
        body: dict[str, Any] = await response.json()
        if response.status != 200:
            raise SessionError(f"GET {path} -> {response.status}: {body}")
        return body


async def submission_truth(parts: Parts, ids: Mapping[str, Any]) -> dict[str, Any]:
    """What the sandbox holds for a submission: status, and points/feedback outcomes (working and published)."""
    submission = await graph_get(
        parts,
        f"/education/classes/{ids['classId']}/assignments/{ids['assignmentId']}"
        f"/submissions/{ids['submissionId']}?$expand=outcomes",
    )
    points: dict[str, Any] = {}
    feedback: dict[str, Any] = {}
    for outcome in submission.get("outcomes") or []:
        kind = outcome.get("@odata.type")
        if kind == "#microsoft.graph.educationPointsOutcome":
            points = outcome
        elif kind == "#microsoft.graph.educationFeedbackOutcome":
            feedback = outcome
    working = points.get("points") or {}
    published = points.get("publishedPoints") or {}
    return {
        "status": submission.get("status"),
        "points": working.get("points"),
        "gradedBy": ((working.get("gradedBy") or {}).get("user") or {}).get("id"),
        "publishedPoints": published.get("points"),
        "feedback": (((feedback.get("feedback") or {}).get("text")) or {}).get("content"),
        "publishedFeedback": (((feedback.get("publishedFeedback") or {}).get("text")) or {}).get("content"),
        "outcomes": submission.get("outcomes"),
    }


async def class_people(parts: Parts, class_id: str) -> dict[str, list[dict[str, str]]]:
    """The class's teachers and students as the sandbox lists them (`/_sandbox/users`)."""
    async with parts.http.get(f"{parts.sandbox_url}/_sandbox/users") as response:
        users = await response.json()
    people: dict[str, list[dict[str, str]]] = {"teacher": [], "student": []}
    for user in users:
        for membership in user["classes"]:
            if membership["id"] == class_id:
                people[membership["role"]].append({"id": user["id"], "displayName": user["displayName"]})
    return people


# --- the session ------------------------------------------------------------------------------------------------------


async def press(
    parts: Parts, conversation: str, message_id: str, card: Mapping[str, Any], verb: str, **inputs: str
) -> dict[str, Any]:
    """Press the first button with this verb on a card shown in message_id; returns the card the bot answered."""
    action = find_execute_action(card, verb)
    if action is None:
        raise SessionError(f"no {verb!r} button on the card: {card_texts(card)}")
    data = {**(action.get("data") or {}), **inputs}
    body = await parts.playground.invoke(conversation, message_id, verb, data)
    if not isinstance(body, dict) or body.get("type") != "application/vnd.microsoft.card.adaptive":
        raise SessionError(f"{verb}: the bot answered no card: {body!r}")
    answered: dict[str, Any] = body["value"]
    return answered


async def open_below(
    parts: Parts, conversation: str, message_id: str, card: Mapping[str, Any], verb: str
) -> tuple[dict[str, Any], str]:
    """Press a button that opens a view as a new message below its card (which stays as it was): the new card and
    its message id."""
    action = find_execute_action(card, verb)
    if action is None:
        raise SessionError(f"no {verb!r} button on the card: {card_texts(card)}")
    body = await parts.playground.invoke(conversation, message_id, verb, dict(action.get("data") or {}))
    if not isinstance(body, dict) or body.get("type") != "application/vnd.microsoft.activity.message":
        raise SessionError(f"{verb}: the pressed card was not left in place: {body!r}")
    event = await parts.playground.wait_for_bot_message(conversation, has_card)
    return Playground.cards(event)[0], Playground.message_id(event)


async def grading_session(parts: Parts) -> dict[str, Any]:
    pg = parts.playground
    config = await pg.config()
    await pg.connect()
    result: dict[str, Any] = {
        "currentUser": {"id": config["currentUser"]["id"], "aadObjectId": config["currentUser"]["aadObjectId"]},
    }
    chat = config["personalChat"]["id"]

    # a. help, then the waiting work counted per assignment, then one assignment's students (its Students button)
    await pg.send(chat, "help")
    help_event = await pg.wait_for_bot_message(chat, has_card)
    result["help"] = {"texts": card_texts(Playground.cards(help_event)[0])}
    await pg.send(chat, "ungraded")
    list_event = await pg.wait_for_bot_message(chat, has_card)
    overview = Playground.cards(list_event)[0]
    list_message = Playground.message_id(list_event)
    list_card = await press(parts, chat, list_message, overview, "showWaiting")
    grade_buttons = execute_actions(list_card, "openGrading")
    result["ungraded"] = {
        "texts": card_texts(overview),
        "students": card_texts(list_card),
        "gradeButtons": [button["title"] for button in grade_buttons],
    }
    if not grade_buttons:
        raise SessionError("the ungraded card has no Grade button")
    first = dict(grade_buttons[0]["data"])
    result["first"] = first

    # b. open the first submission, save a grade: the card answered says Saved and shows the next submission
    opened, opened_message = await open_below(parts, chat, list_message, list_card, "openGrading")
    points_input = input_named(opened, "points") or {}
    max_points = float(str(points_input.get("label", "(0–10)")).rpartition("–")[2].rstrip(")"))
    points = round(max_points * 0.85 * 2) / 2
    points_text = f"{points:g}"
    result["opened"] = summary(opened) | {"maxPoints": max_points}
    saved = await press(parts, chat, opened_message, opened, "grade", points=points_text, feedback=FEEDBACK)
    result["saved"] = summary(saved) | {"points": points, "feedback": FEEDBACK}

    # c. the sandbox has the grade, written as Rosa, not yet visible to the student
    result["afterSave"] = await submission_truth(parts, first)

    # d. back to the graded submission (its Grade button again), Return, confirm
    reopened, reopened_message = await open_below(parts, chat, list_message, list_card, "openGrading")
    result["reopened"] = summary(reopened)
    confirm = await press(parts, chat, reopened_message, reopened, "return")
    result["confirm"] = summary(confirm) | {
        "returnButtons": [
            (b["title"], (b.get("data") or {}).get("confirmed")) for b in execute_actions(confirm, "return")
        ]
    }
    returned = await press(parts, chat, reopened_message, confirm, "return")
    result["returned"] = summary(returned)
    result["afterReturn"] = await submission_truth(parts, first)

    # e. the team channel: "@Gradebot ungraded" posts a card safe for students, refreshed per teacher
    team = config["teams"][0]
    class_id = str(team["aadGroupId"])
    await pg.send(team["id"], "ungraded", mention_bot=True)
    channel_event = await pg.wait_for_bot_message(team["id"], has_card)
    channel_card = Playground.cards(channel_event)[0]
    thread = str(channel_event["actionConversationId"])
    people = await class_people(parts, class_id)
    posted = json.dumps(channel_card, ensure_ascii=False)
    result["channel"] = {
        "conversation": thread,
        "team": team["id"],
        "classId": class_id,
        "card": channel_card,
        "texts": card_texts(channel_card),
        "teachers": [person["id"] for person in people["teacher"]],
        "studentCount": len(people["student"]),
        "studentNamesShown": [p["displayName"] for p in people["student"] if p["displayName"] in posted],
    }
    # Teams refreshes the card for each listed teacher (trigger automatic); anyone else keeps the neutral card.
    refresh = channel_card.get("refresh") or {}
    refresh_data = (refresh.get("action") or {}).get("data") or {}
    channel_message = Playground.message_id(channel_event)
    student = next(user for user in config["users"] if user["aadObjectId"] in {p["id"] for p in people["student"]})
    for who, user_id in (("teacher", config["currentUser"]["id"]), ("student", student["id"])):
        body = await pg.invoke(
            thread, channel_message, "refreshView", refresh_data, as_user=user_id, trigger="automatic"
        )
        shown = json.dumps(body.get("value"), ensure_ascii=False)
        result["channel"][f"refreshAs_{who}"] = {
            "type": body.get("type"),
            "texts": card_texts(body.get("value")),
            "studentNamesShown": [p["displayName"] for p in people["student"] if p["displayName"] in shown],
        }

    # f. a bad number on the next grading card: the card says why; nothing is written
    target = {
        "classId": first["classId"],
        "assignmentId": first["assignmentId"],
        "submissionId": result["saved"]["submission"],
    }
    before = await submission_truth(parts, target)
    rejected = await press(parts, chat, opened_message, saved, "grade", points="abc", feedback=BAD_FEEDBACK)
    after = await submission_truth(parts, target)
    result["badInput"] = summary(rejected) | {
        "target": target["submissionId"],
        "outcomesUnchanged": before["outcomes"] == after["outcomes"],
        "statusBefore": before["status"],
        "statusAfter": after["status"],
    }
    return result


async def main() -> int:
    result: dict[str, Any] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="gradebot-playground-session-") as work:
            database_url = f"sqlite:///{Path(work) / 'gradebot.db'}"
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http,
                running_sandbox() as sandbox_url,
                running_gradebot(sandbox_url, database_url, http) as bot_port,
                running_playground(bot_port, free_loopback_port(), Path(work)) as running,
                Playground(running.base_url) as playground,
            ):
                async with http.get(f"{sandbox_url}/_sandbox/info") as response:
                    graph_url = str((await response.json())["graphUrl"]).rstrip("/")
                parts = Parts(sandbox_url, graph_url, playground, http)
                result.update(await grading_session(parts))
    except Exception as error:  # the harness edge: report any failure as JSON for the test to show
        result["error"] = f"{type(error).__name__}: {error}"
        traceback.print_exc()
    emit_result(result)
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
