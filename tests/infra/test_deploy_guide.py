"""The deploy guides (README's "Deploying to a school" and infra/README.md) name what the code uses: Bicep parameters
and outputs, settings, the SSO resource, Graph scopes, routes and the package builder's options."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.identity.sso import IdentityConfig
from bot.settings import Settings
from tests.infra.test_bicep_parses import declared

REPO_ROOT = Path(__file__).resolve().parents[2]
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
GUIDES = {
    "README.md": README[README.index("## Deploying to a school") : README.index("## Developing")],
    "infra/README.md": (REPO_ROOT / "infra" / "README.md").read_text(encoding="utf-8"),
}
SETTING_NAMES = {field.alias for field in Settings.model_fields.values() if field.alias}


@pytest.mark.parametrize("guide", GUIDES)
def test_bicep_parameters_and_outputs_named_in_the_guide_exist(guide: str) -> None:
    text = GUIDES[guide]
    passed = set(re.findall(r"(\w+)=\"\$", text[text.index("az deployment group create") :]))
    assert passed and passed <= declared("parameter"), passed - declared("parameter")
    assert {"BOT_DOMAIN", "APP_SERVICE_NAME"} <= declared("output")
    assert "--template-file infra/main.bicep" in text


@pytest.mark.parametrize("guide", GUIDES)
def test_settings_named_in_the_guide_are_the_ones_gradebot_reads(guide: str) -> None:
    text = GUIDES[guide]
    named = set(re.findall(r"`(Microsoft\w+|[A-Z][A-Z_]{3,}[A-Z])(?:=\w+)?`", text))
    toolkit = (REPO_ROOT / "infra" / "env" / ".env.dev").read_text(encoding="utf-8")
    not_settings = (
        declared("output")
        | set(re.findall(r"(\w+)=\$\(", text))  # the guide's shell variables
        | set(re.findall(r"^(\w+)=", toolkit, re.MULTILINE))  # the Agents Toolkit's environment
        | set(re.findall(r"SECRET_\w+", text))
        | {"SCM_DO_BUILD_DURING_DEPLOYMENT"}  # App Service's, not Gradebot's
    )
    assert named - not_settings <= SETTING_NAMES, named - not_settings - SETTING_NAMES
    assert {"MicrosoftAppId", "TOKEN_ENCRYPTION_KEY", "PUBLIC_BASE_URL", "DATABASE_URL"} <= named


@pytest.mark.parametrize("guide", GUIDES)
def test_the_sso_settings_and_permissions_are_the_codes(guide: str) -> None:
    text = GUIDES[guide]
    resource = IdentityConfig("APP", "", "", "", (), redirect_uri="").sso_resource
    assert resource.replace("APP", "") in text  # api://botid-
    template = json.loads((REPO_ROOT / "manifest" / "manifest.template.json").read_text(encoding="utf-8"))
    assert template["webApplicationInfo"]["resource"] == resource.replace("APP", "{{BOT_APP_ID}}")
    for scope in Settings.from_env({}).scopes:
        assert f"`{scope.rsplit('/', 1)[1]}`" in text
    for teams_client in ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"):
        assert teams_client in text
    assert "`access_as_user`" in text and "/auth/callback" in text
    assert "`EduAssignments.Read.All`" in text and "`EduRoster.Read.All`" in text  # reminders with application access


def test_the_routes_and_the_package_builder_options_the_guides_use_exist() -> None:
    web = (REPO_ROOT / "bot" / "web.py").read_text(encoding="utf-8")
    for route in ("/api/messages", "/auth/callback", "/readyz", "/healthz"):
        assert f'"{route}"' in web
    usage = subprocess.run(
        [sys.executable, "-m", "manifest", "build", "--help"], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout
    for guide, text in GUIDES.items():
        commands = re.findall(r"python -m manifest build ((?:[^\n]|\\\n)*)", text)
        assert commands, guide
        for option in {flag for command in commands for flag in re.findall(r"--[a-z-]+", command)}:
            assert option in usage, f"{guide}: python -m manifest build has no {option}"
