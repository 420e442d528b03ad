"""infra/: the Bicep sets exactly Gradebot's settings, is well-formed, and the Toolkit files agree with it.

No Azure or Bicep CLI is available offline, so these are structural checks of the text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
INFRA = REPO_ROOT / "infra"
BICEP = (INFRA / "main.bicep").read_text(encoding="utf-8")

GRADEBOT_SETTINGS = {
    "MicrosoftAppId",
    "MicrosoftAppPassword",
    "MicrosoftAppType",
    "MicrosoftAppTenantId",
    "GRAPH_BASE_URL",
    "DATABASE_URL",
    "TOKEN_ENCRYPTION_KEY",
    "PUBLIC_BASE_URL",
    "PORT",
    "REMINDER_DATA_ACCESS",
    "GRAPH_REQUEST_BUDGET",
}
# Not Gradebot features: what App Service needs to run it (see the comment above hostingSettings in main.bicep).
HOSTING_SETTINGS = {"HOST", "SCM_DO_BUILD_DURING_DEPLOYMENT"}
TOOLKIT_ACTIONS = {
    "teamsApp/create",
    "teamsApp/validateManifest",
    "teamsApp/zipAppPackage",
    "teamsApp/validateAppPackage",
    "teamsApp/update",
    "teamsApp/publishAppPackage",
    "arm/deploy",
    "script",
    "azureAppService/zipDeploy",
}


def without_comments_and_strings(source: str) -> str:
    """Bicep code without // comments, each '...' string replaced by '' plus the expressions interpolated in it."""
    out: list[str] = []
    index = 0
    while index < len(source):
        if source.startswith("//", index):
            index = source.find("\n", index) if "\n" in source[index:] else len(source)
        elif source[index] == "'":
            end = index + 1
            while end < len(source) and source[end] != "'":
                if source[end] == "\n":
                    raise AssertionError(f"unterminated string near: {source[index : index + 60]!r}")
                end += 2 if source[end] == "\\" else 1
            expressions = re.findall(r"\$\{([^}]*)\}", source[index + 1 : end])
            out.append("''" + "".join(f" {expression}" for expression in expressions))
            index = end + 1
        else:
            out.append(source[index])
            index += 1
    return "".join(out)


def interpolations_are_balanced(string: str) -> bool:
    """Every `${` in a Bicep string closes with `}`, without nesting."""
    open_expression = False
    index = 0
    while index < len(string):
        if string.startswith("${", index):
            if open_expression:
                return False
            open_expression = True
            index += 2
            continue
        if string[index] == "}" and open_expression:
            open_expression = False
        index += 1
    return not open_expression


def array_block(name: str) -> str:
    """The text of `var <name> = [ ... ]`."""
    match = re.search(rf"^var {name} = \[\n(.*?)^\]", BICEP, re.MULTILINE | re.DOTALL)
    assert match, f"var {name} not found"
    return match.group(1)


def settings(block: str) -> dict[str, str]:
    return dict(re.findall(r"name: '([^']+)'\s*\n\s*value: (.+)", block))


def test_every_app_setting_is_one_of_gradebots_names() -> None:
    gradebot, hosting = settings(array_block("gradebotSettings")), settings(array_block("hostingSettings"))
    assert set(gradebot) == GRADEBOT_SETTINGS
    assert set(hosting) <= HOSTING_SETTINGS
    # The site takes exactly these two lists, and nothing else sets app settings.
    assert re.findall(r"appSettings: (.+)", BICEP) == ["concat(gradebotSettings, hostingSettings)"]
    assert "Microsoft.Web/sites/config" not in BICEP
    every_name = re.findall(r"name: '([A-Za-z_]+)'\s*\n\s*value:", BICEP)
    assert set(every_name) == set(gradebot) | set(hosting)


def test_gradebot_reads_every_setting_the_bicep_sets() -> None:
    read_by_gradebot = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert (GRADEBOT_SETTINGS | {"HOST"}) <= read_by_gradebot


def test_setting_values() -> None:
    values = settings(array_block("gradebotSettings"))
    assert values["MicrosoftAppId"] == "botAppId"
    assert values["MicrosoftAppType"] == "'SingleTenant'"
    assert values["MicrosoftAppTenantId"] == "botTenantId"
    assert values["GRAPH_BASE_URL"] == "graphBaseUrl"
    assert "param graphBaseUrl string = 'https://graph.microsoft.com/v1.0'" in BICEP
    assert values["PUBLIC_BASE_URL"] == "'https://${appHost}'"
    assert values["PORT"] == "'8000'"
    assert values["REMINDER_DATA_ACCESS"] == "reminderDataAccess"
    # Graph's throttle budget is shared by every instance of the app: each takes its share.
    assert values["GRAPH_REQUEST_BUDGET"] == "string(320 / instanceCount)"
    assert re.search(r"param reminderDataAccess string = 'delegated'", BICEP)
    assert "'delegated'\n  'application'\n])\nparam reminderDataAccess" in BICEP
    for name, secret in (
        ("MicrosoftAppPassword", "appPasswordSecret"),
        ("TOKEN_ENCRYPTION_KEY", "tokenKeySecret"),
        ("DATABASE_URL", "databaseUrlSecret"),
    ):
        assert values[name] == f"'@Microsoft.KeyVault(SecretUri=${{{secret}.properties.secretUri}})'"
    assert "value: 'postgresql://" in BICEP
    assert settings(array_block("hostingSettings")) == {"HOST": "'0.0.0.0'", "SCM_DO_BUILD_DURING_DEPLOYMENT": "'true'"}


def test_the_app_service_bot_database_and_vault_are_configured_as_required() -> None:
    for line in (
        "linuxFxVersion: 'PYTHON|3.11'",
        "appCommandLine: 'python app.py'",
        "alwaysOn: true",
        "httpsOnly: true",
        "healthCheckPath: '/healthz'",
        "kind: 'azurebot'",
        "msaAppId: botAppId",
        "msaAppTenantId: botTenantId",
        "msaAppType: 'SingleTenant'",
        "endpoint: 'https://${appHost}/api/messages'",
        "channelName: 'MsTeamsChannel'",
        "isEnabled: true",
        "var databaseName = 'gradebot'",
        "name: 'MicrosoftAppPassword'",
        "name: 'TokenEncryptionKey'",
        "enableRbacAuthorization: true",
    ):
        assert line in BICEP, line
    assert "'MultiTenant'" not in BICEP
    outputs = dict(re.findall(r"^output (\w+) string = (.+)$", BICEP, re.MULTILINE))
    assert outputs["BOT_ENDPOINT"] == "'https://${appHost}/api/messages'"
    assert outputs["BOT_DOMAIN"] == "appHost"


def test_the_bicep_is_well_formed() -> None:
    code = without_comments_and_strings(BICEP)
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in code:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack and stack.pop() == pairs[char], "unbalanced brackets"
    assert not stack, "unclosed brackets"
    for string in re.findall(r"'((?:[^'\\\n]|\\.)*)'", BICEP):
        assert interpolations_are_balanced(string), string
    resources = re.findall(r"^resource (\w+) '([^']+)' = \{$", BICEP, re.MULTILINE)
    assert len(resources) >= 10
    for symbol, type_and_version in resources:
        assert re.fullmatch(r"Microsoft\.[A-Za-z]+/[A-Za-z/]+@\d{4}-\d{2}-\d{2}(-preview)?", type_and_version), symbol


def test_every_parameter_is_described_and_every_parameter_and_variable_used() -> None:
    lines = BICEP.splitlines()
    parameters = []
    for index, line in enumerate(lines):
        match = re.match(r"param (\w+) (string|int|bool|object|array)", line)
        if not match:
            continue
        parameters.append(match.group(1))
        decorators = []
        back = index - 1
        while back >= 0 and lines[back].startswith(("@", "  ", "])")):
            decorators.append(lines[back])
            back -= 1
        assert any(d.startswith("@description(") for d in decorators), f"param {match.group(1)} has no description"
    code = without_comments_and_strings(BICEP)
    variables = re.findall(r"^var (\w+) = ", BICEP, re.MULTILINE)
    for name in [*parameters, *variables]:
        assert len(re.findall(rf"\b{name}\b", code)) >= 2, f"{name} is declared but never used"
    secure = re.findall(r"@secure\(\)\n(?:@\w+\(.*\)\n)*param (\w+)", BICEP)
    assert set(secure) == {"botAppPassword", "tokenEncryptionKey", "postgresAdminPassword"}
    outputs = "\n".join(line for line in lines if line.startswith("output "))
    assert not any(name in outputs for name in secure), "secrets must never be outputs"


def declared_parameters() -> dict[str, bool]:
    """Bicep parameter name -> whether it has a default value."""
    return {name: bool(default) for name, default in re.findall(r"^param (\w+) \w+( = .+)?$", BICEP, re.MULTILINE)}


def test_the_toolkit_parameters_file_matches_the_bicep() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = declared_parameters()
    assert set(parameters) <= set(declared)
    assert {name for name, has_default in declared.items() if not has_default} <= set(parameters)
    for name, entry in parameters.items():
        assert re.fullmatch(r"\$\{\{[A-Z_]+\}\}", entry["value"]), name
    for name in ("botAppPassword", "tokenEncryptionKey", "postgresAdminPassword"):
        assert parameters[name]["value"].startswith("${{SECRET_"), "secrets come from the .user env file"


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    document = yaml.safe_load((INFRA / "m365agents.yml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def test_the_toolkit_project_file_parses_into_known_actions(project: dict[str, Any]) -> None:
    assert project["version"] == "v1.11"
    assert set(project) == {"version", "environmentFolderPath", "provision", "deploy", "publish"}
    for stage in ("provision", "deploy", "publish"):
        assert isinstance(project[stage], list) and project[stage]
        for step in project[stage]:
            assert step["uses"] in TOOLKIT_ACTIONS, step["uses"]
            assert isinstance(step.get("with"), dict)
    uses = [step["uses"] for step in project["provision"]]
    assert uses == ["teamsApp/create", "arm/deploy", "script", "teamsApp/validateAppPackage", "teamsApp/update"]


def test_the_toolkit_provisions_with_the_bicep_and_ships_our_package(project: dict[str, Any]) -> None:
    steps = {step["uses"]: step for step in project["provision"]}
    (template,) = steps["arm/deploy"]["with"]["templates"]
    assert (INFRA / template["path"]).resolve() == INFRA / "main.bicep"
    assert (INFRA / template["parameters"]).resolve() == INFRA / "main.parameters.json"
    build = steps["script"]["with"]
    assert build["workingDirectory"] == ".."
    command = build["run"]
    assert command.startswith(".venv/bin/python -m manifest build ")
    for flag in ("--bot-app-id ${{BOT_ID}}", "--teams-app-id ${{TEAMS_APP_ID}}", "--domain ${{BOT_DOMAIN}}"):
        assert flag in command
    out = re.search(r"--out (\S+)", command)
    assert out is not None
    package_paths = {
        step["with"]["appPackagePath"]
        for stage in ("provision", "publish")
        for step in project[stage]
        if "appPackagePath" in step["with"]
    }
    assert package_paths == {f"../{out.group(1)}"}, "every step uses the package build.py writes"
    deploy = {step["uses"]: step for step in project["deploy"]}
    assert deploy["azureAppService/zipDeploy"]["with"]["resourceId"] == "${{BOT_AZURE_APP_SERVICE_RESOURCE_ID}}"
    assert "requirements.txt" in deploy["script"]["with"]["run"]


def test_every_toolkit_variable_has_a_source() -> None:
    """Each ${{VAR}} is in env/.env.dev, a secret for .env.dev.user, written by an earlier step, or built in."""
    texts = [(INFRA / "m365agents.yml").read_text(encoding="utf-8"), (INFRA / "main.parameters.json").read_text()]
    used = {name for text in texts for name in re.findall(r"\$\{\{([A-Z_]+)\}\}", text)}
    env_file = (INFRA / "env" / ".env.dev").read_text(encoding="utf-8")
    defined = set(re.findall(r"^([A-Z_]+)=", env_file, re.MULTILINE))
    outputs = set(re.findall(r"^output (\w+) ", BICEP, re.MULTILINE))  # arm/deploy writes Bicep outputs back
    unexplained = {name for name in used - defined - outputs if not name.startswith("SECRET_")}
    assert unexplained == set()
