"""Gradebot's own sign-in page, for where Teams SSO cannot work: links signed for the Teams user who asked and
short-lived, starts limited per user and client, MSAL's authorization-code flow, and a one-time code for Teams."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode

import jwt
from cachetools import TTLCache

from bot.identity.accounts import TeacherIdentity, user_key
from bot.identity.cipher import TokenCipher
from storage.store import Store

log = logging.getLogger(__name__)

SIGN_IN_CODE_TTL = timedelta(minutes=15)
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


class SignInPageError(Exception):
    """Gradebot's sign-in page cannot go on; the message is shown to the person in the browser."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class SignInPages:
    """The rules of the sign-in page; tokens are redeemed and stored by TeacherIdentity (the msal side)."""

    def __init__(
        self,
        accounts: TeacherIdentity,
        store: Store,
        cipher: TokenCipher,
        public_base_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._accounts = accounts
        self._store = store
        self._cipher = cipher
        self._public_base_url = public_base_url.rstrip("/")
        self._clock = clock
        timer = lambda: clock().timestamp()  # noqa: E731 - the caches' timer is Gradebot's clock
        window = SIGN_IN_WINDOW.total_seconds()
        self._starts = tuple(TTLCache[str, list[int]](10_000, window, timer=timer) for _ in ("client", "user"))
        """Sign-in starts counted per client address and per user in this process (a start stores a pending flow:
        this bounds how many anyone can make)."""

    def sign_in_url(self, tenant_id: str, aad_object_id: str) -> str:
        """A link to the sign-in page, signed for this Teams user and valid for SIGN_IN_LINK_TTL."""
        now = self._clock()  # PyJWT writes the datetimes in iat and exp as whole seconds since the epoch
        link = jwt.encode(
            {"aud": LINK_AUDIENCE, "tid": tenant_id, "oid": aad_object_id, "iat": now, "exp": now + SIGN_IN_LINK_TTL},
            self._cipher.link_key,
            algorithm="HS256",
        )
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

    async def start(self, link: str, client: str) -> str:
        """Begin the authorization-code flow for the Teams user a signed link names; returns the authority URL to
        send the browser to. Refuses (SignInPageError) bad links and, with 429, clients or users starting too many."""
        tenant_id, aad_object_id = self._link_user(link)
        key = user_key(tenant_id, aad_object_id)
        budgets = tuple(zip(self._starts, (client, key), (SIGN_INS_PER_CLIENT, SIGN_INS_PER_USER), strict=True))
        if any(starts.get(who, [0])[0] >= limit for starts, who, limit in budgets):
            log.info("sign-in start refused for user %s: too many starts", aad_object_id)
            raise SignInPageError("Too many sign-in attempts. Wait a few minutes, then try again from Teams.", 429)
        # The window runs from the first start: counters change in place, which keeps the entry's expiry.
        for starts, who, _ in budgets:
            starts.setdefault(who, [0])[0] += 1
        flow = await self._accounts.begin_auth_code_flow(secrets.token_urlsafe(24))
        state = str(flow["state"])
        sealed = self._cipher.seal(json.dumps(flow).encode("utf-8"), f"signin:{state}")
        await self._store.save_sign_in_flow(state, key, sealed, self._clock(), SIGN_IN_FLOW_TTL)
        return str(flow["auth_uri"])

    async def finish(self, answer: Mapping[str, str]) -> str:
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
        try:
            result, fresh = await self._accounts.redeem_auth_code(json.loads(opened), dict(answer))
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
        await self._accounts.adopt(key, fresh)
        code = f"{secrets.randbelow(10**6):06d}"
        await self._store.issue_sign_in_code(key, self._code_digest(key, code), self._clock(), SIGN_IN_CODE_TTL)
        log.info("sign-in finished for user %s", aad_object_id)
        return code

    def _code_digest(self, key: str, code: str) -> str:
        return hmac.new(self._cipher.link_key, f"{key}:{code.strip()}".encode(), hashlib.sha256).hexdigest()

    async def verify(self, tenant_id: str, aad_object_id: str, code: str) -> bool:
        """True when `code` is the one shown to this user after signing in: once, before it expires, and before
        SIGN_IN_CODE_GUESSES wrong codes void it."""
        key = user_key(tenant_id, aad_object_id)
        return await self._store.redeem_sign_in_code(
            key, self._code_digest(key, code), self._clock(), SIGN_IN_CODE_GUESSES
        )
