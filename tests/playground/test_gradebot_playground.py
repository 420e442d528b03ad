"""Rosa Martinez grades through Microsoft 365 Agents Playground: real Gradebot, real sandbox, real Playground, all in a
loopback-only namespace (tests/playground/gradebot_session.py drives it; this test asserts on what it saw).
"""

from __future__ import annotations

from typing import Any, NoReturn

import pytest

from sandbox.directory import default_directory
from tests.playground.gradebot_session import FEEDBACK
from tests.playground.run_in_namespace import (
    REPO_ROOT,
    NamespaceUnavailableError,
    missing_prerequisites,
    namespace_unavailable_reason,
    run_in_namespace,
)
from tests.playground.run_in_namespace import (
    cannot_run as shared_cannot_run,
)

SESSION_SCRIPT = REPO_ROOT / "tests" / "playground" / "gradebot_session.py"
COMMANDS = ("help", "classes", "assignments", "ungraded", "grade [assignment]", "undo", "remind", "signout")


def cannot_run(reason: str) -> NoReturn:
    shared_cannot_run("the Gradebot Playground session", reason)


def mentions(texts: list[str], fragment: str) -> bool:
    return any(fragment in text for text in texts)


@pytest.fixture(scope="module")
def session() -> dict[str, Any]:
    reason = missing_prerequisites() or namespace_unavailable_reason()
    if reason:
        cannot_run(reason)
    try:
        run = run_in_namespace(SESSION_SCRIPT, timeout=90)
    except NamespaceUnavailableError as error:
        cannot_run(str(error))
    assert run.result is not None, f"no result from the session (exit {run.returncode}):\n{run.stderr[-4000:]}"
    assert "error" not in run.result, f"{run.result['error']}\n{run.stderr[-4000:]}"
    assert run.returncode == 0
    return run.result


@pytest.mark.playground
def test_a_teacher_grades_and_returns_work_through_the_playground(session: dict[str, Any]) -> None:
    directory = default_directory()
    rosa = directory.user_by_upn("rosa.martinez@contoso-high.example")
    assert rosa is not None
    assert session["currentUser"] == {"id": f"29:{rosa.id}", "aadObjectId": rosa.id}

    # a. help lists every command; ungraded counts waiting work per assignment; its students each have a Grade button
    for command in COMMANDS:
        assert command in session["help"]["texts"], command
    ungraded = session["ungraded"]
    assert ungraded["texts"][0].startswith("Waiting to be graded")
    assert ungraded["students"][0].startswith("Waiting to be graded")
    assert ungraded["gradeButtons"] and set(ungraded["gradeButtons"]) == {"Grade"}
    first = session["first"]

    # b. Grade opens that submission; Save grade says Saved and moves on to the next one
    opened = session["opened"]
    assert opened["submission"] == first["submissionId"]
    assert mentions(opened["texts"], "Save grade") and mentions(opened["texts"], "Not graded yet")
    saved = session["saved"]
    assert 0 <= saved["points"] <= opened["maxPoints"]
    assert mentions(saved["texts"], "Saved")
    assert saved["submission"] is not None and saved["submission"] != first["submissionId"]

    # c. the sandbox holds the grade, written with Rosa's identity, not yet visible to the student
    after_save = session["afterSave"]
    assert after_save["points"] == saved["points"]
    assert after_save["feedback"] == FEEDBACK
    assert after_save["gradedBy"] == rosa.id
    assert after_save["publishedPoints"] is None and after_save["publishedFeedback"] is None
    assert after_save["status"] == "submitted"

    # d. Return asks first; "Yes, return" publishes the grade to the student
    assert session["reopened"]["submission"] == first["submissionId"]
    assert mentions(session["reopened"]["texts"], "draft")
    confirm = session["confirm"]
    assert mentions(confirm["texts"], "Please confirm") and mentions(confirm["texts"], "visible to the student")
    assert confirm["returnButtons"] == [["Yes, return", True]]
    assert mentions(session["returned"]["texts"], "Returned to")
    after_return = session["afterReturn"]
    assert after_return["status"] == "returned"
    assert after_return["publishedPoints"] == saved["points"]
    assert after_return["publishedFeedback"] == FEEDBACK


@pytest.mark.playground
def test_the_channel_card_names_no_student_and_refreshes_for_the_class_teachers_only(session: dict[str, Any]) -> None:
    channel = session["channel"]
    chemistry = next(c for c in default_directory().classes.values() if c.display_name == "Chemistry 201")
    assert channel["classId"] == chemistry.id
    assert channel["conversation"].startswith(f"{chemistry.team_id};messageid=")  # a new post in General
    card = channel["card"]
    assert channel["studentCount"] > 0
    assert channel["studentNamesShown"] == []
    assert "openGrading" not in str(card) and "grade" not in {a.get("verb") for a in card.get("actions", [])}
    refresh = card["refresh"]
    assert refresh["action"]["verb"] == "refreshView"
    assert sorted(refresh["userIds"]) == sorted(f"29:{teacher}" for teacher in channel["teachers"])
    assert sorted(channel["teachers"]) == sorted(chemistry.teacher_ids)

    # Teams refreshes for listed teachers: Rosa gets her own list; a student refreshing gets the neutral card.
    teacher_view = channel["refreshAs_teacher"]
    assert teacher_view["type"] == "application/vnd.microsoft.card.adaptive"
    assert mentions(teacher_view["texts"], "Waiting to be graded: Chemistry 201")
    student_view = channel["refreshAs_student"]
    assert student_view["studentNamesShown"] == []
    assert not mentions(student_view["texts"], "Waiting to be graded:")


@pytest.mark.playground
def test_points_that_are_not_a_number_are_refused_in_the_card_and_nothing_is_written(session: dict[str, Any]) -> None:
    bad = session["badInput"]
    assert bad["submission"] == bad["target"] == session["saved"]["submission"]
    assert mentions(bad["texts"], "must be a number")
    assert bad["outcomesUnchanged"] is True
    assert bad["statusBefore"] == bad["statusAfter"] == "submitted"
    assert not mentions(bad["texts"], "Saved")
