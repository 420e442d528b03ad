"""Teacher identity: Teams SSO token → MSAL on-behalf-of → Graph token, a per-user MSAL cache encrypted at rest,
Gradebot's own sign-in page (MSAL authorization-code flow) and sign-out. The only module that imports msal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import jwt
import msal
import requests
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from graph.connection import TokenProvider
from storage.store import Store

log = logging.getLogger(__name__)

_T = TypeVar("_T")
SIGN_IN_TTL = timedelta(minutes=15)
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
JWKS_REFRESH_S = 300.0


class SignInRequiredError(Exception):
    """No usable Graph token for this teacher: they must sign in (again)."""


class SsoTokenError(Exception):
    """A Teams SSO token failed validation or could not be exchanged on behalf of the user."""


class TokenCipher:
    """AES-256-GCM for token caches at rest; the user key is bound in as associated data."""

    VERSION = b"\x01"

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("The token encryption key must be 32 bytes.")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, user_key: str) -> bytes:
        nonce = os.urandom(12)
        return self.VERSION + nonce + self._aead.encrypt(nonce, plaintext, user_key.encode())

    def open(self, blob: bytes, user_key: str) -> bytes | None:
        """The plaintext, or None when the blob is damaged, from another user or sealed with another key."""
        if len(blob) < 29 or blob[:1] != self.VERSION:
            return None
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], user_key.encode())
        except InvalidTag:
            return None


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
    """Validates Teams SSO tokens: RS256 signature via the authority's JWKS, audience, issuer, tenant, expiry."""

    def __init__(self, config: IdentityConfig, http: httpx.AsyncClient) -> None:
        self._config = config
        self._http = http
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def validate(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise SsoTokenError("The sign-in token is malformed.") from exc
        tenant = str(unverified.get("tid") or "")
        if not tenant or (self._config.allowed_tenants and tenant not in self._config.allowed_tenants):
            raise SsoTokenError("The sign-in token is from a tenant Gradebot does not serve.")
        key = await self._key(str(header.get("kid") or ""), tenant)
        base = self._config.authority_base.rstrip("/")
        issuers = [f"{base}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"]
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=[self._config.sso_resource, self._config.app_id],
                issuer=issuers,
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

    async def _key(self, kid: str, tenant: str) -> Any:
        async with self._lock:
            stale = time.monotonic() - self._fetched_at > JWKS_REFRESH_S
            if kid not in self._keys and (stale or not self._keys):
                url = f"{self._config.authority_base.rstrip('/')}/{tenant}/discovery/v2.0/keys"
                try:
                    response = await self._http.get(url)
                    response.raise_for_status()
                    jwks = jwt.PyJWKSet.from_dict(response.json())
                except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                    raise SsoTokenError("The sign-in keys could not be fetched.") from exc
                self._keys = {k.key_id: k.key for k in jwks.keys if k.key_id}
                self._fetched_at = time.monotonic()
        if kid not in self._keys:
            raise SsoTokenError("The sign-in token was signed with an unknown key.")
        return self._keys[kid]


def user_key(tenant_id: str, aad_object_id: str) -> str:
    return f"{tenant_id}:{aad_object_id}"


class TeacherIdentity:
    """Gets Graph tokens for a teacher: SSO exchange (OBO), silent from the encrypted MSAL cache, or sign-in."""

    def __init__(
        self,
        config: IdentityConfig,
        store: Store,
        cipher: TokenCipher,
        validator: SsoValidator,
        public_base_url: str,
        clock: Callable[[], datetime],
        sandbox_sso: Callable[[str], Awaitable[str]] | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._cipher = cipher
        self._validator = validator
        self._public_base_url = public_base_url.rstrip("/")
        self._clock = clock
        self._sandbox_sso = sandbox_sso
        self._http_cache: MutableMapping[str, Any] = {}
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._session: requests.Session | None = None
        if config.ca_file:
            # A private CA (the sandbox): trust exactly it, whatever REQUESTS_CA_BUNDLE says.
            self._session = requests.Session()
            self._session.trust_env = False
            self._session.verify = config.ca_file
        # One lock per user: concurrent refreshes of one cache would race each other's writes.
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def sso_resource(self) -> tuple[str, str]:
        return (self._config.app_id, self._config.sso_resource)

    def _app(self, cache: msal.SerializableTokenCache | None) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            self._config.app_id,
            client_credential=self._config.app_secret,
            authority=self._config.authority,
            token_cache=cache,
            http_client=self._session,
            timeout=10,
            http_cache=self._http_cache,
            instance_discovery=False,
        )

    async def _load_cache(self, key: str) -> msal.SerializableTokenCache:
        cache = msal.SerializableTokenCache()
        blob = await self._store.load_token_cache(key)
        if blob:
            plaintext = self._cipher.open(blob, key)
            if plaintext is None:
                log.warning("discarding an unreadable token cache for a user (key rotated or data damaged)")
            else:
                cache.deserialize(plaintext.decode("utf-8"))
        return cache

    async def _save_cache(self, key: str, cache: msal.SerializableTokenCache) -> None:
        if cache.has_state_changed:
            blob = self._cipher.seal(cache.serialize().encode("utf-8"), key)
            await self._store.save_token_cache(key, blob, self._clock())

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def exchange(self, tenant_id: str, aad_object_id: str, sso_token: str) -> str:
        """Validate a Teams SSO token for this user and exchange it on their behalf; returns a Graph token."""
        claims = await self._validator.validate(sso_token)
        if claims.get("oid") != aad_object_id or (tenant_id and claims.get("tid") != tenant_id):
            raise SsoTokenError("The sign-in token belongs to another user.")
        key = user_key(str(claims["tid"]), aad_object_id)
        scopes = list(self._config.scopes)

        def on_behalf_of(cache: msal.SerializableTokenCache) -> dict[str, Any]:
            result: dict[str, Any] = self._app(cache).acquire_token_on_behalf_of(sso_token, scopes)
            return result

        result = await self._with_cache(key, on_behalf_of)
        if "access_token" not in result:
            log.info("on-behalf-of exchange refused: %s", result.get("error"))
            raise SsoTokenError("Microsoft Entra ID refused to exchange the sign-in token.")
        return str(result["access_token"])

    async def silent(self, tenant_id: str, aad_object_id: str, force_refresh: bool = False) -> str | None:
        """A Graph token from the user's cache (refreshed with the refresh token when needed), or None."""
        scopes = list(self._config.scopes)

        def from_cache(cache: msal.SerializableTokenCache) -> dict[str, Any] | None:
            app = self._app(cache)
            accounts = [a for a in app.get_accounts() if str(a.get("local_account_id")) == aad_object_id]
            if not accounts:
                return None
            result: dict[str, Any] | None = app.acquire_token_silent(scopes, accounts[0], force_refresh=force_refresh)
            return result

        result = await self._with_cache(user_key(tenant_id, aad_object_id), from_cache)
        if not result or "access_token" not in result:
            return None
        return str(result["access_token"])

    async def _with_cache(self, key: str, work: Callable[[msal.SerializableTokenCache], _T]) -> _T:
        """Run msal work for one user in a worker thread (msal blocks on HTTP), persisting the cache if it changed."""
        async with self._lock(key):
            cache = await self._load_cache(key)
            result = await asyncio.to_thread(work, cache)
            await self._save_cache(key, cache)
        return result

    def provider(self, tenant_id: str, aad_object_id: str, sso_token: str | None = None) -> TokenProvider:
        """A Graph token provider for this teacher, fetching once and refreshing only when Graph refused the token;
        raises SignInRequiredError when there is no way to get one."""
        held: dict[str, str] = {}

        async def token(refresh: bool = False) -> str:
            if refresh and "token" in held:
                refreshed = await self.silent(tenant_id, aad_object_id, force_refresh=True)
                if refreshed is None:
                    raise SignInRequiredError()
                held["token"] = refreshed
            if "token" not in held:
                held["token"] = await self._acquire(tenant_id, aad_object_id, sso_token)
            return held["token"]

        return token

    async def _acquire(self, tenant_id: str, aad_object_id: str, sso_token: str | None) -> str:
        if sso_token:
            return await self.exchange(tenant_id, aad_object_id, sso_token)
        found = await self.silent(tenant_id, aad_object_id)
        if found is None and self._sandbox_sso is not None:
            # Development stand-in for Teams SSO: the sandbox mints the SSO token; the same msal path runs.
            found = await self.exchange(tenant_id, aad_object_id, await self._sandbox_sso(aad_object_id))
        if found is None:
            raise SignInRequiredError()
        return found

    def app_provider(self, tenant_id: str) -> TokenProvider:
        """Gradebot's own (application-permission) Graph token for a tenant: client credentials, cached by msal."""

        def client() -> msal.ConfidentialClientApplication:
            # Built in the worker thread: msal discovers the authority over blocking HTTP when constructed.
            app = self._apps.get(tenant_id)
            if app is None:
                app = msal.ConfidentialClientApplication(
                    self._config.app_id,
                    client_credential=self._config.app_secret,
                    authority=f"{self._config.authority_base.rstrip('/')}/{tenant_id}",
                    http_client=self._session,
                    timeout=10,
                    http_cache=self._http_cache,
                    instance_discovery=False,
                )
                self._apps[tenant_id] = app
            return app

        async def token(refresh: bool = False) -> str:
            def fetch() -> dict[str, Any]:
                app = client()
                if refresh:
                    app.remove_tokens_for_client()
                result: dict[str, Any] = app.acquire_token_for_client([GRAPH_DEFAULT_SCOPE])
                return result

            result = await asyncio.to_thread(fetch)
            if "access_token" not in result:
                log.warning("client-credentials token refused for tenant %s: %s", tenant_id, result.get("error"))
                raise SignInRequiredError()
            return str(result["access_token"])

        return token

    async def sign_out(self, tenant_id: str, aad_object_id: str) -> bool:
        return await self._store.delete_token_cache(user_key(tenant_id, aad_object_id))

    # Gradebot's own sign-in page: MSAL authorization-code flow, tokens land in the same encrypted cache.

    def sign_in_url(self, tenant_id: str, aad_object_id: str) -> str:
        return f"{self._public_base_url}/auth/start?" + urlencode({"tid": tenant_id, "oid": aad_object_id})

    async def start_sign_in(self, tenant_id: str, aad_object_id: str) -> str:
        """Begin the authorization-code flow for a Teams user; returns the authority URL to send the browser to."""
        flow = await asyncio.to_thread(
            lambda: self._app(None).initiate_auth_code_flow(
                list(self._config.scopes),
                redirect_uri=self._config.redirect_uri,
                state=secrets.token_urlsafe(24),
                response_mode="form_post",
            )
        )
        record = {"flow": flow, "tid": tenant_id, "oid": aad_object_id}
        await self._store.set_value(f"signin:{flow['state']}", json.dumps(record), self._clock())
        return str(flow["auth_uri"])

    async def finish_sign_in(self, query: Mapping[str, str]) -> str:
        """Redeem the code at the redirect; returns the verification code Teams passes back as `state`."""
        state = query.get("state", "")
        raw = await self._store.get_value(f"signin:{state}") if state else None
        if raw is None:
            raise SsoTokenError("This sign-in link has expired or was already used. Start again from Teams.")
        record = json.loads(raw)
        await self._store.set_value(f"signin:{state}", json.dumps({"used": True}), self._clock())
        if "flow" not in record:
            raise SsoTokenError("This sign-in link was already used. Start again from Teams.")
        key = user_key(record["tid"], record["oid"])

        def redeem(cache: msal.SerializableTokenCache) -> dict[str, Any]:
            result: dict[str, Any] = self._app(cache).acquire_token_by_auth_code_flow(record["flow"], dict(query))
            return result

        result = await self._with_cache(key, redeem)
        if "access_token" not in result:
            raise SsoTokenError("Microsoft Entra ID did not complete the sign-in.")
        signed_in = str((result.get("id_token_claims") or {}).get("oid") or "")
        if signed_in != record["oid"]:
            await self._store.delete_token_cache(key)
            raise SsoTokenError("You signed in as a different person than the one using Teams.")
        code = f"{secrets.randbelow(10**6):06d}"
        digest = hashlib.sha256(f"{key}:{code}".encode()).hexdigest()
        await self._store.claim_once("signin-code", digest, self._clock(), SIGN_IN_TTL)
        return code

    async def verify_sign_in(self, tenant_id: str, aad_object_id: str, code: str) -> bool:
        """True when `code` is the one shown to this user after signing in (usable once)."""
        digest = hashlib.sha256(f"{user_key(tenant_id, aad_object_id)}:{code.strip()}".encode()).hexdigest()
        # The page made the claim; a second claim of the same digest failing proves it exists and is fresh.
        taken = await self._store.claim_once("signin-code", digest, self._clock(), SIGN_IN_TTL)
        if taken:
            return False
        return await self._store.claim_once("signin-code-used", digest, self._clock(), SIGN_IN_TTL)
