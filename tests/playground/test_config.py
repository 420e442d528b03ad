"""devtools/playground/.m365agentsplayground.yml stages the sandbox school: every id, name and UPN is the seed's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.directory import Directory, SchoolClass, User, default_directory

CONFIG_PATH = Path(__file__).resolve().parents[2] / "devtools" / "playground" / ".m365agentsplayground.yml"


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    document = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def directory() -> Directory:
    return default_directory()


@pytest.fixture(scope="module")
def chemistry(directory: Directory) -> SchoolClass:
    return next(c for c in directory.classes.values() if c.display_name == "Chemistry 201")


def assert_is_directory_user(entry: dict[str, Any], user: User) -> None:
    assert entry == {
        "id": f"29:{user.id}",
        "name": user.display_name,
        "userPrincipleName": user.user_principal_name,  # sic: the Playground's spelling
        "aadObjectId": user.id,
        "givenName": user.given_name,
        "surname": user.surname,
        "email": user.mail,
    }


def test_the_playground_schema_constraints_hold(config: dict[str, Any]) -> None:
    assert config["version"] == "0.1.1"
    assert set(config) == {"version", "tenantId", "bot", "currentUser", "users", "personalChat", "groupChat", "team"}
    assert len(config["users"]) == 5
    assert len(config["team"]["channels"]) <= 1
    assert len(config["bot"]["name"]) <= 42
    ids = [
        config["currentUser"]["id"],
        *(user["id"] for user in config["users"]),
        config["personalChat"]["id"],
        config["groupChat"]["id"],
        config["team"]["id"],
        *(channel["id"] for channel in config["team"]["channels"]),
    ]
    assert len(ids) == len(set(ids)), "ids must be unique"


def test_tenant_bot_and_chats(config: dict[str, Any], directory: Directory) -> None:
    assert config["tenantId"] == directory.tenant_id
    assert config["bot"] == {"id": "28:gradebot", "name": "Gradebot"}
    assert config["personalChat"] == {"id": "a:personal-rosa"}
    assert set(config["groupChat"]) == {"id", "name"}
    assert config["groupChat"]["id"] and config["groupChat"]["name"]


def test_the_current_user_is_rosa_martinez(config: dict[str, Any], directory: Directory) -> None:
    rosa = directory.user_by_upn("rosa.martinez@contoso-high.example")
    assert rosa is not None and rosa.role == "teacher"
    assert_is_directory_user(config["currentUser"], rosa)


def test_users_are_the_co_teacher_and_four_chemistry_students(
    config: dict[str, Any], directory: Directory, chemistry: SchoolClass
) -> None:
    users = config["users"]
    david = directory.user_by_upn("david.okafor@contoso-high.example")
    assert david is not None
    assert_is_directory_user(users[0], david)
    assert david.id in chemistry.teacher_ids
    students = users[1:]
    assert len(students) == 4
    for entry in students:
        student = directory.users[entry["aadObjectId"]]
        assert student.role == "student"
        assert student.id in chemistry.student_ids
        assert_is_directory_user(entry, student)


def test_the_team_is_chemistry_201(config: dict[str, Any], chemistry: SchoolClass) -> None:
    team = config["team"]
    assert team["id"] == chemistry.team_id  # also the General channel's conversation id
    assert team["name"] == chemistry.display_name
    assert team["aadGroupId"] == chemistry.id  # the class team's group id is the educationClass id
    assert [channel["name"] for channel in team["channels"]] == ["Assignments"]
    assert team["channels"][0]["id"].startswith("19:") and team["channels"][0]["id"].endswith("@thread.tacv2")
