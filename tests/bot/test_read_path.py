"""Issue 3 end to end: every command in a 1:1 chat and in a class team's channel, through POST /api/messages
(deliveryMode expectReplies) against the sandbox over HTTP; cards checked against the sandbox's own truth."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from app import PARTS
from bot.teams.wire import ModelsAsJson, ModelsFromJson
from sandbox.directory import User
from tests.bot.activities import card_action, message
from tests.bot.conftest import World, actions_of, card_text, cards_of, elements_of, invoke_card, replies
from tests.bot.grading_helpers import assignment_named, open_grading, opened_below, press
from tests.bot.truth import assignment_counts, ungraded_submissions
from tests.cards.schema import card_errors


async def _press(world: World, user: User, action: dict[str, Any]) -> dict[str, Any]:
    status, body = await world.post(card_action(user, action["verb"], action["data"], world.sandbox.connector_url))
    assert status == 200, body
    card = invoke_card(body)
    assert card_errors(card) == []
    return card


def _following(card: dict[str, Any], verb: str, page: int) -> dict[str, Any] | None:
    return next((a for a in actions_of(card) if a["verb"] == verb and a["data"].get("page", 0) == page), None)


async def _every_waiting_submission(world: World, user: User, overview: dict[str, Any]) -> list[list[str]]:
    """Walk the ungraded overview's pages and, for each assignment on them, the pages of its students (Students
    button): each assignment's submission ids in the order shown. The overview itself names no student."""
    assignments: list[list[str]] = []
    page = 0
    while True:
        assert len(json.dumps(overview, separators=(",", ":")).encode("utf-16-le")) < 80_000
        assert not [a for a in actions_of(overview) if a["verb"] == "openGrading" and "submissionId" in a["data"]]
        for students in [a for a in actions_of(overview) if a["verb"] == "showWaiting"]:
            shown: list[str] = []
            card, number = await _press(world, user, students), 0
            while True:
                assert len(json.dumps(card, separators=(",", ":")).encode("utf-16-le")) < 80_000
                shown.extend(a["data"]["submissionId"] for a in actions_of(card) if a["verb"] == "openGrading")
                number += 1
                following = _following(card, "showWaiting", number)
                if following is None:
                    break
                card = await _press(world, user, following)
            assignments.append(shown)
        page += 1
        following = _following(overview, "showUngraded", page)
        if following is None:
            return assignments
        overview = await _press(world, user, following)


async def _ask(world: World, upn: str, text: str, **options: object) -> dict:
    status, body = await world.post(message(world.user(upn), text, world.sandbox.connector_url, **options))
    assert status == 200, body
    cards = cards_of(replies(body))
    assert len(cards) == 1, body
    assert card_errors(cards[0]) == []
    return cards[0]


async def test_help_lists_every_command(world: World) -> None:
    card = await _ask(world, "rosa", "help")
    text = card_text(card)
    for command in ("help", "classes", "assignments", "ungraded", "grade", "undo", "remind", "signout"):
        assert command in text


async def test_unknown_text_gets_help_that_first_says_it_was_not_understood(world: World) -> None:
    card = await _ask(world, "rosa", "what is the meaning of life")
    assert card["body"][0]["text"] == "I didn't understand 'what is the meaning of life'. Here is what I can do."
    assert "Commands" in card_text(card)
    assert "understand" not in card_text(await _ask(world, "rosa", "help"))
    # in a channel the text is not repeated: it might name a student
    chem = world.school_class("CHEM201")
    student = world.school.directory.users[chem.student_ids[0]].display_name
    shared = await _ask(world, "rosa", f"{student} essay", school_class=chem)
    assert shared["body"][0]["text"] == "I didn't understand that message. Here is what I can do."
    assert "Commands" in card_text(shared)


async def test_classes_lists_only_the_classes_the_teacher_teaches(world: World) -> None:
    text = card_text(await _ask(world, "rosa", "classes"))
    assert "Biology 101" in text and "Chemistry 201" in text
    assert "World History 9" not in text


async def test_assignments_in_a_personal_chat_asks_for_the_class_then_remembers_it(world: World) -> None:
    rosa = world.user("rosa")
    picker = await _ask(world, "rosa", "assignments")
    choices = [a for a in actions_of(picker) if a["verb"] == "pickClass"]
    titles = " ".join(c["title"] for c in choices)
    assert "Biology 101" in titles and "Chemistry 201" in titles and "World History" not in titles
    bio = world.school_class("BIO101")
    pick = next(c for c in choices if c["data"]["classId"] == bio.id)
    status, body = await world.post(card_action(rosa, "pickClass", pick["data"], world.sandbox.connector_url))
    assert status == 200
    card = invoke_card(body)
    assert card_errors(card) == []
    text = card_text(card)
    truth = assignment_counts(
        world.school,
        bio.id,
        next(a.id for a in world.school.assignments_of(bio.id) if a.display_name == "Cell structure worksheet"),
    )
    assert "Cell structure worksheet" in text
    assert f"To grade {truth.needs_grading}" in text or f"{truth.needs_grading} to grade" in text, text
    # The choice is remembered for this conversation.
    again = await _ask(world, "rosa", "assignments")
    assert "Cell structure worksheet" in card_text(again)


async def test_assignments_card_counts_equal_the_sandbox_for_every_assignment(world: World) -> None:
    chem = world.school_class("CHEM201")
    card = await _ask(world, "rosa", "assignments Chemistry 201")
    text = card_text(card)
    for assignment in world.school.assignments_of(chem.id):
        if world.school.assignment_status(assignment) != "assigned":
            continue
        truth = assignment_counts(world.school, chem.id, assignment.id)
        block = text[text.index(assignment.display_name) :]
        numbers = block[: block.find("\n", block.find("Returned")) if "Returned" in block else 400]
        assert re.search(rf"\b{truth.needs_grading}\b", numbers), (assignment.display_name, truth, numbers)


async def test_ungraded_in_a_personal_chat_covers_every_taught_class_oldest_first(world: World) -> None:
    rosa = world.user("rosa")
    truth = ungraded_submissions(world.school, rosa.id)
    overview = await _ask(world, "rosa", "ungraded")
    classes = {s.class_id for s in truth}
    assignments = {(s.class_id, s.assignment_id) for s in truth}
    summary = overview["body"][1]["text"]  # counts first, right under the heading
    assert summary.startswith(f"{len(truth)} submissions in {len(assignments)} assignments, {len(classes)} classes")
    text = card_text(overview)
    for submission in truth:
        assert world.school.directory.users[submission.student_id].display_name not in text
    shown = await _every_waiting_submission(world, rosa, overview)
    assert sorted(i for ids in shown for i in ids) == sorted(s.id for s in truth)
    turned_in = {s.id: world.school.shown_state(s).submitted_at for s in truth}
    for ids in shown:  # each assignment's students oldest first
        assert [turned_in[i] for i in ids] == sorted(turned_in[i] for i in ids)


async def test_one_assignments_students_open_on_demand_and_grade_opens_their_card(world: World) -> None:
    rosa = world.user("rosa")
    overview = await _ask(world, "rosa", "ungraded")
    students = next(a for a in actions_of(overview) if a["verb"] == "showWaiting")
    class_id, assignment_id = students["data"]["classId"], students["data"]["assignmentId"]
    waiting = [
        s
        for s in ungraded_submissions(world.school, rosa.id)
        if (s.class_id, s.assignment_id) == (class_id, assignment_id)
    ]
    assert students["title"] == f"Students ({len(waiting)})"
    card = await _press(world, rosa, students)
    text = card_text(card)
    for submission in waiting[:20]:
        assert world.school.directory.users[submission.student_id].display_name in text
    grade = next(a for a in actions_of(card) if a["verb"] == "openGrading")
    assert grade["data"]["assignmentId"] == assignment_id
    status, body = await world.post(card_action(rosa, "openGrading", grade["data"], world.sandbox.connector_url))
    assert status == 200
    grading = opened_below(world, body)  # the list stays where it is; grading opens as a new message
    assert any(a["verb"] == "grade" for a in actions_of(grading))
    back = next(a for a in actions_of(card) if a["verb"] == "showUngraded")
    assert back["data"]["classId"] == class_id
    assert "Waiting to be graded" in card_text(await _press(world, rosa, back))


async def test_a_channel_gets_a_neutral_card_whose_refresh_targets_the_class_teachers(world: World) -> None:
    chem = world.school_class("CHEM201")
    for command in ("ungraded", "assignments"):
        card = await _ask(world, "rosa", command, school_class=chem)
        text = card_text(card)
        for student_id in chem.student_ids:
            assert world.school.directory.users[student_id].display_name not in text
        assert sorted(card["refresh"]["userIds"]) == sorted(f"29:{t}" for t in chem.teacher_ids)
        assert card["refresh"]["action"]["verb"] == "refreshView"


async def test_refresh_brings_a_teacher_their_view_and_a_student_the_neutral_card(world: World) -> None:
    chem = world.school_class("CHEM201")
    neutral = await _ask(world, "rosa", "ungraded", school_class=chem)
    data = neutral["refresh"]["action"]["data"]
    url = world.sandbox.connector_url
    status, body = await world.post(
        card_action(world.user("david"), "refreshView", data, url, school_class=chem, trigger="automatic")
    )
    assert status == 200
    teacher_view = invoke_card(body)
    waiting = [s for s in ungraded_submissions(world.school, world.user("david").id) if s.class_id == chem.id]
    shown = [a["data"]["assignmentId"] for a in actions_of(teacher_view) if a["verb"] == "showWaiting"]
    assert sorted(shown) == sorted({s.assignment_id for s in waiting})
    student = world.school.directory.users[chem.student_ids[0]]
    status, body = await world.post(
        card_action(student, "refreshView", data, url, school_class=chem, trigger="automatic")
    )
    assert status == 200
    student_view = invoke_card(body)
    text = card_text(student_view)
    for student_id in chem.student_ids:
        assert world.school.directory.users[student_id].display_name not in text
    assert not [a for a in actions_of(student_view) if a["verb"] == "openGrading"]


async def test_a_student_asking_for_ungraded_work_in_a_channel_gets_no_student_data(world: World) -> None:
    chem = world.school_class("CHEM201")
    student = world.school.directory.users[chem.student_ids[3]]
    status, body = await world.post(message(student, "ungraded", world.sandbox.connector_url, school_class=chem))
    assert status == 200
    shown = [{"text": a.get("text"), "attachments": a.get("attachments")} for a in replies(body)]
    text = json.dumps(shown)
    for student_id in chem.student_ids:
        assert world.school.directory.users[student_id].display_name not in text
    assert "openGrading" not in text
    assert "Only teachers of this class" in text


async def test_a_student_asking_for_ungraded_work_in_the_1_1_chat_is_told_it_is_for_teachers(world: World) -> None:
    chem = world.school_class("CHEM201")
    student = world.school.directory.users[chem.student_ids[3]]
    status, body = await world.post(message(student, "ungraded", world.sandbox.connector_url))
    assert status == 200
    text = json.dumps([a.get("attachments") for a in replies(body)])
    assert "You don't teach any classes" in text
    assert "Nothing" not in text and "graded. Nice" not in text


async def test_the_channel_card_opens_the_1_1_chat_where_the_same_command_shows_the_same_view(world: World) -> None:
    chem = world.school_class("CHEM201")
    neutral = await _ask(world, "rosa", "ungraded", school_class=chem)
    (chat,) = [a for a in elements_of(neutral) if a.get("type") == "Action.OpenUrl"]
    url = urlsplit(chat["url"])
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://teams.microsoft.com/l/chat/0/0"
    query = parse_qs(url.query)
    assert query["users"] == [f"28:{world.sandbox.info()['botAppId']}"]  # the sandbox's bot, as Teams would name it
    assert query["message"] == ["ungraded Chemistry 201"]
    own = await _ask(world, "rosa", query["message"][0])  # sent in the 1:1 chat
    assert own["body"][0]["text"] == "Waiting to be graded: Chemistry 201"
    waiting = {
        s.assignment_id for s in ungraded_submissions(world.school, world.user("rosa").id) if s.class_id == chem.id
    }
    assert {a["data"]["assignmentId"] for a in actions_of(own) if a["verb"] == "showWaiting"} == waiting


async def test_grade_in_a_channel_sends_the_teacher_to_the_1_1_chat_with_the_assignment_name_kept(world: World) -> None:
    chem = world.school_class("CHEM201")
    status, body = await world.post(
        message(world.user("rosa"), "grade Titration lab", world.sandbox.connector_url, school_class=chem)
    )
    assert status == 200
    (reply,) = replies(body)
    assert "our 1:1 chat" in reply["text"] and "Message me `grade Titration lab` there." in reply["text"]


async def test_the_class_comes_from_team_details_when_the_activity_lacks_aad_group_id(world: World) -> None:
    chem = world.school_class("CHEM201")
    card = await _ask(world, "rosa", "ungraded", school_class=chem, with_group=False)
    assert card["refresh"]["action"]["data"]["classId"] == chem.id


async def test_a_team_that_is_not_a_class_gets_a_clear_message(world: World) -> None:
    status, body = await world.post(
        message(world.user("rosa"), "assignments", world.sandbox.connector_url, team_id="19:staff-room@thread.tacv2")
    )
    assert status == 200
    assert "isn't a class team" in json.dumps(replies(body))


async def test_a_teacher_cannot_open_another_teachers_class_by_forging_card_data(world: World) -> None:
    history = world.school_class("HIST9")
    status, body = await world.post(
        card_action(world.user("rosa"), "showAssignments", {"classId": history.id}, world.sandbox.connector_url)
    )
    assert status == 200
    card = invoke_card(body)
    assert "Only teachers of this class" in card_text(card)
    assert "Primary source analysis" not in card_text(card)
    waiting = next(s for s in world.school.submissions.values() if s.class_id == history.id)
    forged = {"classId": history.id, "assignmentId": waiting.assignment_id, "page": 0}
    card = await _press(world, world.user("rosa"), {"verb": "showWaiting", "data": forged})
    assert "Only teachers of this class" in card_text(card)
    assert not [a for a in actions_of(card) if a["verb"] == "openGrading"]


async def test_a_class_too_big_for_one_message_pages_under_80_kb_and_counts_match(make_world) -> None:
    from sandbox.seed import generate_school

    world = await make_world(generate_school(1, 5, 160))
    teacher = next(u for u in world.school.directory.users.values() if u.role == "teacher")
    truth = ungraded_submissions(world.school, teacher.id)
    assert len(truth) > 40, "the generated class must need several pages"
    status, body = await world.post(message(teacher, "ungraded", world.sandbox.connector_url))
    assert status == 200
    shown = await _every_waiting_submission(world, teacher, cards_of(replies(body))[0])
    assert max(len(ids) for ids in shown) > 20, "an assignment must need several pages of students"
    assert sorted(i for ids in shown for i in ids) == sorted(s.id for s in truth)


async def test_a_new_personal_chat_is_welcomed_once(world: World) -> None:
    rosa = world.user("rosa")
    url = world.sandbox.connector_url
    install = message(rosa, "", url)
    install.update({"type": "installationUpdate", "action": "add", "text": None})
    added = message(rosa, "", url)
    added.update(
        {"type": "conversationUpdate", "text": None, "membersAdded": [{"id": f"29:{rosa.id}"}, {"id": "28:gradebot"}]}
    )
    welcomes = 0
    for activity in (install, added, install):  # Teams sends both; the Playground again on every reload
        status, body = await world.post(activity)
        assert status == 200
        welcomes += len(cards_of(replies(body)))
    assert welcomes == 1


async def test_help_names_the_assignment_argument_in_a_way_teams_shows(world: World) -> None:
    text = card_text(await _ask(world, "rosa", "help"))
    assert "grade [assignment]" in text and "<assignment>" not in text


async def test_connector_clients_and_credentials_are_reused_across_turns(world: World) -> None:
    from app import PARTS

    rosa = world.user("rosa")
    for text in ("help", "classes", "help"):  # replies go through the Bot Connector (not expectReplies)
        status, _ = await world.post(message(rosa, text, world.sandbox.connector_url, expect_replies=False))
        assert status in (200, 201)
    sent = [a for a in world.sandbox.connector.activities if a.operation in ("send", "reply")]
    assert len(sent) == 3
    authentication = world.client.app[PARTS].edge._auth
    assert len(authentication._clients) == 1, "one ConnectorClient for one serviceUrl, not one per turn"


async def test_a_card_reply_reaches_the_bot_connector_exactly_as_built(world: World) -> None:
    rosa = world.user("rosa")
    _, answered = await world.post(message(rosa, "help", world.sandbox.connector_url))  # expectReplies: in the body
    status, _ = await world.post(message(rosa, "help", world.sandbox.connector_url, expect_replies=False))
    assert status in (200, 201)
    sent = [a.activity for a in world.sandbox.connector.activities if a.operation in ("send", "reply")]
    assert len(sent) == 1 and sent[0] is not None
    assert sent[0]["attachments"] == replies(answered)[0]["attachments"]
    assert sent[0]["type"] == "message" and sent[0]["replyToId"]
    (client,) = world.client.app[PARTS].edge._auth._clients.values()
    assert isinstance(client.conversations._serialize, ModelsAsJson)  # the reply above went out through it
    assert isinstance(client.conversations._deserialize, ModelsFromJson)  # …and its ResourceResponse came back so
    session = world.client.app[PARTS].edge._auth._session
    assert session is not None and not session.closed  # …and over the shared aiohttp session (bot/teams/auth.py)


async def test_an_ungraded_page_drawn_again_follows_the_teachers_own_grading(world: World) -> None:
    rosa = world.user("rosa")
    first = await _ask(world, "rosa", "ungraded")
    assert await _ask(world, "rosa", "ungraded") == first  # drawn once from the list the school service holds
    total = len(ungraded_submissions(world.school, rosa.id))
    assert card_text(first).count(f"{total} submissions in") == 1
    bio = world.school_class("BIO101")
    card = await open_grading(world, rosa, bio, assignment_named(world, bio, "Cell structure worksheet"))
    status, _ = await press(world, rosa, card, "grade", {"points": "8", "feedback": "Good"})
    assert status == 200
    after = await _ask(world, "rosa", "ungraded")  # her save dropped the cached list, and so the drawn page
    assert f"{total - 1} submissions in" in card_text(after)
