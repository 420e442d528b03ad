"""The sandbox's Microsoft Entra ID stand-in: OpenID metadata, JWKS, v2.0 authorize and token endpoints (client
credentials, on-behalf-of, refresh token, authorization code + PKCE) with Entra's errors, and the development helpers
`/_sandbox/sso-token`, `/_sandbox/token`, `/_sandbox/revoke` that mint Teams-SSO-like and Graph tokens for seeded users.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

import jwt
from aiohttp import web

from sandbox.directory import BOT_APP_ID, GRAPH_APP_ID, GRAPH_AUDIENCE, AppRegistration, Directory, User
from sandbox.tokens import InvalidTokenError, TokenAuthority

log = logging.getLogger(__name__)

TEAMS_CLIENT_ID = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
"""Teams desktop/mobile: the client Teams names as `azp` in the SSO token it hands a bot."""
SSO_SCOPE = "access_as_user"
BOT_FRAMEWORK_AUDIENCE = "https://api.botframework.com"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SUPPORTED_GRANTS = ("client_credentials", JWT_BEARER_GRANT, "refresh_token", "authorization_code")
OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
REFRESH_TOKEN_LIFETIME_S = 90 * 24 * 3600
AUTHORIZATION_CODE_LIFETIME_S = 600
TENANT_ALIASES = frozenset({"common", "organizations"})
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Resources a client-credentials or delegated scope may name, keyed by every spelling Entra accepts for them.
RESOURCE_AUDIENCES = {
    GRAPH_AUDIENCE: GRAPH_AUDIENCE,
    GRAPH_APP_ID: GRAPH_AUDIENCE,
    BOT_FRAMEWORK_AUDIENCE: BOT_FRAMEWORK_AUDIENCE,
}


class IdentityError(Exception):
    """A token-endpoint failure, answered in Entra's error shape with its HTTP status and AADSTS code."""

    def __init__(self, status: int, error: str, code: int, description: str, suberror: str | None = None) -> None:
        super().__init__(f"AADSTS{code}: {description}")
        self.status = status
        self.error = error
        self.code = code
        self.description = description
        self.suberror = suberror


class UnknownUserError(Exception):
    """No seeded user matches the authorize request's `login_hint`: the endpoint shows the account picker instead."""


@dataclass(slots=True)
class RefreshGrant:
    """What an opaque refresh token stands for: one user's consent to one client, until it expires or is revoked."""

    user_id: str
    client_id: str
    expires_at: float
    revoked: bool = False


@dataclass(slots=True)
class AuthorizationCode:
    """A single-use code from the authorize endpoint, bound to client, redirect URI, scopes and PKCE challenge."""

    user_id: str
    client_id: str
    redirect_uri: str
    scope: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class AuthorizationRedirect:
    """Where the authorize endpoint sends the browser back, with what, and how (query, fragment or form_post)."""

    redirect_uri: str
    parameters: Mapping[str, str]
    response_mode: str

    def location(self) -> str:
        separator = "#" if self.response_mode == "fragment" else ("&" if "?" in self.redirect_uri else "?")
        return f"{self.redirect_uri}{separator}{urlencode(self.parameters)}"

    def form_post_page(self) -> str:
        """OAuth 2.0 form_post: a page that POSTs the parameters to the redirect URI as soon as it loads."""
        fields = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
            for k, v in self.parameters.items()
        )
        return (
            "<!doctype html><html><head><title>Working...</title></head><body onload='document.forms[0].submit()'>"
            f'<form method="POST" action="{html.escape(self.redirect_uri)}">{fields}'
            "<noscript><button type='submit'>Continue</button></noscript></form></body></html>"
        )


@dataclass(frozen=True, slots=True)
class DelegatedRequest:
    """A parsed delegated `scope` parameter: Graph permissions (short names) and the OpenID scopes beside them."""

    permissions: frozenset[str]
    spelled_as: Mapping[str, str]
    """How the caller wrote each permission (`https://graph.microsoft.com/X` or `X`), echoed back in `scope`."""
    oidc: frozenset[str]
    default: bool


@dataclass(slots=True)
class IdentityStats:
    """How many tokens each grant issued: lets tests see that msal refreshed instead of reading its cache."""

    issued: dict[str, int] = field(default_factory=dict)

    def count(self, grant: str) -> None:
        self.issued[grant] = self.issued.get(grant, 0) + 1


def _b64url_json(value: Mapping[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def service_principal_id(app_id: str) -> str:
    """The object id of an app's service principal in the sandbox tenant (what Entra puts in `oid` of app tokens)."""
    return str(uuid.uuid5(uuid.UUID(int=0), f"service-principal:{app_id}"))


def pairwise_subject(object_id: str, app_id: str) -> str:
    """Entra's `sub`: stable per (principal, application) and opaque."""
    digest = hashlib.sha256(f"{object_id}|{app_id}".encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")[:43]


def parse_delegated_scope(scope: str) -> DelegatedRequest:
    """Split a space-separated v2.0 scope into Graph permissions and OpenID scopes; other resources are refused."""
    permissions: set[str] = set()
    spelled_as: dict[str, str] = {}
    oidc: set[str] = set()
    default = False
    for item in scope.split():
        if item in OIDC_SCOPES:
            oidc.add(item)
            continue
        resource, _, permission = item.rpartition("/")
        if resource and RESOURCE_AUDIENCES.get(resource.rstrip("/")) != GRAPH_AUDIENCE:
            raise IdentityError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant. This can happen if the "
                "application has not been installed by the administrator of the tenant.",
            )
        if permission == ".default":
            default = True
            continue
        if not permission:
            raise IdentityError(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope {item} is not valid.",
            )
        permissions.add(permission)
        spelled_as[permission] = item
    return DelegatedRequest(frozenset(permissions), spelled_as, frozenset(oidc), default)


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, separator, secret = decoded.partition(":")
    if not separator:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def _missing(parameter: str) -> IdentityError:
    return IdentityError(
        400, "invalid_request", 900144, f"The request body must contain the following parameter: '{parameter}'."
    )


def _pkce_matches(verifier: str, challenge: str, method: str) -> bool:
    if method == "plain":
        return hmac.compare_digest(verifier, challenge)
    digest = hashlib.sha256(verifier.encode("ascii", errors="replace")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


class IdentityService:
    """The tenant's token service: checks clients and assertions, mints tokens and keeps refresh grants."""

    def __init__(
        self,
        directory: Directory,
        authority: TokenAuthority,
        *,
        access_token_lifetime_s: int = 3600,
        refresh_token_lifetime_s: int = REFRESH_TOKEN_LIFETIME_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.authority = authority
        self.access_token_lifetime_s = access_token_lifetime_s
        self.refresh_token_lifetime_s = refresh_token_lifetime_s
        self.clock = clock
        self.stats = IdentityStats()
        self._refresh_grants: dict[str, RefreshGrant] = {}
        self._codes: dict[str, AuthorizationCode] = {}
        self.secrets_seen: deque[str] = deque(maxlen=10_000)
        """Every authorization code and refresh token issued and every PKCE verifier received, newest last: what
        a client must never write to its logs (tests scan for them)."""

    # ---- addresses -------------------------------------------------------------------------------------------------

    @property
    def tenant_id(self) -> str:
        return self.directory.tenant_id

    @property
    def instance_url(self) -> str:
        """`https://127.0.0.1:PORT`: the authority without its tenant segment."""
        return self.authority.issuer_base.rsplit("/", 1)[0]

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower() or tenant.lower() in TENANT_ALIASES

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        """Entra's v2.0 discovery document; `common`/`organizations` get the templated issuer as Entra serves it."""
        segment = tenant if tenant.lower() in TENANT_ALIASES else self.tenant_id
        base = f"{self.instance_url}/{segment}"
        issuer = f"{self.instance_url}/{{tenantid}}/v2.0" if tenant.lower() in TENANT_ALIASES else self.authority.issuer
        return {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "grant_types_supported": list(SUPPORTED_GRANTS),
            "code_challenge_methods_supported": ["S256", "plain"],
            "issuer": issuer,
            "request_uri_parameter_supported": False,
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "claims_supported": [
                "sub",
                "iss",
                "aud",
                "exp",
                "iat",
                "nbf",
                "name",
                "nonce",
                "oid",
                "preferred_username",
                "tid",
                "ver",
                "upn",
                "scp",
                "roles",
                "azp",
            ],
            "tenant_region_scope": None,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }

    # ---- the token endpoint ----------------------------------------------------------------------------------------

    def issue_token(self, form: Mapping[str, str], authorization: str | None = None) -> dict[str, Any]:
        """Answer one `POST /{tenant}/oauth2/v2.0/token`; raise IdentityError for every refusal."""
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise _missing("grant_type")
        if grant_type not in SUPPORTED_GRANTS:
            raise IdentityError(
                400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type '{grant_type}'."
            )
        app = self._authenticate_client(form, authorization)
        if grant_type == "client_credentials":
            response = self._client_credentials(app, form)
        elif grant_type == JWT_BEARER_GRANT:
            response = self._on_behalf_of(app, form)
        elif grant_type == "refresh_token":
            response = self._refresh(app, form)
        else:
            response = self._authorization_code(app, form)
        self.stats.count(grant_type)
        return response

    def _authenticate_client(self, form: Mapping[str, str], authorization: str | None) -> AppRegistration:
        basic = _basic_credentials(authorization)
        client_id = form.get("client_id", "") or (basic[0] if basic else "")
        if not client_id:
            raise _missing("client_id")
        if basic and form.get("client_id") and basic[0] != form["client_id"]:
            raise IdentityError(
                401,
                "invalid_client",
                7000215,
                "The client id in the request body and in the Authorization header differ.",
            )
        app = self.directory.apps.get(client_id)
        if app is None:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'. This "
                "can happen if the application has not been installed by the administrator of the tenant.",
            )
        secret = form.get("client_secret") or (basic[1] if basic else "")
        if form.get("client_assertion"):
            raise IdentityError(
                401,
                "invalid_client",
                700027,
                "Client assertions are not registered for this app in the sandbox; use its client secret.",
            )
        if not secret:
            raise IdentityError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        if not hmac.compare_digest(secret.encode(), app.secret.encode()):
            raise IdentityError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
                f"value, not the client secret ID, for a secret added to app '{app.app_id}'.",
            )
        return app

    def _client_credentials(self, app: AppRegistration, form: Mapping[str, str]) -> dict[str, Any]:
        scope = form.get("scope", "").strip()
        if not scope:
            raise _missing("scope")
        items = scope.split()
        resource, _, permission = items[0].rpartition("/")
        if len(items) != 1 or permission != ".default":
            raise IdentityError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
                "with /.default suffixed to the resource identifier (application ID URI).",
            )
        audience = RESOURCE_AUDIENCES.get(resource.rstrip("/"))
        if audience is None:
            raise IdentityError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {self.tenant_id}.",
            )
        token = self.app_access_token(app, audience)
        lifetime = self.access_token_lifetime_s
        return {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime, "access_token": token}

    def _on_behalf_of(self, app: AppRegistration, form: Mapping[str, str]) -> dict[str, Any]:
        if form.get("requested_token_use", "") != "on_behalf_of":
            raise _missing("requested_token_use")
        assertion = form.get("assertion", "")
        if not assertion:
            raise _missing("assertion")
        scope = form.get("scope", "")
        if not scope.strip():
            raise _missing("scope")
        claims = self._verify_assertion(assertion, app.app_id)
        user = self.directory.users.get(str(claims.get("oid", "")))
        if user is None:
            raise IdentityError(
                400,
                "invalid_grant",
                50034,
                f"The user account {{EUII Hidden}} does not exist in the "
                f"{self.tenant_id} directory. To sign into this application, the account must be added to the "
                "directory.",
            )
        return self._user_token_response(app, user, parse_delegated_scope(scope), form)

    def _verify_assertion(self, assertion: str, client_id: str) -> dict[str, Any]:
        """The incoming SSO/user token must be ours, unexpired, of this tenant, and addressed to the asking client."""
        try:
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise IdentityError(400, "invalid_request", 50027, "JWT token is invalid or malformed.") from exc
        expected = [f"api://botid-{client_id}", client_id]
        try:
            claims = self.authority.verify(assertion, audience=expected)
        except InvalidTokenError as exc:
            raise self._classify_assertion_failure(unverified, expected) from exc
        if not claims.get("scp") or not claims.get("oid"):
            raise IdentityError(
                400,
                "invalid_grant",
                50013,
                "Assertion failed signature validation. [Reason - The assertion is not a delegated user token.]",
            )
        return claims

    def _classify_assertion_failure(self, unverified: Mapping[str, Any], expected: list[str]) -> IdentityError:
        expires = unverified.get("exp")
        if isinstance(expires, int | float) and expires <= self.clock():
            return IdentityError(
                400,
                "invalid_grant",
                500133,
                "Assertion is not within its valid time range. Ensure that the access token is not expired before "
                "using it for user assertion, or request a new token.",
            )
        audience = unverified.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(a in expected for a in audiences):
            return IdentityError(
                400,
                "invalid_grant",
                50013,
                f"Assertion audience does not match the Client app presenting the assertion. The audience in the "
                f"assertion was '{audience}' and the expected audience is '{expected[0]}' or one of the Application "
                "Id URIs of this web API.",
            )
        if unverified.get("tid") != self.tenant_id:
            return IdentityError(400, "invalid_grant", 50013, "Assertion contains an invalid tenant.")
        return IdentityError(
            400, "invalid_grant", 50013, "Assertion failed signature validation. [Reason - The key was not found.]"
        )

    def _refresh(self, app: AppRegistration, form: Mapping[str, str]) -> dict[str, Any]:
        token = form.get("refresh_token", "")
        if not token:
            raise _missing("refresh_token")
        grant = self._refresh_grants.get(token)
        if grant is None:
            raise IdentityError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if grant.revoked:
            raise IdentityError(
                400,
                "invalid_grant",
                50173,
                "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user "
                "might have changed or reset their password.",
                suberror="bad_token",
            )
        if grant.expires_at <= self.clock():
            raise IdentityError(
                400, "invalid_grant", 700082, "The refresh token has expired due to inactivity.", suberror="bad_token"
            )
        if grant.client_id != app.app_id:
            raise IdentityError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
        user = self.directory.users.get(grant.user_id)
        if user is None:
            raise IdentityError(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
        scope = form.get("scope", "") or " ".join(f"{GRAPH_AUDIENCE}/{p}" for p in sorted(app.delegated_scopes))
        return self._user_token_response(app, user, parse_delegated_scope(scope), form, rotate_refresh_token=True)

    def _authorization_code(self, app: AppRegistration, form: Mapping[str, str]) -> dict[str, Any]:
        code_value = form.get("code", "")
        if not code_value:
            raise _missing("code")
        code = self._codes.pop(code_value, None)
        if code is None or code.expires_at <= self.clock():
            raise IdentityError(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has "
                "expired due to inactivity. Send a new interactive authorization request for this "
                "user and resource.",
            )
        if code.client_id != app.app_id:
            raise IdentityError(400, "invalid_grant", 70000, "Provided grant is invalid or malformed.")
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise IdentityError(
                400,
                "invalid_grant",
                50148,
                "The redirect_uri does not match the one used to request the authorization code.",
            )
        if code.code_challenge is not None:
            verifier = form.get("code_verifier", "")
            if not verifier:
                raise _missing("code_verifier")
            self.secrets_seen.append(verifier)
            if not _pkce_matches(verifier, code.code_challenge, code.code_challenge_method):
                raise IdentityError(
                    400,
                    "invalid_grant",
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )
        user = self.directory.users.get(code.user_id)
        if user is None:
            raise IdentityError(400, "invalid_grant", 50034, "The user account does not exist in the directory.")
        scope = form.get("scope", "") or code.scope
        return self._user_token_response(app, user, parse_delegated_scope(scope), form, nonce=code.nonce)

    def _user_token_response(
        self,
        app: AppRegistration,
        user: User,
        requested: DelegatedRequest,
        form: Mapping[str, str],
        nonce: str | None = None,
        *,
        rotate_refresh_token: bool = False,
    ) -> dict[str, Any]:
        """A delegated Graph token for `user`: `scp` = requested permissions ∩ what the app may use on users' behalf.

        A refresh token comes with `offline_access`, and always from the refresh grant (Entra rotates them).
        """
        wanted = app.delegated_scopes if requested.default else requested.permissions
        granted = frozenset(wanted & app.delegated_scopes)
        if not granted:
            missing = " ".join(sorted(requested.permissions)) or ".default"
            raise IdentityError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{app.app_id}' named "
                f"'{app.display_name}'. Send an interactive authorization request for this user and resource. "
                f"Requested: {missing}.",
                suberror="consent_required",
            )
        lifetime = self.access_token_lifetime_s
        echoed = sorted(requested.spelled_as.get(p, f"{GRAPH_AUDIENCE}/{p}") for p in granted)
        echoed += sorted(requested.oidc - {"offline_access"})
        response: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(echoed),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": self.user_access_token(user, app.app_id, granted),
        }
        if rotate_refresh_token or "offline_access" in requested.oidc:
            response["refresh_token"] = self._new_refresh_token(user.id, app.app_id)
        if "openid" in requested.oidc:
            response["id_token"] = self.id_token(user, app.app_id, nonce)
        if form.get("client_info") == "1":
            response["client_info"] = _b64url_json({"uid": user.id, "utid": self.tenant_id})
        return response

    def _new_refresh_token(self, user_id: str, client_id: str) -> str:
        now = self.clock()
        if len(self._refresh_grants) > 10_000:
            self._refresh_grants = {k: g for k, g in self._refresh_grants.items() if g.expires_at > now}
        token = "0.A" + secrets.token_urlsafe(96)
        self._refresh_grants[token] = RefreshGrant(user_id, client_id, now + self.refresh_token_lifetime_s)
        self.secrets_seen.append(token)
        return token

    def revoke_refresh_tokens(self, user_id: str) -> int:
        """Like `revokeSignInSessions`: every refresh token the user holds stops working. Returns how many."""
        revoked = 0
        for grant in self._refresh_grants.values():
            if grant.user_id == user_id and not grant.revoked:
                grant.revoked = True
                revoked += 1
        return revoked

    # ---- the authorize endpoint ------------------------------------------------------------------------------------

    def authorize(self, query: Mapping[str, str]) -> AuthorizationRedirect:
        """Sign `login_hint` in without a prompt (a development stand-in) and say where to send the code."""
        client_id = query.get("client_id", "")
        if client_id not in self.directory.apps:
            raise IdentityError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{self.tenant_id}'.",
            )
        redirect_uri = query.get("redirect_uri", "")
        if not self.redirect_allowed(redirect_uri):
            raise IdentityError(
                400,
                "invalid_request",
                50011,
                "The redirect URI specified in the request does not "
                "match the redirect URIs configured for the application (the sandbox accepts "
                "loopback addresses only).",
            )
        if query.get("response_type", "") != "code":
            raise IdentityError(400, "unsupported_response_type", 700054, "The sandbox supports response_type=code.")
        user = self.find_user(query.get("login_hint", ""))
        if user is None:
            raise UnknownUserError(query.get("login_hint", ""))
        scope = query.get("scope", "")
        parse_delegated_scope(scope)
        code_value = secrets.token_urlsafe(48)
        self.secrets_seen.append(code_value)
        self._codes[code_value] = AuthorizationCode(
            user_id=user.id,
            client_id=client_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=query.get("nonce") or None,
            code_challenge=query.get("code_challenge") or None,
            code_challenge_method=query.get("code_challenge_method", "plain") or "plain",
            expires_at=self.clock() + AUTHORIZATION_CODE_LIFETIME_S,
        )
        parameters = {"code": code_value, "client_info": _b64url_json({"uid": user.id, "utid": self.tenant_id})}
        if "state" in query:
            parameters["state"] = query["state"]
        response_mode = query.get("response_mode", "query") or "query"
        if response_mode not in ("query", "fragment", "form_post"):
            raise IdentityError(400, "invalid_request", 900144, f"Unsupported response_mode '{response_mode}'.")
        return AuthorizationRedirect(redirect_uri, parameters, response_mode)

    @staticmethod
    def redirect_allowed(redirect_uri: str) -> bool:
        parts = urlsplit(redirect_uri)
        return parts.scheme in ("http", "https") and (parts.hostname or "") in LOOPBACK_HOSTS

    # ---- minting ---------------------------------------------------------------------------------------------------

    def find_user(self, key: str) -> User | None:
        """A seeded user by object id or UPN (case-insensitive)."""
        if not key:
            return None
        return self.directory.users.get(key) or self.directory.user_by_upn(key)

    def _user_claims(self, user: User, app_id: str) -> dict[str, Any]:
        return {
            "oid": user.id,
            "sub": pairwise_subject(user.id, app_id),
            "upn": user.user_principal_name,
            "preferred_username": user.user_principal_name,
            "unique_name": user.user_principal_name,
            "name": user.display_name,
            "given_name": user.given_name,
            "family_name": user.surname,
            "idtyp": "user",
            "amr": ["pwd"],
        }

    def user_access_token(self, user: User, app_id: str, scopes: Iterable[str], lifetime_s: int | None = None) -> str:
        """A delegated Microsoft Graph access token (`scp`) for `user`, issued to client `app_id`."""
        app = self.directory.apps.get(app_id)
        claims = self._user_claims(user, app_id)
        claims.update(
            {
                "aud": GRAPH_AUDIENCE,
                "scp": " ".join(sorted(scopes)),
                "azp": app_id,
                "appid": app_id,
                "azpacr": "1",
                "app_displayname": app.display_name if app else app_id,
            }
        )
        lifetime = self.access_token_lifetime_s if lifetime_s is None else lifetime_s
        return self.authority.mint(claims, lifetime_s=lifetime, now=self.clock())

    def app_access_token(self, app: AppRegistration, audience: str = GRAPH_AUDIENCE) -> str:
        """An application token: `roles` (Graph only), the service principal as `oid`, no `scp`."""
        principal = service_principal_id(app.app_id)
        claims: dict[str, Any] = {
            "aud": audience,
            "oid": principal,
            "sub": principal,
            "azp": app.app_id,
            "appid": app.app_id,
            "azpacr": "1",
            "app_displayname": app.display_name,
            "idtyp": "app",
        }
        if audience == GRAPH_AUDIENCE and app.roles:
            claims["roles"] = sorted(app.roles)
        return self.authority.mint(claims, lifetime_s=self.access_token_lifetime_s, now=self.clock())

    def sso_token(self, user: User, app_id: str = BOT_APP_ID) -> str:
        """What Teams hands a bot for SSO: audience `api://botid-{appId}`, scope `access_as_user`, azp = Teams."""
        claims = self._user_claims(user, TEAMS_CLIENT_ID)
        claims.update({"aud": f"api://botid-{app_id}", "scp": SSO_SCOPE, "azp": TEAMS_CLIENT_ID, "azpacr": "0"})
        return self.authority.mint(claims, lifetime_s=self.access_token_lifetime_s, now=self.clock())

    def id_token(self, user: User, client_id: str, nonce: str | None = None) -> str:
        claims: dict[str, Any] = {
            "aud": client_id,
            "oid": user.id,
            "sub": pairwise_subject(user.id, client_id),
            "preferred_username": user.user_principal_name,
            "name": user.display_name,
        }
        if nonce:
            claims["nonce"] = nonce
        return self.authority.mint(claims, lifetime_s=3600, now=self.clock())


# ---- HTTP --------------------------------------------------------------------------------------------------------


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def entra_error_response(error: IdentityError, correlation_id: str | None, base_url: str) -> web.Response:
    """Entra's JSON error body: error, error_description (with trace/correlation ids), error_codes, timestamp, …"""
    trace_id = str(uuid.uuid4())
    correlation = correlation_id or str(uuid.uuid4())
    stamp = _timestamp()
    body: dict[str, Any] = {
        "error": error.error,
        "error_description": f"AADSTS{error.code}: {error.description} Trace ID: {trace_id} "
        f"Correlation ID: {correlation} Timestamp: {stamp}",
        "error_codes": [error.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation,
        "error_uri": f"{base_url}/error?code={error.code}",
    }
    if error.suberror:
        body["suberror"] = error.suberror
    log.info("identity refused: %s AADSTS%s correlation=%s", error.error, error.code, correlation)
    return web.json_response(body, status=error.status, headers={"client-request-id": correlation})


def _helper_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": "The body must be a JSON object."}}),
            content_type="application/json",
        ) from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"code": "BadRequest", "message": "The body must be a JSON object."}}),
            content_type="application/json",
        )
    return body


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def setup_identity(app: web.Application, identity: IdentityService) -> None:
    """Register the Entra endpoints (under `/{tenant}/…`) and the `/_sandbox/…` identity helpers on `app`."""

    def tenant_of(request: web.Request) -> str:
        tenant = request.match_info["tenant"]
        if not identity.knows_tenant(tenant):
            raise IdentityError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
                "the correct cloud.",
            )
        return tenant

    async def openid_configuration(request: web.Request) -> web.Response:
        try:
            tenant = tenant_of(request)
        except IdentityError as error:
            return entra_error_response(error, request.headers.get("client-request-id"), _base_url(request))
        return web.json_response(identity.openid_configuration(tenant))

    async def keys(request: web.Request) -> web.Response:
        try:
            tenant_of(request)
        except IdentityError as error:
            return entra_error_response(error, request.headers.get("client-request-id"), _base_url(request))
        return web.json_response(identity.authority.jwks())

    async def token(request: web.Request) -> web.Response:
        correlation_id = request.headers.get("client-request-id")
        try:
            tenant_of(request)
            form = {key: str(value) for key, value in (await request.post()).items()}
            body = identity.issue_token(form, request.headers.get("Authorization"))
        except IdentityError as error:
            return entra_error_response(error, correlation_id, _base_url(request))
        headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
        if correlation_id:
            headers["client-request-id"] = correlation_id
        return web.json_response(body, headers=headers)

    async def authorize(request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        try:
            tenant_of(request)
            redirect = identity.authorize(query)
        except IdentityError as error:
            return entra_error_response(error, request.headers.get("client-request-id"), _base_url(request))
        except UnknownUserError:
            return web.Response(text=_account_picker(identity.directory, request), content_type="text/html")
        if redirect.response_mode == "form_post":
            return web.Response(text=redirect.form_post_page(), content_type="text/html")
        raise web.HTTPFound(redirect.location())

    async def sso_token(request: web.Request) -> web.Response:
        body = await _json_object(request)
        user = identity.find_user(str(body.get("upn") or body.get("userId") or ""))
        if user is None:
            return _helper_error(404, "UserNotFound", "No seeded user has that upn or userId.")
        app_id = str(body.get("appId") or BOT_APP_ID)
        return web.json_response({"token": identity.sso_token(user, app_id)})

    async def user_token(request: web.Request) -> web.Response:
        body = await _json_object(request)
        user = identity.find_user(str(body.get("upn") or body.get("userId") or ""))
        if user is None:
            return _helper_error(404, "UserNotFound", "No seeded user has that upn or userId.")
        app_id = str(body.get("appId") or BOT_APP_ID)
        app = identity.directory.apps.get(app_id)
        if app is None:
            return _helper_error(404, "AppNotFound", "No app registration has that appId.")
        requested = body.get("scopes")
        if requested is None:
            scopes = set(app.delegated_scopes)
        elif isinstance(requested, list) and all(isinstance(s, str) for s in requested):
            scopes = {s.rsplit("/", 1)[-1] for s in requested}
        else:
            return _helper_error(400, "BadRequest", "scopes must be a list of strings.")
        lifetime = body.get("lifetimeSeconds", identity.access_token_lifetime_s)
        if not isinstance(lifetime, int) or not 0 <= lifetime <= 86_400:
            return _helper_error(400, "BadRequest", "lifetimeSeconds must be an integer from 0 to 86400.")
        access_token = identity.user_access_token(user, app_id, scopes, lifetime_s=lifetime)
        return web.json_response(
            {
                "token_type": "Bearer",
                "access_token": access_token,
                "expires_in": lifetime,
                "scope": " ".join(sorted(scopes)),
            }
        )

    async def revoke(request: web.Request) -> web.Response:
        body = await _json_object(request)
        user = identity.find_user(str(body.get("upn") or body.get("userId") or ""))
        if user is None:
            return _helper_error(404, "UserNotFound", "No seeded user has that upn or userId.")
        return web.json_response({"userId": user.id, "revoked": identity.revoke_refresh_tokens(user.id)})

    app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration)
    app.router.add_get("/{tenant}/discovery/v2.0/keys", keys)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", token)
    app.router.add_get("/{tenant}/oauth2/v2.0/authorize", authorize)
    app.router.add_post("/_sandbox/sso-token", sso_token)
    app.router.add_post("/_sandbox/token", user_token)
    app.router.add_post("/_sandbox/revoke", revoke)


def _account_picker(directory: Directory, request: web.Request) -> str:
    """A bare 'pick an account' page: each seeded user links back to the same authorize URL with `login_hint`."""
    rows = []
    for user in sorted(directory.users.values(), key=lambda u: (u.role != "teacher", u.user_principal_name)):
        query = dict(request.query)
        query["login_hint"] = user.user_principal_name
        href = html.escape(f"{request.path}?{urlencode(query)}")
        label = html.escape(f"{user.display_name} ({user.role}) — {user.user_principal_name}")
        rows.append(f'<li><a href="{href}">{label}</a></li>')
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Sandbox sign-in</title></head><body>"
        "<h1>Sandbox tenant: pick an account</h1><p>Development stand-in for Microsoft Entra sign-in.</p>"
        f"<ul>{''.join(rows)}</ul></body></html>"
    )
