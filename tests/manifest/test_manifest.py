"""The Teams app manifest and package: valid against Microsoft's own v1.25 schema, broken ones refused readably."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from manifest.__main__ import main
from manifest.build import (
    DEFAULT_SCHEMA_ROOT,
    ManifestInputError,
    SchemaNotFoundError,
    build_package,
    render_manifest,
    schema_path,
    validate_manifest,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
TEAMS_APP_ID = "8b6d2f4e-1c3a-4b5e-9f7d-2a1c3e5b7d9f"
BOT_APP_ID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
DOMAIN = "gradebot-abc123.azurewebsites.net"
# Gradebot's commands, as the bot understands them (grade takes an assignment, remind takes on/off/settings).
BOT_COMMANDS = {"help", "classes", "assignments", "ungraded", "grade", "undo", "remind", "signout"}


@pytest.fixture(scope="module")
def schema_root() -> Path:
    """Microsoft's schemas from devtools/node_modules; missing means setup was not run: fail, never skip."""
    if not schema_path(DEFAULT_SCHEMA_ROOT, "1.25").is_file():
        pytest.fail(
            f"Microsoft's Teams manifest schema is not installed under {DEFAULT_SCHEMA_ROOT}: run scripts/setup "
            "(npm ci in devtools/ installs @microsoft/app-manifest)"
        )
    return DEFAULT_SCHEMA_ROOT


@pytest.fixture
def manifest() -> dict[str, Any]:
    return render_manifest(teams_app_id=TEAMS_APP_ID, bot_app_id=BOT_APP_ID, domain=DOMAIN, version="1.2.3")


def test_the_rendered_manifest_is_valid_against_microsofts_v1_25_schema(
    manifest: dict[str, Any], schema_root: Path
) -> None:
    assert manifest["$schema"] == "https://developer.microsoft.com/json-schemas/teams/v1.25/MicrosoftTeams.schema.json"
    assert manifest["manifestVersion"] == "1.25"
    assert validate_manifest(manifest, schema_root) == []


def test_placeholders_are_filled_for_sso_and_the_bot(manifest: dict[str, Any]) -> None:
    assert manifest["id"] == TEAMS_APP_ID
    assert manifest["version"] == "1.2.3"
    assert manifest["name"] == {"short": "Gradebot", "full": "Gradebot — grade class work in Teams"}
    bot = manifest["bots"][0]
    assert bot["botId"] == BOT_APP_ID
    assert bot["scopes"] == ["personal", "team", "groupChat"]
    assert (bot["isNotificationOnly"], bot["supportsFiles"]) == (False, False)
    assert manifest["permissions"] == ["identity", "messageTeamMembers"]
    assert manifest["validDomains"] == [DOMAIN, "token.botframework.com"]
    assert manifest["webApplicationInfo"] == {"id": BOT_APP_ID, "resource": f"api://botid-{BOT_APP_ID}"}
    assert "{{" not in json.dumps(manifest)
    for url in manifest["developer"].values():
        assert url == "Gradebot" or url.startswith("https://gradebot.example.com")


def test_the_descriptions_promise_students_never_see_each_others_data(manifest: dict[str, Any]) -> None:
    full = manifest["description"]["full"]
    assert "never shows students other students' data" in full
    assert "teachers" in full.lower() and "admins" in full.lower()
    assert len(manifest["description"]["short"]) <= 80


def test_every_listed_command_is_one_the_bot_understands(manifest: dict[str, Any]) -> None:
    command_lists = manifest["bots"][0]["commandLists"]
    assert [command_list["scopes"] for command_list in command_lists] == [["personal"], ["team", "groupChat"]]
    for command_list in command_lists:
        titles = [command["title"] for command in command_list["commands"]]
        assert set(titles) <= BOT_COMMANDS
        assert set(titles) == BOT_COMMANDS, "every command is offered in every scope"
        assert len(titles) == len(set(titles)) <= 10
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32
            assert 0 < len(command["description"]) <= 128
    descriptions = {c["title"]: c["description"] for c in command_lists[0]["commands"]}
    assert "<assignment>" in descriptions["grade"]
    assert all(word in descriptions["remind"] for word in ("on", "off", "settings"))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("bot_app_id", "not-a-guid", "--bot-app-id must be a GUID"),
        ("teams_app_id", "8b6d2f4e1c3a4b5e9f7d2a1c3e5b7d9f", "--teams-app-id must be a GUID"),
        ("domain", "https://gradebot.contoso.edu/api/messages", "bare host name"),
        ("domain", "gradebot.contoso.edu:443", "bare host name"),
        ("domain", "localhost", "public DNS host name"),
        ("domain", "-bad-.example.com", "public DNS host name"),
        ("version", "1.0", "MAJOR.MINOR.PATCH"),
    ],
)
def test_bad_inputs_are_refused_with_a_clear_message(field: str, value: str, message: str) -> None:
    arguments = {"teams_app_id": TEAMS_APP_ID, "bot_app_id": BOT_APP_ID, "domain": DOMAIN, "version": "1.0.0"}
    arguments[field] = value
    with pytest.raises(ManifestInputError, match=message):
        render_manifest(
            teams_app_id=arguments["teams_app_id"],
            bot_app_id=arguments["bot_app_id"],
            domain=arguments["domain"],
            version=arguments["version"],
        )


def test_inputs_are_normalised_to_lower_case() -> None:
    rendered = render_manifest(
        teams_app_id=TEAMS_APP_ID.upper(), bot_app_id=BOT_APP_ID.upper(), domain="GradeBot.Contoso.EDU"
    )
    assert rendered["id"] == TEAMS_APP_ID
    assert rendered["webApplicationInfo"]["resource"] == f"api://botid-{BOT_APP_ID}"
    assert rendered["validDomains"][0] == "gradebot.contoso.edu"


def test_a_template_placeholder_the_builder_does_not_know_is_refused(manifest: dict[str, Any]) -> None:
    template = copy.deepcopy(manifest) | {"packageName": "{{PACKAGE_NAME}}"}
    with pytest.raises(ManifestInputError, match=r"\{\{PACKAGE_NAME\}\}"):
        render_manifest(teams_app_id=TEAMS_APP_ID, bot_app_id=BOT_APP_ID, domain=DOMAIN, template=template)


def test_a_broken_manifest_is_rejected_with_readable_errors(manifest: dict[str, Any], schema_root: Path) -> None:
    broken = copy.deepcopy(manifest)
    broken["bots"][0]["botId"] = "gradebot"
    broken["bots"][0]["scopes"] = ["personal", "team", "groupchat"]  # valid only up to v1.16
    broken["bots"][0]["commandLists"][0]["commands"][0]["title"] = "help me find my ungraded assignments"  # 36
    broken["accentColor"] = "blue"
    problems = validate_manifest(broken, schema_root)
    assert any(p.startswith("/bots/0/botId: 'gradebot' does not match") for p in problems), problems
    assert "/bots/0/scopes/2: 'groupchat' is not one of ['team', 'personal', 'groupChat', 'copilot']" in problems
    assert (
        "/bots/0/commandLists/0/commands/0/title: 'help me find my ungraded assignments' is longer than 32 characters"
        in problems
    )
    assert any(p.startswith("/accentColor: 'blue' does not match") for p in problems), problems
    assert len(problems) == 4


def test_schema_limits_count_too(manifest: dict[str, Any], schema_root: Path) -> None:
    broken = copy.deepcopy(manifest)
    broken["name"]["short"] = "Gradebot for every class and every teacher"  # schema: ≤ 30
    broken["bots"][0]["commandLists"][0]["commands"] *= 2  # 16 commands: schema allows 12, Gradebot 10
    broken.pop("description")
    problems = validate_manifest(broken, schema_root)
    assert "/: 'description' is a required property" in problems
    assert any(p.startswith("/name/short: ") and "is too long" in p for p in problems), problems
    assert any(p.startswith("/bots/0/commandLists/0/commands: ") and "is too long" in p for p in problems), problems
    assert "/bots/0/commandLists/0/commands: 16 commands, Gradebot keeps each list to 10" in problems


def test_a_missing_schema_says_to_run_setup(manifest: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(SchemaNotFoundError, match="scripts/setup"):
        validate_manifest(manifest, tmp_path)


def test_the_package_has_exactly_the_manifest_and_two_icons_at_its_root(
    manifest: dict[str, Any], tmp_path: Path
) -> None:
    package = build_package(manifest, tmp_path / "out" / "gradebot.zip")
    with zipfile.ZipFile(package) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        assert json.loads(archive.read("manifest.json")) == manifest
        with Image.open(io.BytesIO(archive.read("color.png"))) as color:
            assert color.size == (192, 192)
        with Image.open(io.BytesIO(archive.read("outline.png"))) as outline:
            assert outline.size == (32, 32)


def test_the_package_is_reproducible(manifest: dict[str, Any], tmp_path: Path) -> None:
    first = build_package(manifest, tmp_path / "a.zip").read_bytes()
    second = build_package(manifest, tmp_path / "b.zip").read_bytes()
    assert first == second


def test_the_command_line_builds_a_valid_package(schema_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gradebot.zip"
    arguments = ["build", "--bot-app-id", BOT_APP_ID, "--teams-app-id", TEAMS_APP_ID, "--domain", DOMAIN]
    status = main([*arguments, "--out", str(out)])
    assert status == 0
    with zipfile.ZipFile(io.BytesIO(out.read_bytes())) as archive:
        packaged = json.loads(archive.read("manifest.json"))
    assert packaged["version"] == "1.0.0"
    assert validate_manifest(packaged, schema_root) == []


def test_the_command_line_refuses_bad_input_without_writing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "gradebot.zip"
    status = main(["build", "--bot-app-id", "x", "--teams-app-id", TEAMS_APP_ID, "--domain", DOMAIN, "--out", str(out)])
    assert status == 2
    assert "--bot-app-id must be a GUID" in capsys.readouterr().err
    assert not out.exists()


def test_the_command_line_reports_a_missing_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["build", "--bot-app-id", BOT_APP_ID, "--teams-app-id", TEAMS_APP_ID, "--domain", DOMAIN]
    status = main([*arguments, "--out", str(tmp_path / "x.zip"), "--schema-root", str(tmp_path)])
    assert status == 2
    assert "run scripts/setup" in capsys.readouterr().err.lower()


def test_python_dash_m_manifest_build_is_the_command(schema_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "gradebot.zip"
    arguments = ["--bot-app-id", BOT_APP_ID, "--teams-app-id", TEAMS_APP_ID, "--domain", DOMAIN, "--out", str(out)]
    built = subprocess.run(
        [sys.executable, "-m", "manifest", "build", *arguments], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert (built.returncode, built.stdout.strip()) == (0, str(out)), built.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
    usage = subprocess.run([sys.executable, "-m", "manifest"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert usage.returncode == 2 and "{build}" in usage.stderr
