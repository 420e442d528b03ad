"""Authentication at the Teams edge: botbuilder's JWT validation behind a cheap first look at the header, every refusal
a 401 (botbuilder 4.17.1 answers several malformed tokens with 500); connector clients and credentials made once, and
sending over one aiohttp session on the event loop instead of msrest's blocking `requests` in worker threads."""

from __future__ import annotations

import copy
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import aiohttp
import certifi
import jwt
import requests
from botbuilder.integration.aiohttp.configuration_service_client_credential_factory import (
    ConfigurationServiceClientCredentialFactory,
)
from botbuilder.schema import Activity
from botframework.connector.auth import (
    AuthenticateRequestResult,
    BotFrameworkAuthentication,
    ClaimsIdentity,
    ConnectorFactory,
    JwtTokenValidation,
    UserTokenClient,
)
from cachetools import TTLCache
from msrest.exceptions import ClientRequestError
from msrest.pipeline.aiohttp import AioHTTPSender
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncHTTPSender
from msrest.universal_http.async_requests import AsyncRequestsClientResponse
from requests.structures import CaseInsensitiveDict

from bot.teams.wire import ModelsAsJson, ModelsFromJson

BOT_FRAMEWORK_ISSUER = "https://api.botframework.com"
_BEARER_JWT = re.compile(r"Bearer ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)", re.ASCII)
MAX_AUTHORIZATION_LENGTH = 16_384
VALIDATION_REUSE_S = 300.0
"""How long a token botbuilder accepted is taken again without a new check (never past its `exp`): the channel sends
one token with many activities, and each check decodes it several times and verifies its RSA signature."""
VALIDATIONS_KEPT = 4096


class BotConfiguration:
    """The attribute bag botbuilder's ConfigurationBotFrameworkAuthentication reads."""

    def __init__(self, app_id: str, app_password: str, app_type: str, tenant_id: str, openid_metadata_url: str) -> None:
        self.APP_ID = app_id
        self.APP_PASSWORD = app_password
        self.APP_TYPE = app_type
        self.APP_TENANTID = tenant_id
        if app_id and openid_metadata_url:
            # Parameterized mode; only safe with an app id (botbuilder 4.17.1 crashes on it in anonymous mode).
            tenant = tenant_id or "botframework.com"
            self.TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL = openid_metadata_url
            self.TO_BOT_FROM_CHANNEL_TOKEN_ISSUER = BOT_FRAMEWORK_ISSUER
            self.TO_CHANNEL_FROM_BOT_OAUTH_SCOPE = BOT_FRAMEWORK_ISSUER
            self.TO_CHANNEL_FROM_BOT_LOGIN_URL = f"https://login.microsoftonline.com/{tenant}"
            self.OAUTH_URL = BOT_FRAMEWORK_ISSUER


class ReusedCredentials(ConfigurationServiceClientCredentialFactory):  # type: ignore[misc]
    """Creates each outbound credential once (botbuilder makes a new one, with a token fetch, every turn)."""

    def __init__(self, configuration: BotConfiguration) -> None:
        super().__init__(configuration)
        self._made: dict[tuple[str, str, str, bool], Any] = {}

    async def create_credentials(
        self, app_id: str, oauth_scope: str, login_endpoint: str, validate_authority: bool
    ) -> Any:
        key = (app_id or "", oauth_scope or "", login_endpoint or "", bool(validate_authority))
        if key not in self._made:
            self._made[key] = await super().create_credentials(app_id, oauth_scope, login_endpoint, validate_authority)
        return self._made[key]


@dataclass
class _ReusedConnectors(ConnectorFactory):  # type: ignore[misc]
    """One ConnectorClient per (app, serviceUrl, audience), shared by every turn."""

    inner: ConnectorFactory
    app_id: str
    clients: dict[tuple[str, str, str], Any]
    session: Callable[[], aiohttp.ClientSession]

    async def create(self, service_url: str, audience: str | None = None) -> Any:
        key = (self.app_id, service_url, audience or "")
        client = self.clients.get(key)
        if client is None:
            client = await self.inner.create(service_url, audience)
            # Its operations hold the (de)serializers they were made with: replies go out through these.
            client.conversations._serialize = ModelsAsJson(client._serialize.dependencies)  # type: ignore[no-untyped-call]
            client.conversations._deserialize = ModelsFromJson(client._deserialize.dependencies)  # type: ignore[no-untyped-call]
            use_aiohttp(client, self.session())
            self.clients[key] = client
        return client


class SigningKeysUnavailableError(Exception):
    """The Bot Framework's OpenID metadata or signing keys could not be fetched (our problem, not the caller's)."""


class ReusingAuthentication(BotFrameworkAuthentication):  # type: ignore[misc]
    """Delegates to botbuilder's authentication, handing out cached connector and user-token clients.

    Every refusal becomes a PermissionError: botbuilder 4.17.1 refuses some tokens with IndexError (unknown `kid`),
    AttributeError (a header it cannot split) or a bare Exception (algorithm, endorsements).
    """

    def __init__(self, inner: BotFrameworkAuthentication) -> None:
        self._inner = inner
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._token_clients: dict[str, UserTokenClient] = {}
        self._accepted: TTLCache[tuple[str, str, str], AuthenticateRequestResult] = TTLCache(
            VALIDATIONS_KEPT, VALIDATION_REUSE_S
        )
        self._accepted_headers: TTLCache[str, bool] = TTLCache(VALIDATIONS_KEPT, VALIDATION_REUSE_S)
        self._session: aiohttp.ClientSession | None = None

    def accepted_lately(self, auth_header: str) -> bool:
        """botbuilder accepted this very Authorization header within VALIDATION_REUSE_S (for some activity)."""
        return auth_header in self._accepted_headers

    def _wrap(self, factory: ConnectorFactory | None, identity: ClaimsIdentity) -> ConnectorFactory | None:
        if factory is None:
            return None
        app_id = JwtTokenValidation.get_app_id_from_claims(identity.claims) or ""
        return _ReusedConnectors(factory, app_id, self._clients, self._connector_session)

    def _connector_session(self) -> aiohttp.ClientSession:
        """The connector clients' one HTTP session, made on first use (inside the event loop)."""
        if self._session is None or self._session.closed:
            self._session = connector_session()
        return self._session

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        """botbuilder's verdict, reused for the same header, channel and serviceUrl (all the verdict depends on)."""
        key = (auth_header, str(activity.channel_id), str(activity.service_url))
        accepted = self._accepted.get(key)
        if accepted is not None:
            expires = (accepted.claims_identity.claims or {}).get("exp")
            if isinstance(expires, int | float) and expires > time.time():
                return copy.copy(accepted)  # a result of its own for each turn (botbuilder's turn may set fields on it)
        try:
            result = await self._inner.authenticate_request(activity, auth_header)
        except (PermissionError, jwt.PyJWTError):
            raise
        except requests.RequestException as exc:
            raise SigningKeysUnavailableError(type(exc).__name__) from exc
        except Exception as exc:  # the edge's authentication: whatever botbuilder raises here is a refused token
            raise PermissionError(f"token refused ({type(exc).__name__})") from exc
        result.connector_factory = self._wrap(result.connector_factory, result.claims_identity)
        self._accepted[key] = result
        self._accepted_headers[auth_header] = True
        return copy.copy(result)

    async def authenticate_streaming_request(self, auth_header: str, channel_id_header: str) -> Any:
        return await self._inner.authenticate_streaming_request(auth_header, channel_id_header)

    def create_connector_factory(self, claims_identity: ClaimsIdentity) -> ConnectorFactory:
        return self._wrap(self._inner.create_connector_factory(claims_identity), claims_identity)

    async def create_user_token_client(self, claims_identity: ClaimsIdentity) -> UserTokenClient:
        app_id = JwtTokenValidation.get_app_id_from_claims(claims_identity.claims) or ""
        if app_id not in self._token_clients:
            self._token_clients[app_id] = await self._inner.create_user_token_client(claims_identity)
        return self._token_clients[app_id]

    async def aclose(self) -> None:
        """Close the connector clients' one HTTP session (botbuilder's ConnectorClient has nothing else to close)."""
        self._clients.clear()
        if self._session is not None:
            await self._session.close()


def looks_like_bot_framework_token(header: str) -> bool:
    """A cheap look before botbuilder validates the signature: exactly `Bearer <jwt>`, whose JSON header names
    RS256 and a key id and whose claims carry an issuer and an expiry (PyJWT accepts a token without `exp`)."""
    match = _BEARER_JWT.fullmatch(header) if len(header) <= MAX_AUTHORIZATION_LENGTH else None
    if match is None:
        return False
    try:
        decoded = jwt.decode_complete(match.group(1), options={"verify_signature": False})
    except jwt.PyJWTError:
        return False
    head, claims = decoded["header"], decoded["payload"]
    kid = head.get("kid")
    return (
        head.get("alg") == "RS256"  # what the Bot Framework signs with (botbuilder itself decodes with RS256 only)
        and isinstance(kid, str)
        and bool(kid)
        and isinstance(claims.get("iss"), str)
        and type(claims.get("exp")) in (int, float)
    )


CONNECTOR_TIMEOUT_S = 100.0
"""A Bot Connector request's whole time (msrest's default for the requests it sent)."""


def connector_session() -> aiohttp.ClientSession:
    """An HTTP session that trusts certifi's CAs as `requests` did, and ignores *_PROXY and .netrc like Gradebot's
    Graph and identity clients (aiohttp would look them up in a thread on every request)."""
    tls = ssl.create_default_context(cafile=certifi.where())
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls), timeout=aiohttp.ClientTimeout(total=CONNECTOR_TIMEOUT_S)
    )


class _Session(AsyncHTTPSender):
    """msrest's HTTP driver over a shared aiohttp session (msrest's own aiohttp driver sends neither the body nor the
    headers); a request that gets no answer raises ClientRequestError, as msrest's requests driver does."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aexit__(self, *exc_details: object) -> None:
        return None  # the session belongs to the authentication that made it, and closes with it

    async def send(self, request: ClientRequest, **config: Any) -> AsyncRequestsClientResponse:
        # msrest counts Content-Length in characters; aiohttp counts the bytes it sends.
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        try:
            async with self._session.request(request.method, request.url, headers=headers, data=request.data) as raw:
                answer = requests.Response()
                answer.status_code, answer.reason, answer.url = raw.status, raw.reason or "", str(raw.url)
                answer.headers = CaseInsensitiveDict(raw.headers)
                answer._content = await raw.read()
                answer.encoding = raw.charset or "utf-8"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientRequestError(f"Bot Connector request failed: {type(exc).__name__}") from exc
        return AsyncRequestsClientResponse(request, answer)  # type: ignore[no-untyped-call]


class _Bearer(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """The botbuilder credentials' Authorization header on every request (they sign a requests-style session)."""

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    async def send(self, request: Any, **kwargs: Any) -> Any:
        signed = self._credentials.signed_session(SimpleNamespace(headers={}))
        request.http_request.headers.update(signed.headers)
        assert self.next is not None  # set when the pipeline is built
        return await self.next.send(request, **kwargs)


def use_aiohttp(client: Any, session: aiohttp.ClientSession) -> None:
    """Send this botbuilder ConnectorClient's requests through `session`, its user agent and logging kept."""
    config = client._client.config
    policies = [config.user_agent_policy, _Bearer(config.credentials), RawDeserializer(), config.http_logger_policy]
    config.pipeline = AsyncPipeline(policies, AioHTTPSender(_Session(session)))  # type: ignore[arg-type]
