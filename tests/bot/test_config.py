"""Settings: read once from the environment; production refuses the development paths and unsafe gaps."""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from app import _development_key
from bot.settings import Settings, SettingsError

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
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'gradebot.db'}")
    first, second = _development_key(settings), _development_key(settings)
    assert first == second and len(first) == 32
    key_file = tmp_path / "gradebot.db.token-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert _development_key(Settings.from_env({}, database_url="sqlite:///:memory:")) != first


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gradebot.contoso.example"])
def test_sandbox_mode_refuses_to_listen_beyond_loopback(host: str) -> None:
    with pytest.raises(SettingsError, match="HOST") as refused:
        Settings.from_env({"HOST": host})
    assert "MicrosoftAppId" in str(refused.value), "the message says why: authentication is off"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_sandbox_mode_listens_on_loopback(host: str) -> None:
    assert Settings.from_env({"HOST": host}).host == host


def test_production_may_listen_on_any_address() -> None:
    assert Settings.from_env({**PRODUCTION, "HOST": "0.0.0.0"}).host == "0.0.0.0"


@pytest.mark.parametrize("spelled", ["MicrosoftAppID", "microsoftappid", "MICROSOFTAPPID"])
def test_a_known_variable_spelled_with_another_case_is_warned_about(spelled: str) -> None:
    settings = Settings.from_env({spelled: PRODUCTION["MicrosoftAppId"], "token_encryption_key": KEY})
    assert settings.sandbox_mode, "the misspelled name is not read"
    warnings = "\n".join(settings.warnings)
    assert f"{spelled} is set but Gradebot reads MicrosoftAppId" in warnings
    assert "token_encryption_key is set but Gradebot reads TOKEN_ENCRYPTION_KEY" in warnings
    assert PRODUCTION["MicrosoftAppId"] not in warnings and KEY not in warnings, "values are never repeated"


def test_correctly_spelled_variables_give_no_warnings() -> None:
    assert Settings.from_env({**PRODUCTION, "PATH": "/usr/bin", "Path": "x"}).warnings == ()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"TOKEN_ENCRYPTION_OLD_KEYS": "c2hvcnQ="}, "TOKEN_ENCRYPTION_OLD_KEYS"),
        ({"TOKEN_ENCRYPTION_OLD_KEYS": f"{KEY},not base64!"}, "TOKEN_ENCRYPTION_OLD_KEYS"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_LEVEL_LIBRARIES": "chatty"}, "LOG_LEVEL_LIBRARIES"),
        ({"OUTBOX_RETENTION_DAYS": "0"}, "OUTBOX_RETENTION_DAYS"),
        ({"AUDIT_RETENTION_DAYS": "0"}, "AUDIT_RETENTION_DAYS"),
        ({"AUDIT_RETENTION_DAYS": "a year"}, "AUDIT_RETENTION_DAYS"),
        ({"AUDIT_RETENTION_DAYS": "20", "OUTBOX_RETENTION_DAYS": "30"}, "AUDIT_RETENTION_DAYS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
    ],
)
def test_new_settings_are_validated(change: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        Settings.from_env({**PRODUCTION, **change})


def test_audit_records_are_kept_400_days_unless_configured() -> None:
    assert Settings.from_env(PRODUCTION).audit_retention_days == 400
    assert Settings.from_env({**PRODUCTION, "AUDIT_RETENTION_DAYS": "30"}).audit_retention_days == 30


def test_logs_are_json_lines_in_production_and_text_in_sandbox_mode_unless_log_format_says() -> None:
    assert Settings.from_env(PRODUCTION).json_logs is True
    assert Settings.from_env({}).json_logs is False
    assert Settings.from_env({**PRODUCTION, "LOG_FORMAT": "Text"}).json_logs is False
    assert Settings.from_env({"LOG_FORMAT": "json"}).json_logs is True


def test_telemetry_is_off_unless_a_connection_string_is_set_and_the_string_is_never_shown() -> None:
    assert Settings.from_env(PRODUCTION).applicationinsights_connection_string == ""
    secret = "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=https://x.example/"
    settings = Settings.from_env({**PRODUCTION, "APPLICATIONINSIGHTS_CONNECTION_STRING": secret})
    assert settings.applicationinsights_connection_string == secret
    assert "InstrumentationKey" not in repr(settings)


def test_old_token_keys_are_a_comma_separated_list() -> None:
    old = [base64.urlsafe_b64encode(bytes([n]) * 32).decode() for n in (1, 2)]
    settings = Settings.from_env({**PRODUCTION, "TOKEN_ENCRYPTION_OLD_KEYS": f" {old[0]} , {old[1]},"})
    assert settings.token_encryption_old_keys == (b"\x01" * 32, b"\x02" * 32)
    assert "x01" not in repr(settings) and "k" * 8 not in repr(settings)


def test_sandbox_mode_without_the_sandbox_installed_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    """The sandbox is a development package, not in Gradebot's wheel: a production install with no MicrosoftAppId
    must say what is missing instead of failing on an import."""
    hide_the_sandbox = "import sys; sys.modules['sandbox'] = None; import app; sys.exit(app.main([]))"
    env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": f"sqlite:///{tmp_path / 'g.db'}"}  # noqa: TID251 - the child's environment
    result = subprocess.run(
        [sys.executable, "-c", hide_the_sandbox],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Gradebot cannot start" in result.stderr and "gradebot-sandbox" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("spelled", "field", "value"), [("port", "port", "4000"), ("host", "host", "10.0.0.9")])
def test_a_variable_named_like_a_field_instead_of_its_variable_is_ignored_as_its_warning_says(
    spelled: str, field: str, value: str
) -> None:
    settings = Settings.from_env({spelled: value})
    assert str(getattr(settings, field)) != value, f"{spelled} must not set {field.upper()}"
    assert f"{spelled} is set but Gradebot reads {field.upper()}" in "\n".join(settings.warnings)
