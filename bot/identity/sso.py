"""Teams SSO tokens: what Gradebot's app registration is (IdentityConfig) and the validation of a token Teams hands
over — RS256 signature with the authority's published keys (PyJWKClient), audience, issuer, tenant and expiry."""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

import jwt

from bot.kernel.errors import SsoTokenError


@dataclass(frozen=True, slots=True)
class IdentityConfig:
    """What Gradebot's identity needs to know about its app registration and authority."""

    app_id: str
    app_secret: str
    authority_base: str
    """e.g. https://login.microsoftonline.com (production) or https://127.0.0.1:P (sandbox)."""
    tenant: str
    """The tenant for msal's authority: the app's tenant, or `organizations` for a multi-tenant app."""
    scopes: tuple[str, ...]
    redirect_uri: str
    """Where Gradebot's own sign-in page receives the authorization code."""
    ca_file: str | None = None
    """A CA bundle to trust (the sandbox's self-signed authority); None = the system store."""
    allowed_tenants: frozenset[str] = frozenset()
    """Tenants whose users may sign in; empty = any tenant."""

    @property
    def authority(self) -> str:
        return f"{self.authority_base.rstrip('/')}/{self.tenant}"

    @property
    def sso_resource(self) -> str:
        return f"api://botid-{self.app_id}"


class SsoValidator:
    """Validates Teams SSO tokens against the signing keys the authority publishes (fetched and cached by PyJWT)."""

    def __init__(self, config: IdentityConfig) -> None:
        self._config = config
        self._context = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else None
        self._clients: dict[str, jwt.PyJWKClient] = {}

    def _keys(self, tenant: str) -> jwt.PyJWKClient:
        if tenant not in self._clients:
            url = f"{self._config.authority_base.rstrip('/')}/{tenant}/discovery/v2.0/keys"
            self._clients[tenant] = jwt.PyJWKClient(url, lifespan=300, ssl_context=self._context)
        return self._clients[tenant]

    async def validate(self, token: str) -> dict[str, Any]:
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise SsoTokenError("The sign-in token is malformed.") from exc
        tenant = str(unverified.get("tid") or "")
        if not tenant or (self._config.allowed_tenants and tenant not in self._config.allowed_tenants):
            raise SsoTokenError("The sign-in token is from a tenant Gradebot does not serve.")
        try:
            # PyJWKClient fetches over blocking urllib (and again for an unknown key id): keep it off the loop.
            key = await asyncio.to_thread(self._keys(tenant).get_signing_key_from_jwt, token)
        except jwt.PyJWKClientConnectionError as exc:
            raise SsoTokenError("The sign-in keys could not be fetched.") from exc
        except jwt.PyJWTError as exc:
            raise SsoTokenError("The sign-in token was signed with an unknown key.") from exc
        base = self._config.authority_base.rstrip("/")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=[self._config.sso_resource, self._config.app_id],
                issuer=[f"{base}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"],
                options={"require": ["exp", "iat", "aud", "iss"]},
                leeway=60,
            )
        except jwt.ExpiredSignatureError as exc:
            raise SsoTokenError("The sign-in token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise SsoTokenError(f"The sign-in token was refused ({type(exc).__name__}).") from exc
        if not claims.get("oid"):
            raise SsoTokenError("The sign-in token names no user.")
        return claims
