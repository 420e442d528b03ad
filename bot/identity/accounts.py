"""Teacher accounts: Teams SSO token → MSAL on-behalf-of → Graph token, silent refresh from the per-user MSAL cache
(sealed at rest by bot/identity/cipher.py), the app's own token, sign-out, and the check of stored sign-ins at start."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

import msal
import requests

from bot.identity.cipher import TokenCipher, TokenKeyError
from bot.identity.sso import IdentityConfig, SsoValidator
from bot.kernel.errors import SignInRequiredError, SsoTokenError
from bot.kernel.turn import Caller
from graph.connection import TokenProvider
from storage.store import Store

log = logging.getLogger(__name__)

_T = TypeVar("_T")
TOKEN_EXCHANGE_DEDUP = timedelta(minutes=10)


def user_key(tenant_id: str, aad_object_id: str) -> str:
    return f"{tenant_id}:{aad_object_id}"


class AuthorityHttp(requests.Session):
    """msal's HTTP client, one per process: pooled, each request bounded by a timeout (msal applies its own only to
    a client it builds itself), one retry of a failed connection as msal's own has, and the time of the authority's
    last answer below 500 — proof that it is reachable."""

    def __init__(self, ca_file: str | None, timeout_s: float = 10.0) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.last_answer: float | None = None
        """When (`time.monotonic()`) the authority last answered with a status below 500."""
        if ca_file:
            # A private CA (the sandbox): trust exactly it, whatever REQUESTS_CA_BUNDLE says.
            self.trust_env = False
            self.verify = ca_file
        retry_once = requests.adapters.HTTPAdapter(max_retries=1)
        self.mount("http://", retry_once)
        self.mount("https://", retry_once)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        response = super().request(method, url, *args, **kwargs)
        if response.status_code < 500:
            self.last_answer = time.monotonic()
        return response


CacheState = Literal["empty", "current", "old-key", "unreadable"]
"""A stored cache: none, sealed with the current key, with an old key (re-sealed on use), or not openable here."""


class TeacherIdentity:
    """Gets Graph tokens for a teacher: SSO exchange (OBO), silent from the encrypted MSAL cache, or sign-in."""

    def __init__(
        self,
        config: IdentityConfig,
        store: Store,
        cipher: TokenCipher,
        clock: Callable[[], datetime],
        sandbox_sso: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._config = config
        self.sso_resource = (config.app_id, config.sso_resource)
        self._store = store
        self._cipher = cipher
        self._validator = SsoValidator(config)
        self._clock = clock
        self._sandbox_sso = sandbox_sso
        self._http_cache: MutableMapping[str, Any] = {}
        self._apps: dict[str, msal.ConfidentialClientApplication] = {}
        self._session = AuthorityHttp(config.ca_file)
        # One lock per user: concurrent refreshes of one cache would race each other's writes.
        self._locks: dict[str, asyncio.Lock] = {}
        self._exchanges: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @property
    def last_answer(self) -> float | None:
        """When (`time.monotonic()`) the authority last answered msal or a probe."""
        return self._session.last_answer

    async def probe(self, timeout_s: float) -> str | None:
        """Fetch the authority's OpenID configuration (what msal reads first) within `timeout_s`: None when it
        answered with a status below 500, else why not."""
        url = f"{self._config.authority}/v2.0/.well-known/openid-configuration"
        try:
            response = await asyncio.to_thread(self._session.get, url, timeout=timeout_s)
        except requests.Timeout:
            return "timeout"
        except requests.ConnectionError:
            return "connectError"
        except requests.RequestException as exc:
            return type(exc).__name__
        return f"status {response.status_code}" if response.status_code >= 500 else None

    def _app(
        self, cache: msal.SerializableTokenCache | None, authority: str | None = None
    ) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            self._config.app_id,
            client_credential=self._config.app_secret,
            authority=authority or self._config.authority,
            token_cache=cache,
            http_client=self._session,
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

    async def _seal(self, key: str, serialized: str) -> None:
        blob = self._cipher.seal(serialized.encode("utf-8"), key)
        await self._store.save_token_cache(key, blob, self._clock(), key_id=self._cipher.key_id)

    async def exchange(self, tenant_id: str, aad_object_id: str, sso_token: str) -> str:
        """Validate a Teams SSO token for this user and exchange it on their behalf; returns a Graph token."""
        claims = await self._validator.validate(sso_token)
        if claims.get("oid") != aad_object_id or (tenant_id and claims.get("tid") != tenant_id):
            raise SsoTokenError("The sign-in token belongs to another user.")
        key = user_key(str(claims["tid"]), aad_object_id)
        scopes = list(self._config.scopes)
        result: dict[str, Any] = await self._with_cache(
            key, lambda cache: self._app(cache).acquire_token_on_behalf_of(sso_token, scopes), fresh_credential=True
        )
        if "access_token" not in result:
            log.info("on-behalf-of exchange refused: %s", result.get("error"))
            raise SsoTokenError("Microsoft Entra ID refused to exchange the sign-in token.")
        return str(result["access_token"])

    async def silent(self, tenant_id: str, aad_object_id: str, force_refresh: bool = False) -> str | None:
        """A Graph token from the user's cache (refreshed with the refresh token when needed), or None."""
        scopes = list(self._config.scopes)

        def from_cache(cache: msal.SerializableTokenCache) -> Any:
            app = self._app(cache)
            mine = [a for a in app.get_accounts() if str(a.get("local_account_id")) == aad_object_id]
            return app.acquire_token_silent_with_error(scopes, mine[0], force_refresh=force_refresh) if mine else None

        result = await self._with_cache(user_key(tenant_id, aad_object_id), from_cache)
        return str(result["access_token"]) if result and "access_token" in result else None

    async def _with_cache(
        self, key: str, work: Callable[[msal.SerializableTokenCache], _T], fresh_credential: bool = False
    ) -> _T:
        """Run msal work for one user in a worker thread (msal blocks on HTTP), then seal and store the cache when msal
        changed it, or to re-seal it with the current key. A blob this process cannot open is kept (an operator may
        yet add its key to TOKEN_ENCRYPTION_OLD_KEYS) unless the user just presented a fresh credential (an SSO
        token, the sign-in page), which supersedes it.

        A refresh token the authority refuses (invalid_grant: revoked, expired, or issued by another authority, as
        after the sandbox restarts with new keys) is useless: the user's stored sign-in is deleted, so the sign-in
        they are asked for next starts clean instead of meeting the stale entries again."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            cache, state = await self._load_cache(key)
            result = await asyncio.to_thread(work, cache)
            if isinstance(result, dict) and result.get("error") == "invalid_grant" and not fresh_credential:
                log.info(
                    "the sign-in authority refused the stored sign-in of user %s (invalid_grant%s): deleted, "
                    "the user is asked to sign in again",
                    key.partition(":")[2],
                    "".join(f", {name} {result[name]}" for name in ("suberror", "error_codes") if result.get(name)),
                )
                await self._store.delete_token_cache(key)
            elif (state != "unreadable" or fresh_credential) and (cache.has_state_changed or state == "old-key"):
                await self._seal(key, cache.serialize())
        return result

    def provider(self, tenant_id: str, aad_object_id: str, sso_token: str | None = None) -> TokenProvider:
        """A Graph token provider for this teacher, fetching once and refreshing only when Graph refused the token;
        raises SignInRequiredError when there is no way to get one."""
        held: dict[str, str] = {}

        async def token(refresh: bool = False) -> str:
            if refresh and "token" in held:
                held["token"] = await self._acquire(tenant_id, aad_object_id, None, force_refresh=True)
            if "token" not in held:
                held["token"] = await self._acquire(tenant_id, aad_object_id, sso_token)
            return held["token"]

        return token

    async def _acquire(
        self, tenant_id: str, aad_object_id: str, sso_token: str | None, force_refresh: bool = False
    ) -> str:
        if sso_token:
            return await self.exchange(tenant_id, aad_object_id, sso_token)
        found = await self.silent(tenant_id, aad_object_id, force_refresh=force_refresh)
        if found is None and self._sandbox_sso is not None:
            # Development stand-in for Teams SSO: the sandbox mints the SSO token; the same msal path runs.
            minted = await self._sandbox_sso(aad_object_id)
            found = await self.exchange(tenant_id, aad_object_id, minted) if minted else None
        if found is None:
            raise SignInRequiredError()
        return found

    def app_provider(self, tenant_id: str) -> TokenProvider:
        """Gradebot's own (application-permission) Graph token for a tenant: client credentials, cached by msal."""
        authority = f"{self._config.authority_base.rstrip('/')}/{tenant_id}"

        def fetch(refresh: bool) -> dict[str, Any]:
            # The app is built in the worker thread: msal discovers the authority over blocking HTTP when constructed.
            app = self._apps.get(tenant_id) or self._apps.setdefault(tenant_id, self._app(None, authority))
            if refresh:
                app.remove_tokens_for_client()
            result: dict[str, Any] = app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
            return result

        async def token(refresh: bool = False) -> str:
            result = await asyncio.to_thread(fetch, refresh)
            if "access_token" not in result:
                log.warning("client-credentials token refused for tenant %s: %s", tenant_id, result.get("error"))
                raise SignInRequiredError()
            return str(result["access_token"])

        return token

    async def sign_out(self, tenant_id: str, aad_object_id: str) -> bool:
        return await self._store.delete_token_cache(user_key(tenant_id, aad_object_id))

    async def exchange_once(self, caller: Caller, exchange_id: str, token: str) -> bool:
        """Teams sends the same signin/tokenExchange from every open client. A success is remembered and the
        repeats are answered True without exchanging again; until one succeeds, each repeat is exchanged itself,
        so no repeat is answered True for an exchange that failed."""
        done = f"{caller.aad_object_id}:{exchange_id}"
        # Repeats arriving together in this instance wait for the first one's outcome.
        async with self._exchanges.setdefault(done, asyncio.Lock()):
            if exchange_id and await self._store.claimed("tokenExchange", done, self._clock()):
                return True
            try:
                await self.exchange(caller.tenant_id, caller.aad_object_id, token)
            except SsoTokenError as exc:
                log.info("token exchange failed for user %s: %s", caller.aad_object_id, exc)
                return False
            if exchange_id:
                await self._store.claim_once("tokenExchange", done, self._clock(), TOKEN_EXCHANGE_DEDUP)
            return True

    # The authorization-code flow behind Gradebot's sign-in page (bot/identity/sign_in.py holds the page's rules).

    async def begin_auth_code_flow(self, state: str) -> dict[str, Any]:
        """msal's flow (PKCE verifier, nonce, the authority URL to send the browser to) for a new sign-in."""
        flow: dict[str, Any] = await asyncio.to_thread(
            lambda: self._app(None).initiate_auth_code_flow(
                list(self._config.scopes),
                redirect_uri=self._config.redirect_uri,
                state=state,
                response_mode="form_post",
            )
        )
        return flow

    async def redeem_auth_code(self, flow: dict[str, Any], answer: dict[str, str]) -> tuple[dict[str, Any], str]:
        """Redeem the authority's answer into a fresh cache: (msal's result, the fresh cache serialized). msal raises
        ValueError/TypeError/KeyError for an answer without a code or with a bad client_info."""
        fresh = msal.SerializableTokenCache()
        result = await asyncio.to_thread(lambda: self._app(fresh).acquire_token_by_auth_code_flow(flow, answer))
        return result, fresh.serialize()

    async def adopt(self, key: str, fresh: str) -> None:
        """Merge a freshly redeemed cache into the user's stored one (an unreadable stored one is replaced)."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            existing, state = await self._load_cache(key)
            merged = json.loads(existing.serialize()) if state != "unreadable" else {}
            for section, entries in json.loads(fresh).items():
                if isinstance(entries, dict):
                    merged.setdefault(section, {}).update(entries)
            await self._seal(key, json.dumps(merged))

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
