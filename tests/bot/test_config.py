"""Settings: read once from the environment; production refuses the development paths and unsafe gaps."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from app import _development_key
from bot.config import Settings, SettingsError

KEY = base64.urlsafe_b64encode(b"k" * 32).decode()
PRODUCTION = {
    "MicrosoftAppId": "00000000-0000-0000-0000-0000000000aa",
    "MicrosoftAppPassword": "secret",
    "MicrosoftAppType": "SingleTenant",
    "MicrosoftAppTenantId": "00000000-0000-0000-0000-0000000000bb",
    "TOKEN_ENCRYPTION_KEY": KEY,
    "PUBLIC_BASE_URL": "https://gradebot.contoso.example",
}


def test_no_app_id_is_sandbox_mode_with_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.sandbox_mode and settings.port == 3978 and settings.database_url == "sqlite:///data/gradebot.db"
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_beta_url == "https://graph.microsoft.com/beta"


def test_a_complete_production_configuration_is_accepted() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert not settings.sandbox_mode and settings.token_encryption_key == b"k" * 32


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SANDBOX_URL": "http://127.0.0.1:8765"}, "SANDBOX_URL"),
        ({"TOKEN_ENCRYPTION_KEY": ""}, "TOKEN_ENCRYPTION_KEY"),
        ({"TOKEN_ENCRYPTION_KEY": "c2hvcnQ="}, "TOKEN_ENCRYPTION_KEY"),
        ({"MicrosoftAppTenantId": ""}, "MicrosoftAppTenantId"),
        ({"MicrosoftAppPassword": ""}, "MicrosoftAppPassword"),
        ({"PUBLIC_BASE_URL": "http://gradebot.example"}, "PUBLIC_BASE_URL"),
        ({"MicrosoftAppType": "Everyone"}, "MicrosoftAppType"),
        ({"PORT": "eighty"}, "PORT"),
        ({"REMINDER_DATA_ACCESS": "psychic"}, "REMINDER_DATA_ACCESS"),
        ({"REMINDERS": "maybe"}, "REMINDERS"),
    ],
)
def test_production_refuses_development_paths_and_gaps(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({**PRODUCTION, **change})


def test_the_development_token_key_is_kept_beside_the_database(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'gradebot.db'}")
    first, second = _development_key(settings), _development_key(settings)
    assert first == second and len(first) == 32
    key_file = tmp_path / "gradebot.db.token-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _development_key(Settings(database_url="sqlite:///:memory:")) != first
