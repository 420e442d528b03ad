"""Gradebot's settings, read once from the environment: the only module in Gradebot that reads os.environ.

With no `MicrosoftAppId` Gradebot runs in sandbox mode (local Graph/Entra stand-in, no Azure); otherwise production.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

AppType = Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"]
DataAccess = Literal["delegated", "application"]

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
DEFAULT_LOGIN_URL = "https://login.microsoftonline.com"
DEFAULT_DATABASE_URL = "sqlite:///data/gradebot.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(ValueError):
    """A setting is missing, malformed or contradicts another; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    app_id: str = ""
    app_password: str = field(default="", repr=False)
    app_type: AppType = "MultiTenant"
    app_tenant_id: str = ""
    graph_base_url: str = DEFAULT_GRAPH_URL
    graph_app_base_url: str = ""
    """Graph base for application-permission reads (reminders); defaults to the beta twin of graph_base_url."""
    login_url: str = DEFAULT_LOGIN_URL
    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 3978
    public_base_url: str = ""
    sandbox_url: str = ""
    token_encryption_key: bytes = field(default=b"", repr=False)
    token_encryption_old_keys: tuple[bytes, ...] = field(default=(), repr=False)
    """Earlier keys, still accepted for reading stored sign-ins (each is re-sealed with the current key on use)."""
    reminder_data_access: DataAccess = "delegated"
    reminders_enabled: bool = True
    reminder_interval_s: float = 60.0
    bot_openid_metadata_url: str = ""
    """Override of the Bot Framework OpenID metadata (tests with locally generated keys); empty = Microsoft's."""
    graph_timeout_s: float = 10.0
    graph_max_concurrency: int = 8
    graph_request_budget: int = 320
    """Requests (each $batch item counts) this instance sends per 10 s; Graph allows 350 per app per tenant."""
    log_level: str = "INFO"
    log_level_libraries: str = ""
    """Level for other packages' loggers (msal, urllib3, botbuilder…); empty = LOG_LEVEL, but never below INFO."""
    outbox_retention_days: int = 30
    """Finished grade writes older than this are purged by the housekeeping task."""
    warnings: tuple[str, ...] = ()
    """Problems that do not stop Gradebot (logged once logging is set up), e.g. a variable name in the wrong case."""
    scopes: tuple[str, ...] = (
        "https://graph.microsoft.com/EduAssignments.ReadWrite",
        "https://graph.microsoft.com/EduRoster.ReadBasic",
    )

    @property
    def sandbox_mode(self) -> bool:
        """No Azure app id: run against the local sandbox with Bot Framework authentication off."""
        return not self.app_id

    @property
    def library_log_level(self) -> int:
        """The level other packages' loggers get: LOG_LEVEL_LIBRARIES if set, else LOG_LEVEL but at least INFO
        (msal, urllib3 and friends log authorization codes, PKCE verifiers and request bodies at DEBUG)."""
        if self.log_level_libraries:
            return logging.getLevelNamesMapping()[self.log_level_libraries]
        return max(logging.INFO, logging.getLevelNamesMapping()[self.log_level])

    @property
    def graph_beta_url(self) -> str:
        return self.graph_base_url.rstrip("/").removesuffix("/v1.0") + "/beta"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; raise SettingsError with the variable's name when one is wrong."""
        source = os.environ if env is None else env
        asked: set[str] = set()

        def get(name: str, default: str = "") -> str:
            asked.add(name)
            return source.get(name, default).strip()

        app_type = get("MicrosoftAppType", "MultiTenant") or "MultiTenant"
        normalized = {
            "multitenant": "MultiTenant",
            "singletenant": "SingleTenant",
            "userassignedmsi": "UserAssignedMSI",
        }
        if app_type.lower() not in normalized:
            raise SettingsError("MicrosoftAppType must be MultiTenant, SingleTenant or UserAssignedMSI.")
        access = get("REMINDER_DATA_ACCESS", "delegated").lower()
        if access not in ("delegated", "application"):
            raise SettingsError("REMINDER_DATA_ACCESS must be 'delegated' or 'application'.")
        settings = cls(
            app_id=get("MicrosoftAppId"),
            app_password=get("MicrosoftAppPassword"),
            app_type=normalized[app_type.lower()],  # type: ignore[arg-type]
            app_tenant_id=get("MicrosoftAppTenantId"),
            graph_base_url=get("GRAPH_BASE_URL", DEFAULT_GRAPH_URL).rstrip("/"),
            graph_app_base_url=get("GRAPH_APP_BASE_URL").rstrip("/"),
            login_url=get("LOGIN_URL", DEFAULT_LOGIN_URL).rstrip("/"),
            database_url=get("DATABASE_URL", DEFAULT_DATABASE_URL),
            host=get("HOST", "127.0.0.1"),
            port=_int(get("PORT", "3978"), "PORT", 1, 65535),
            public_base_url=get("PUBLIC_BASE_URL").rstrip("/"),
            sandbox_url=get("SANDBOX_URL").rstrip("/"),
            token_encryption_key=_key(get("TOKEN_ENCRYPTION_KEY"), "TOKEN_ENCRYPTION_KEY"),
            token_encryption_old_keys=tuple(
                _key(text, "TOKEN_ENCRYPTION_OLD_KEYS")
                for text in (part.strip() for part in get("TOKEN_ENCRYPTION_OLD_KEYS").split(","))
                if text
            ),
            reminder_data_access=access,  # type: ignore[arg-type]
            reminders_enabled=_bool(get("REMINDERS", "on"), "REMINDERS"),
            reminder_interval_s=float(_int(get("REMINDER_INTERVAL_S", "60"), "REMINDER_INTERVAL_S", 1, 86400)),
            bot_openid_metadata_url=get("BOT_OPENID_METADATA_URL"),
            graph_timeout_s=float(_int(get("GRAPH_TIMEOUT_S", "10"), "GRAPH_TIMEOUT_S", 1, 300)),
            graph_max_concurrency=_int(get("GRAPH_MAX_CONCURRENCY", "8"), "GRAPH_MAX_CONCURRENCY", 1, 64),
            graph_request_budget=_int(get("GRAPH_REQUEST_BUDGET", "320"), "GRAPH_REQUEST_BUDGET", 20, 10000),
            log_level=_level(get("LOG_LEVEL") or "INFO", "LOG_LEVEL"),
            log_level_libraries=_level(get("LOG_LEVEL_LIBRARIES"), "LOG_LEVEL_LIBRARIES"),
            outbox_retention_days=_int(get("OUTBOX_RETENTION_DAYS", "30"), "OUTBOX_RETENTION_DAYS", 1, 3650),
            warnings=_miscased(source, asked),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuse contradictory or unsafe combinations before anything starts."""
        if self.sandbox_mode:
            if self.app_password:
                raise SettingsError("MicrosoftAppPassword is set but MicrosoftAppId is empty.")
            if not _is_loopback(self.host):
                raise SettingsError(
                    f"HOST is {self.host!r}, but with no MicrosoftAppId Gradebot runs in sandbox mode with "
                    "authentication off: it only listens on loopback (127.0.0.1, ::1 or localhost) then."
                )
            return
        # Production: the development paths (sandbox-minted tokens) are refused.
        if self.sandbox_url:
            raise SettingsError("SANDBOX_URL is a development setting; unset it when MicrosoftAppId is configured.")
        if self.app_type == "SingleTenant" and not self.app_tenant_id:
            raise SettingsError("MicrosoftAppTenantId is required when MicrosoftAppType is SingleTenant.")
        if self.app_type != "UserAssignedMSI" and not self.app_password:
            raise SettingsError("MicrosoftAppPassword is required when MicrosoftAppId is set.")
        if not self.token_encryption_key:
            raise SettingsError(
                "TOKEN_ENCRYPTION_KEY is required in production: 32 random bytes, url-safe base64 "
                "(python -c 'import os,base64;print(base64.urlsafe_b64encode(os.urandom(32)).decode())')."
            )
        if not self.public_base_url.startswith("https://"):
            raise SettingsError("PUBLIC_BASE_URL must be the bot's public https address (used for sign-in links).")

    def database_path(self) -> Path | None:
        """The SQLite file behind DATABASE_URL, if it is one."""
        prefix = "sqlite:///"
        if not self.database_url.startswith(prefix) or self.database_url.endswith(":memory:"):
            return None
        return Path(self.database_url[len(prefix) :])


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {text!r}.") from exc
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}.")
    return value


def _bool(text: str, name: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "on", "yes"):
        return True
    if lowered in ("0", "false", "off", "no"):
        return False
    raise SettingsError(f"{name} must be on or off, got {text!r}.")


def _key(text: str, name: str) -> bytes:
    if not text:
        return b""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SettingsError(f"{name} must be url-safe base64.") from exc
    if len(raw) != 32:
        raise SettingsError(f"{name} must decode to exactly 32 bytes (each key, for a list).")
    return raw


def _level(text: str, name: str) -> str:
    level = text.upper()
    if level and level not in LOG_LEVELS:
        raise SettingsError(f"{name} must be one of {', '.join(LOG_LEVELS)}, got {text!r}.")
    return level


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _miscased(source: Mapping[str, str], known: set[str]) -> tuple[str, ...]:
    """Warnings for variables that differ from a name Gradebot reads only in case (e.g. MicrosoftAppID); names
    only, never values."""
    by_folded = {name.casefold(): name for name in known}
    return tuple(
        f"{name} is set but Gradebot reads {by_folded[name.casefold()]} (names are case-sensitive); it was ignored."
        for name in sorted(source)
        if name not in known and name.casefold() in by_folded
    )
