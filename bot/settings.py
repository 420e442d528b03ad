"""Gradebot's settings (pydantic-settings), read once from the environment: the only module that reads it.
With no `MicrosoftAppId` Gradebot runs in sandbox mode (local Graph/Entra stand-in, no Azure); otherwise production."""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource, SettingsConfigDict

AppType = Literal["MultiTenant", "SingleTenant", "UserAssignedMSI"]
DataAccess = Annotated[Literal["delegated", "application"], BeforeValidator(lambda v: str(v).lower())]
LogLevel = Literal["", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
LogFormat = Annotated[Literal["", "json", "text"], BeforeValidator(lambda v: str(v).lower())]

_APP_TYPES = {name.lower(): name for name in get_args(AppType)}
_GIVEN: ContextVar[Mapping[str, str] | None] = ContextVar("gradebot_settings_source", default=None)


class SettingsError(ValueError):
    """A setting is missing, malformed or contradicts another; the message names the variable."""


def _key(text: str) -> bytes:
    if not text:
        return b""
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:  # binascii.Error is one
        raise ValueError("must be url-safe base64") from exc
    if len(raw) != 32:
        raise ValueError("must decode to exactly 32 bytes (each key, for a list)")
    return raw


def _keys(value: Any) -> Any:
    return tuple(_key(part.strip()) for part in value.split(",") if part.strip()) if isinstance(value, str) else value


def _app_type(value: Any) -> Any:
    return _APP_TYPES.get(str(value).lower(), value) if value else "MultiTenant"


Url = Annotated[str, AfterValidator(lambda url: url.rstrip("/"))]
Key = Annotated[bytes, BeforeValidator(lambda value: _key(value) if isinstance(value, str) else value)]
Keys = Annotated[tuple[bytes, ...], NoDecode, BeforeValidator(_keys)]
Level = Annotated[LogLevel, BeforeValidator(lambda value: value.upper() if isinstance(value, str) else value)]


class Settings(BaseSettings):
    """Every setting, under the environment variable that sets it (names are case-sensitive)."""

    model_config = SettingsConfigDict(
        case_sensitive=True, frozen=True, validate_by_name=True, str_strip_whitespace=True, extra="ignore"
    )

    app_id: str = Field("", alias="MicrosoftAppId")
    app_password: str = Field("", alias="MicrosoftAppPassword", repr=False)
    app_type: Annotated[AppType, BeforeValidator(_app_type)] = Field("MultiTenant", alias="MicrosoftAppType")
    app_tenant_id: str = Field("", alias="MicrosoftAppTenantId")
    graph_base_url: Url = Field("https://graph.microsoft.com/v1.0", alias="GRAPH_BASE_URL")
    graph_app_base_url: Url = Field("", alias="GRAPH_APP_BASE_URL")
    """Graph base for application-permission reads (reminders); empty = the beta twin of GRAPH_BASE_URL."""
    login_url: Url = Field("https://login.microsoftonline.com", alias="LOGIN_URL")
    database_url: str = Field("sqlite:///data/gradebot.db", alias="DATABASE_URL")
    host: str = Field("127.0.0.1", alias="HOST")
    port: int = Field(3978, alias="PORT", ge=1, le=65535)
    public_base_url: Url = Field("", alias="PUBLIC_BASE_URL")
    sandbox_url: Url = Field("", alias="SANDBOX_URL")
    token_encryption_key: Key = Field(b"", alias="TOKEN_ENCRYPTION_KEY", repr=False)
    token_encryption_old_keys: Keys = Field((), alias="TOKEN_ENCRYPTION_OLD_KEYS", repr=False)
    """Earlier keys, still accepted for reading stored sign-ins (each is re-sealed with the current key on use)."""
    reminder_data_access: DataAccess = Field("delegated", alias="REMINDER_DATA_ACCESS")
    reminders_enabled: bool = Field(True, alias="REMINDERS")
    reminder_interval_s: float = Field(60.0, alias="REMINDER_INTERVAL_S", ge=1, le=86400)
    bot_openid_metadata_url: str = Field("", alias="BOT_OPENID_METADATA_URL")
    """Override of the Bot Framework OpenID metadata (tests with locally generated keys); empty = Microsoft's."""
    graph_timeout_s: float = Field(10.0, alias="GRAPH_TIMEOUT_S", ge=1, le=300)
    graph_max_concurrency: int = Field(8, alias="GRAPH_MAX_CONCURRENCY", ge=1, le=64)
    graph_request_budget: int = Field(320, alias="GRAPH_REQUEST_BUDGET", ge=20, le=10000)
    """Requests (each $batch item counts) this instance sends per 10 s; Graph allows 350 per app per tenant."""
    log_level: Level = Field("INFO", alias="LOG_LEVEL")
    log_level_libraries: Level = Field("", alias="LOG_LEVEL_LIBRARIES")
    """Level for other packages' loggers (msal, urllib3, botbuilder…); empty = LOG_LEVEL, but never below INFO."""
    log_format: LogFormat = Field("", alias="LOG_FORMAT")
    """`json` (one object per line) or `text`; empty = json in production, text in sandbox mode (development)."""
    applicationinsights_connection_string: str = Field("", alias="APPLICATIONINSIGHTS_CONNECTION_STRING", repr=False)
    """Where traces and metrics go (Azure Monitor); empty = telemetry off: no exporter, nothing sent anywhere."""
    outbox_retention_days: int = Field(30, alias="OUTBOX_RETENTION_DAYS", ge=1, le=3650)
    """Finished grade writes older than this are purged by the janitor."""
    audit_retention_days: int = Field(400, alias="AUDIT_RETENTION_DAYS", ge=1, le=36500)
    """Audit records (who changed which grade, from what to what) older than this are purged by the janitor; a save
    whose record is gone can no longer be undone. 400 days: a school year and its appeals."""
    scopes: tuple[str, ...] = (
        "https://graph.microsoft.com/EduAssignments.ReadWrite",
        "https://graph.microsoft.com/EduRoster.ReadBasic",
    )
    warnings: tuple[str, ...] = ()
    """Problems that do not stop Gradebot (logged once logging is set up), e.g. a variable name in the wrong case."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        given = _GIVEN.get()
        if given is not None and isinstance(env_settings, EnvSettingsSource):
            # from_env's `env` in place of the process environment, and only the variables' names: with
            # validate_by_name the source would also read a field's own name (`port`), which _miscased calls ignored.
            aliases = {field.alias for field in cls.model_fields.values() if field.alias}
            env_settings.env_vars = {name: value for name, value in given.items() if name in aliases}
        return (init_settings, env_settings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **values: Any) -> Settings:
        """Every setting from `env` (default: the process environment) and `values` (by field name), validated;
        SettingsError names the variable that is wrong."""
        source = dict(os.environ if env is None else env)
        token = _GIVEN.set(source)
        try:
            return cls(**values, warnings=_miscased(source))
        except ValidationError as exc:
            error = exc.errors()[0]
            cause = error.get("ctx", {}).get("error")
            if isinstance(cause, SettingsError):
                raise cause from None
            field = cls.model_fields.get(str(error["loc"][0])) if error["loc"] else None
            name = field.alias if field and field.alias else ".".join(map(str, error["loc"]))
            raise SettingsError(f"{name} {cause or error['msg']}.") from None
        finally:
            _GIVEN.reset(token)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Refuse contradictory or unsafe combinations before anything starts."""
        if self.audit_retention_days < self.outbox_retention_days:
            raise SettingsError(
                f"AUDIT_RETENTION_DAYS ({self.audit_retention_days}) must be at least OUTBOX_RETENTION_DAYS "
                f"({self.outbox_retention_days}): a finished grade write is explained and undone by its audit record."
            )
        if self.sandbox_mode:
            if self.app_password:
                raise SettingsError("MicrosoftAppPassword is set but MicrosoftAppId is empty.")
            if not _is_loopback(self.host):
                raise SettingsError(
                    f"HOST is {self.host!r}, but with no MicrosoftAppId Gradebot runs in sandbox mode with "
                    "authentication off: it only listens on loopback (127.0.0.1, ::1 or localhost) then."
                )
            return self
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
        return self

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
        return max(logging.INFO, logging.getLevelNamesMapping()[self.log_level or "INFO"])

    @property
    def json_logs(self) -> bool:
        """Log lines as JSON objects: LOG_FORMAT if set, else in production (text in sandbox mode, for people)."""
        return self.log_format == "json" if self.log_format else not self.sandbox_mode

    def database_path(self) -> Path | None:
        """The SQLite file behind DATABASE_URL, if it is one."""
        path = self.database_url.removeprefix("sqlite:///")
        return Path(path) if path != self.database_url and not path.endswith(":memory:") else None


def _is_loopback(host: str) -> bool:
    try:
        return host.lower() == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _miscased(source: Mapping[str, str]) -> tuple[str, ...]:
    """Warnings for variables that differ from a name Gradebot reads only in case (e.g. MicrosoftAppID); names
    only, never values."""
    known = {field.alias for field in Settings.model_fields.values() if field.alias}
    by_folded = {name.casefold(): name for name in known}
    return tuple(
        f"{name} is set but Gradebot reads {by_folded[name.casefold()]} (names are case-sensitive); it was ignored."
        for name in sorted(source)
        if name not in known and name.casefold() in by_folded
    )
