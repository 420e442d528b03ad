"""Teacher identity: Teams SSO token → MSAL on-behalf-of → Graph token, a per-user MSAL cache encrypted at rest
(with key rotation), Gradebot's own sign-in page (signed links, MSAL authorization-code flow, one-time codes) and
sign-out. The only module that imports msal.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar
from urllib.parse import urlencode

import httpx
import jwt
import msal
import requests
from cachetools import TTLCache
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from graph.connection import TokenProvider
from storage.store import Store

log = logging.getLogger(__name__)

_T = TypeVar("_T")
SIGN_IN_TTL = timedelta(minutes=15)
"""How long the one-time code shown after signing in stays valid."""
SIGN_IN_LINK_TTL = timedelta(minutes=30)
"""How long a sign-in link from a loginRequest or sign-in card can be opened."""
SIGN_IN_FLOW_TTL = timedelta(minutes=15)
"""How long a started sign-in may take at Microsoft Entra ID before its answer is refused."""
SIGN_IN_CODE_GUESSES = 5
"""Wrong codes a user may enter before their current code is void."""
SIGN_INS_PER_USER = 5
SIGN_INS_PER_CLIENT = 50
SIGN_IN_WINDOW = timedelta(minutes=10)
"""At most SIGN_INS_PER_USER sign-in starts per user and SIGN_INS_PER_CLIENT per client address per window."""
LINK_AUDIENCE = "gradebot:/auth/start"
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
JWKS_REFRESH_S = 300.0


class SignInRequiredError(Exception):
    """No usable Graph token for this teacher: they must sign in (again)."""


class SsoTokenError(Exception):
    """A Teams SSO token failed validation or could not be exchanged on behalf of the user."""


class SignInPageError(Exception):
    """Gradebot's sign-in page cannot go on; the message is shown to the person in the browser."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class TokenKeyError(Exception):
    """Stored sign-ins exist but none opens with the configured keys: starting would lose them all."""


def _derive(key: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"gradebot " + purpose).derive(key)


def key_id(key: bytes) -> str:
    """A key's public fingerprint (stored beside what it sealed); it reveals nothing about the key."""
    return _derive(key, b"token key id")[:8].hex()


class TokenCipher:
    """AES-256-GCM for token caches at rest; the user key is bound in as associated data.

    Blobs are `02 | key id (8) | nonce (12) | ciphertext`, so a blob names the key that sealed it; `01 | nonce |
    ciphertext` blobs from before key ids are opened by trying each key. Old keys open blobs, only the current
    key seals them.
    """

    LEGACY = b"\x01"
    VERSION = b"\x02"

    def __init__(self, key: bytes, old_keys: Iterable[bytes] = ()) -> None:
        keys = [key, *(old for old in old_keys if old != key)]
        if any(len(each) != 32 for each in keys):
            raise ValueError("Token encryption keys must be 32 bytes.")
        self._keys = {bytes.fromhex(key_id(each)): AESGCM(each) for each in keys}
        self.key_id = key_id(key)
        self._current = bytes.fromhex(self.key_id)
        self._link_key = _derive(key, b"sign-in link")

    @property
    def link_key(self) -> bytes:
        """A secret derived from the current key for signing sign-in links and codes (never the key itself)."""
        return self._link_key

    def knows(self, sealed_by: str) -> bool:
        try:
            return bytes.fromhex(sealed_by) in self._keys
        except ValueError:
            return False

    def seal(self, plaintext: bytes, user_key: str) -> bytes:
        nonce = os.urandom(12)
        sealed = self._keys[self._current].encrypt(nonce, plaintext, user_key.encode())
        return self.VERSION + self._current + nonce + sealed

    def unseal(self, blob: bytes, user_key: str) -> tuple[bytes, str] | None:
        """(plaintext, id of the key that opened it), or None when the blob is damaged, from another user or
        sealed with a key this cipher does not have."""
        if blob[:1] == self.VERSION and len(blob) >= 37:
            aead = self._keys.get(blob[1:9])
            candidates = [(blob[1:9], aead)] if aead is not None else []
            nonce, body = blob[9:21], blob[21:]
        elif blob[:1] == self.LEGACY and len(blob) >= 29:
            candidates = list(self._keys.items())
            nonce, body = blob[1:13], blob[13:]
        else:
            return None
        for sealed_by, each in candidates:
            try:
                return each.decrypt(nonce, body, user_key.encode()), sealed_by.hex()
            except InvalidTag:
                continue
        return None

    def open(self, blob: bytes, user_key: str) -> bytes | None:
        """The plaintext, or None when the blob is damaged, from another user or sealed with an unknown key."""
        opened = self.unseal(blob, user_key)
        return None if opened is None else opened[0]


class SignInLimiter:
    """At most `per_client` sign-in starts per client address and `per_user` per user in each window, counted in
    this process (a start stores a pending flow; this bounds how many anyone can make)."""

    def __init__(
        self, clock: Callable[[], datetime], per_client: int, per_user: int, window: timedelta, size: int = 10_000
    ) -> None:
        timer = lambda: clock().timestamp()  # noqa: E731 - the caches' timer is Gradebot's clock
        self._clients: TTLCache[str, list[int]] = TTLCache(size, window.total_seconds(), timer=timer)
        self._users: TTLCache[str, list[int]] = TTLCache(size, window.total_seconds(), timer=timer)
        self._per_client = per_client
        self._per_user = per_user

    def allow(self, client: str, user: str) -> bool:
        """True (and counted) when both budgets have room."""
        used_by_client = self._clients.get(client)
        used_by_user = self._users.get(user)
        if (used_by_client and used_by_client[0] >= self._per_client) or (
            used_by_user and used_by_user[0] >= self._per_user
        ):
            return False
        # The window runs from the first start: counters change in place, which keeps the entry's expiry.
        for counters, key, used in ((self._clients, client, used_by_client), (self._users, user, used_by_user)):
            if used is None:
                counters[key] = [1]
            else:
                used[0] += 1
        return True


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


CacheState = Literal["empty", "current", "old-key", "unreadable"]
"""A stored cache: none, sealed with the current key, with an old key (re-sealed on use), or not openable here."""


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
        limiter: SignInLimiter | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._cipher = cipher
        self._validator = validator
        self._public_base_url = public_base_url.rstrip("/")
        self._clock = clock
        self._sandbox_sso = sandbox_sso
        self._limiter = limiter or SignInLimiter(clock, SIGN_INS_PER_CLIENT, SIGN_INS_PER_USER, SIGN_IN_WINDOW)
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

    async def _load_cache(self, key: str) -> tuple[msal.SerializableTokenCache, CacheState]:
        cache = msal.SerializableTokenCache()
        blob = await self._store.load_token_cache(key)
        if not blob:
            return cache, "empty"
        opened = self._cipher.unseal(blob, key)
        if opened is None:
            log.warning("a stored sign-in could not be opened (sealed with a key Gradebot does not have, or damaged)")
            return cache, "unreadable"
        plaintext, sealed_by = opened
        cache.deserialize(plaintext.decode("utf-8"))
        return cache, "current" if sealed_by == self._cipher.key_id else "old-key"

    async def _save_cache(
        self, key: str, cache: msal.SerializableTokenCache, state: CacheState, fresh_credential: bool
    ) -> None:
        """Seal and store the cache when msal changed it, or to re-seal it with the current key.

        A blob this process cannot open is kept (an operator may yet add its key to TOKEN_ENCRYPTION_OLD_KEYS)
        unless the user just presented a fresh credential (an SSO token, the sign-in page), which supersedes it."""
        if state == "unreadable" and not fresh_credential:
            return
        if cache.has_state_changed or state == "old-key":
            await self._seal(key, cache.serialize())

    async def _seal(self, key: str, serialized: str) -> None:
        blob = self._cipher.seal(serialized.encode("utf-8"), key)
        await self._store.save_token_cache(key, blob, self._clock(), key_id=self._cipher.key_id)

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

        result = await self._with_cache(key, on_behalf_of, fresh_credential=True)
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

    async def _with_cache(
        self, key: str, work: Callable[[msal.SerializableTokenCache], _T], fresh_credential: bool = False
    ) -> _T:
        """Run msal work for one user in a worker thread (msal blocks on HTTP), persisting the cache if it changed."""
        async with self._lock(key):
            cache, state = await self._load_cache(key)
            result = await asyncio.to_thread(work, cache)
            await self._save_cache(key, cache, state, fresh_credential)
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
        """A link to the sign-in page, signed for this Teams user and valid for SIGN_IN_LINK_TTL."""
        now = self._clock()
        claims = {
            "aud": LINK_AUDIENCE,
            "tid": tenant_id,
            "oid": aad_object_id,
            "iat": int(now.timestamp()),
            "exp": int((now + SIGN_IN_LINK_TTL).timestamp()),
        }
        link = jwt.encode(claims, self._cipher.link_key, algorithm="HS256")
        return f"{self._public_base_url}/auth/start?" + urlencode({"link": link})

    def _link_user(self, link: str) -> tuple[str, str]:
        """(tenant, user) a sign-in link was issued for; SignInPageError when it is unsigned, altered or old."""
        try:
            claims = jwt.decode(
                link,
                self._cipher.link_key,
                algorithms=["HS256"],
                audience=LINK_AUDIENCE,
                options={"require": ["exp", "tid", "oid"], "verify_exp": False},
            )
        except jwt.PyJWTError as exc:
            raise SignInPageError(
                "This sign-in link isn't valid. Open the sign-in link from Gradebot in Teams again."
            ) from exc
        if not isinstance(claims["exp"], int) or claims["exp"] <= self._clock().timestamp():
            raise SignInPageError("This sign-in link has expired. Open the sign-in link from Gradebot in Teams again.")
        return str(claims["tid"]), str(claims["oid"])

    async def start_sign_in(self, link: str, client: str) -> str:
        """Begin the authorization-code flow for the Teams user a signed link names; returns the authority URL to
        send the browser to. Refuses (SignInPageError) bad links and, with 429, clients or users starting too many."""
        tenant_id, aad_object_id = self._link_user(link)
        key = user_key(tenant_id, aad_object_id)
        if not self._limiter.allow(client, key):
            log.info("sign-in start refused for user %s: too many starts", aad_object_id)
            raise SignInPageError("Too many sign-in attempts. Wait a few minutes, then try again from Teams.", 429)
        flow = await asyncio.to_thread(
            lambda: self._app(None).initiate_auth_code_flow(
                list(self._config.scopes),
                redirect_uri=self._config.redirect_uri,
                state=secrets.token_urlsafe(24),
                response_mode="form_post",
            )
        )
        state = str(flow["state"])
        sealed = self._cipher.seal(json.dumps(flow).encode("utf-8"), f"signin:{state}")
        await self._store.save_sign_in_flow(state, key, sealed, self._clock(), SIGN_IN_FLOW_TTL)
        return str(flow["auth_uri"])

    async def finish_sign_in(self, answer: Mapping[str, str]) -> str:
        """Redeem the authority's answer at the redirect; returns the one-time code Teams passes back as `state`.

        The code is redeemed into a fresh cache and joins the user's stored cache only when the person who signed
        in is the Teams user the link was issued for: otherwise nothing is stored, changed or deleted."""
        state = answer.get("state", "")
        taken = await self._store.take_sign_in_flow(state, self._clock()) if 0 < len(state) <= 128 else None
        opened = self._cipher.open(taken[1], f"signin:{state}") if taken else None
        if taken is None or opened is None:
            raise SignInPageError("This sign-in has expired or was already finished. Start again from Teams.")
        key = taken[0]
        tenant_id, _, aad_object_id = key.partition(":")
        flow = json.loads(opened)
        fresh = msal.SerializableTokenCache()

        def redeem() -> dict[str, Any]:
            result: dict[str, Any] = self._app(fresh).acquire_token_by_auth_code_flow(flow, dict(answer))
            return result

        try:
            result = await asyncio.to_thread(redeem)
        except (ValueError, TypeError, KeyError) as exc:  # msal: an answer without a code, a bad client_info…
            log.info("sign-in answer refused for user %s: %s", aad_object_id, type(exc).__name__)
            raise SignInPageError("Microsoft's answer to this sign-in was incomplete. Start again from Teams.") from exc
        if "access_token" not in result:
            log.info("sign-in not completed for user %s: %s", aad_object_id, result.get("error"))
            raise SignInPageError("Microsoft Entra ID did not complete the sign-in. Start again from Teams.")
        claims = result.get("id_token_claims") or {}
        if str(claims.get("oid") or "") != aad_object_id or str(claims.get("tid") or "") != tenant_id:
            log.warning("sign-in for user %s finished as someone else; nothing stored", aad_object_id)
            raise SignInPageError(
                "You signed in as a different person than the one using Teams. Nothing was changed. "
                "Start again from Teams and sign in with your own account."
            )
        async with self._lock(key):
            existing, state_of_existing = await self._load_cache(key)
            merged = json.loads(existing.serialize()) if state_of_existing != "unreadable" else {}
            for section, entries in json.loads(fresh.serialize()).items():
                if isinstance(entries, dict):
                    merged.setdefault(section, {}).update(entries)
            await self._seal(key, json.dumps(merged))
        code = f"{secrets.randbelow(10**6):06d}"
        await self._store.issue_sign_in_code(key, self._code_digest(key, code), self._clock(), SIGN_IN_TTL)
        log.info("sign-in finished for user %s", aad_object_id)
        return code

    def _code_digest(self, key: str, code: str) -> str:
        return hmac.new(self._cipher.link_key, f"{key}:{code.strip()}".encode(), hashlib.sha256).hexdigest()

    async def verify_sign_in(self, tenant_id: str, aad_object_id: str, code: str) -> bool:
        """True when `code` is the one shown to this user after signing in: once, before it expires, and before
        SIGN_IN_CODE_GUESSES wrong codes void it."""
        key = user_key(tenant_id, aad_object_id)
        return await self._store.redeem_sign_in_code(
            key, self._code_digest(key, code), self._clock(), SIGN_IN_CODE_GUESSES
        )

    async def check_stored_sign_ins(self, ephemeral_key: bool = False) -> None:
        """Refuse (TokenKeyError) to run with keys that open none of the stored sign-ins, which would otherwise be
        lost one by one; warn about sign-ins sealed with keys that are not configured (they are kept)."""
        sealed = await self._store.token_cache_key_ids()
        unknown = {kid: count for kid, count in sealed.items() if kid and not self._cipher.knows(kid)}
        if unknown:
            log.warning(
                "%d stored sign-ins were sealed with key ids %s, which are not configured; they are kept unread "
                "(add the key to TOKEN_ENCRYPTION_OLD_KEYS to use them)",
                sum(unknown.values()),
                ", ".join(sorted(unknown)),
            )
        if not sealed or any(kid and self._cipher.knows(kid) for kid in sealed):
            return
        unlabelled = await self._store.token_caches_sealed_with("", 20) if "" in sealed else []
        if any(self._cipher.open(blob, key) is not None for key, blob in unlabelled):
            return
        message = (
            f"None of the {sum(sealed.values())} stored sign-ins opens with TOKEN_ENCRYPTION_KEY (key id "
            f"{self._cipher.key_id}) or TOKEN_ENCRYPTION_OLD_KEYS"
            + (f"; they were sealed with key ids {', '.join(sorted(unknown))}" if unknown else "")
            + ". Set TOKEN_ENCRYPTION_KEY back to the key that sealed them, or keep that key in "
            "TOKEN_ENCRYPTION_OLD_KEYS while rotating to a new one."
        )
        if ephemeral_key:
            log.warning("%s (sandbox mode: the development key is new each run, so they stay unused)", message)
            return
        raise TokenKeyError(message)
