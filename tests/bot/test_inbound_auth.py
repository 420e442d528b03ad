"""With an app id configured, Gradebot validates inbound Bot Framework JWTs for real (botbuilder's CloudAdapter,
pointed at locally generated keys through overridden OpenID metadata): valid → accepted; anything else → 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticateRequestResult, ClaimsIdentity
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from app import PARTS, create_app
from bot.settings import Settings
from bot.teams.auth import ReusingAuthentication
from sandbox.directory import default_directory
from tests.bot.activities import card_action, message
from tests.bot.conftest import cards_of, replies

APP_ID = str(uuid.UUID(int=0xA11CE))
SERVICE_URL = "https://smba.trafficmanager.net/emea/"
ISSUER = "https://api.botframework.com"


def _b64(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class MetadataServer:
    """Bot Framework OpenID metadata + JWKS on 127.0.0.1, in a thread (botbuilder fetches it with blocking requests)."""

    def __init__(self, key: rsa.RSAPrivateKey, kid: str) -> None:
        numbers = key.public_key().public_numbers()
        jwks = {
            "keys": [
                {
                    "kty": "RSA",
                    "use": "sig",
                    "kid": kid,
                    "n": _b64(numbers.n),
                    "e": _b64(numbers.e),
                    "endorsements": ["msteams"],
                }
            ]
        }
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.metadata() if self.path.endswith("openidconfiguration") else jwks
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def metadata(self) -> dict[str, Any]:
        return {"issuer": ISSUER, "jwks_uri": f"{self.url}/keys", "id_token_signing_alg_values_supported": ["RS256"]}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def metadata(signing_key: rsa.RSAPrivateKey) -> Iterator[MetadataServer]:
    server = MetadataServer(signing_key, "test-key-1")
    yield server
    server.close()


@pytest.fixture
async def client(aiohttp_client: Any, metadata: MetadataServer, tmp_path: Path) -> Any:
    settings = Settings.from_env(
        {},
        app_id=APP_ID,
        app_password="not-used-offline",
        app_type="MultiTenant",
        bot_openid_metadata_url=f"{metadata.url}/v1/.well-known/openidconfiguration",
        token_encryption_key=b"k" * 32,
        public_base_url="https://gradebot.example",
        database_url=f"sqlite:///{tmp_path / 'gradebot.db'}",
        reminders_enabled=False,
    )
    return await aiohttp_client(create_app(settings))


def _token(key: rsa.RSAPrivateKey, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": APP_ID,
        "serviceurl": SERVICE_URL,
        "nbf": now - 10,
        "iat": now - 10,
        "exp": now + 600,
    }
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "test-key-1"})


def _help_activity() -> dict[str, Any]:
    rosa = next(u for u in default_directory().users.values() if u.role == "teacher")
    return message(rosa, "help", SERVICE_URL)


async def test_a_valid_bot_framework_token_is_accepted(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    response = await client.post(
        "/api/messages", json=_help_activity(), headers={"Authorization": f"Bearer {_token(signing_key)}"}
    )
    assert response.status == 200
    assert cards_of(replies(await response.json())), "help should answer with a card"


def _forged(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    """A hand-assembled JWT (for algorithms and headers PyJWT refuses to produce)."""

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return ".".join((part(json.dumps(header).encode()), part(json.dumps(claims).encode()), part(signature)))


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": APP_ID,
        "serviceurl": SERVICE_URL,
        "nbf": now - 10,
        "iat": now - 10,
        "exp": now + 600,
    }
    claims.update(overrides)
    return claims


def _authorization(variant: str, key: rsa.RSAPrivateKey) -> str | None:
    """The Authorization header of one refused variant (None: no header at all)."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    now = int(time.time())
    tokens: dict[str, Callable[[], str]] = {
        "bad-signature": lambda: _token(other),
        "wrong-audience": lambda: _token(key, aud=str(uuid.uuid4())),
        "expired": lambda: _token(key, exp=now - 3600, nbf=0, iat=0),
        "not-yet-valid": lambda: _token(key, nbf=now + 3600, iat=now + 3600, exp=now + 7200),
        "wrong-issuer": lambda: _token(key, iss="https://evil.example"),
        "wrong-service-url": lambda: _token(key, serviceurl="https://evil.example/"),
        "no-service-url-claim": lambda: jwt.encode(
            {k: v for k, v in _claims().items() if k != "serviceurl"}, key, "RS256", headers={"kid": "test-key-1"}
        ),
        "no-exp": lambda: jwt.encode(
            {k: v for k, v in _claims().items() if k != "exp"}, key, "RS256", headers={"kid": "test-key-1"}
        ),
        "alg-none": lambda: _forged({"alg": "none", "typ": "JWT", "kid": "test-key-1"}, _claims()),
        "alg-none-no-kid": lambda: _forged({"alg": "none", "typ": "JWT"}, _claims()),
        "hs256-with-public-key": lambda: _forged(
            {"alg": "HS256", "typ": "JWT", "kid": "test-key-1"},
            _claims(),
            hmac.new(public_pem, b"x", hashlib.sha256).digest(),
        ),
        "hs256": lambda: jwt.encode(_claims(), "a shared secret of 32 bytes or more!!", "HS256"),
        "no-kid": lambda: jwt.encode(_claims(), key, "RS256"),
        "unknown-kid": lambda: jwt.encode(_claims(), key, "RS256", headers={"kid": "some-other-key"}),
        "kid-not-a-string": lambda: _forged({"alg": "RS256", "kid": {"$ne": 1}}, _claims(), b"sig"),
        "alg-not-a-string": lambda: _forged({"alg": ["RS256"], "kid": "test-key-1"}, _claims(), b"sig"),
        "rs512-other-key": lambda: jwt.encode(_claims(), other, "RS512", headers={"kid": "test-key-1"}),
        "header-not-json": lambda: "bm90IGpzb24." + _token(key).split(".", 1)[1],
        "header-is-a-list": lambda: _forged([1, 2], _claims()),  # type: ignore[arg-type]
        "claims-not-json": lambda: _token(key).split(".")[0] + ".bm90IGpzb24.c2ln",
        "two-parts": lambda: ".".join(_token(key).split(".")[:2]),
        "four-parts": lambda: _token(key) + ".extra",
    }
    raw: dict[str, str | None] = {
        "missing": None,
        "empty": "",
        "bearer-only": "Bearer",
        "bearer-space": "Bearer ",
        "two-spaces": "Bearer  x",
        "two-spaces-before-a-valid-token": f"Bearer  {_token(key)}",
        "malformed": "Bearer not.a.jwt",
        "garbage": "Bearer ~!@#$%^&*()+{}|:<>?[];',/`",
        "not-bearer": "Basic dXNlcjpwYXNz",
        "wrong-scheme-valid-token": f"Token {_token(key)}",
        "huge": "Bearer " + "A" * 7000,
        "huge-dotted": "Bearer " + ".".join(["A" * 2000] * 3),
    }
    if variant in raw:
        return raw[variant]
    return f"Bearer {tokens[variant]()}"


REFUSED = [
    "missing",
    "empty",
    "bearer-only",
    "bearer-space",
    "two-spaces",
    "two-spaces-before-a-valid-token",
    "malformed",
    "garbage",
    "not-bearer",
    "wrong-scheme-valid-token",
    "huge",
    "huge-dotted",
    "bad-signature",
    "wrong-audience",
    "expired",
    "not-yet-valid",
    "wrong-issuer",
    "wrong-service-url",
    "no-service-url-claim",
    "no-exp",
    "alg-none",
    "alg-none-no-kid",
    "hs256-with-public-key",
    "hs256",
    "no-kid",
    "unknown-kid",
    "kid-not-a-string",
    "alg-not-a-string",
    "rs512-other-key",
    "header-not-json",
    "header-is-a-list",
    "claims-not-json",
    "two-parts",
    "four-parts",
]


@pytest.mark.parametrize("variant", REFUSED)
async def test_anything_but_a_valid_token_is_401_never_500(
    client: Any, signing_key: rsa.RSAPrivateKey, variant: str
) -> None:
    authorization = _authorization(variant, signing_key)
    headers = {"Authorization": authorization} if authorization is not None else {}
    activity = _help_activity()
    response = await client.post("/api/messages", json=activity, headers=headers)
    assert response.status == 401, await response.text()
    # The handler never ran: a turn that reaches it records the conversation first.
    store = client.app[PARTS].store
    assert await store.get_conversation(activity["conversation"]["id"]) is None


@pytest.mark.parametrize("variant", ["alg-none", "no-kid", "unknown-kid", "two-spaces", "hs256"])
async def test_refused_tokens_on_an_invoke_are_401_too(
    client: Any, signing_key: rsa.RSAPrivateKey, variant: str
) -> None:
    rosa = next(u for u in default_directory().users.values() if u.role == "teacher")
    activity = card_action(rosa, "grade", {"classId": "c", "assignmentId": "a", "submissionId": "s"}, SERVICE_URL)
    authorization = _authorization(variant, signing_key)
    assert authorization is not None
    response = await client.post("/api/messages", json=activity, headers={"Authorization": authorization})
    assert response.status == 401, await response.text()
    assert await client.app[PARTS].store.get_conversation(activity["conversation"]["id"]) is None


async def test_a_channel_the_signing_key_does_not_endorse_is_401(client: Any, signing_key: rsa.RSAPrivateKey) -> None:
    # The key is endorsed for msteams only; botbuilder refuses other channels with a bare Exception.
    activity = {**_help_activity(), "channelId": "webchat"}
    response = await client.post(
        "/api/messages", json=activity, headers={"Authorization": f"Bearer {_token(signing_key)}"}
    )
    assert response.status == 401
    assert await client.app[PARTS].store.get_conversation(activity["conversation"]["id"]) is None


async def test_unreachable_signing_keys_are_503_so_the_channel_retries(
    aiohttp_client: Any, signing_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    settings = Settings.from_env(
        {},
        app_id=APP_ID,
        app_password="not-used-offline",
        bot_openid_metadata_url=f"http://127.0.0.1:{port}/v1/.well-known/openidconfiguration",
        token_encryption_key=b"k" * 32,
        public_base_url="https://gradebot.example",
        database_url=f"sqlite:///{tmp_path / 'gradebot.db'}",
        reminders_enabled=False,
    )
    client = await aiohttp_client(create_app(settings))
    response = await client.post(
        "/api/messages", json=_help_activity(), headers={"Authorization": f"Bearer {_token(signing_key)}"}
    )
    assert response.status == 503


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ('{"text": "no type"}', "application/json", 400),
        ('{"type": "message"}', "text/plain", 415),
    ],
)
async def test_malformed_requests_get_4xx(
    client: Any, signing_key: rsa.RSAPrivateKey, body: str, content_type: str, status: int
) -> None:
    headers = {"Content-Type": content_type, "Authorization": f"Bearer {_token(signing_key)}"}
    response = await client.post("/api/messages", data=body, headers=headers)
    assert response.status == status


async def test_an_accepted_token_is_checked_again_for_another_service_url_or_channel(
    client: Any, signing_key: rsa.RSAPrivateKey
) -> None:
    headers = {"Authorization": f"Bearer {_token(signing_key)}"}
    assert (await client.post("/api/messages", json=_help_activity(), headers=headers)).status == 200
    # The same token, reused from the cache only for the serviceUrl and channel it was checked with.
    elsewhere = {**_help_activity(), "serviceUrl": "https://evil.example/"}
    assert (await client.post("/api/messages", json=elsewhere, headers=headers)).status == 401
    webchat = {**_help_activity(), "channelId": "webchat"}
    assert (await client.post("/api/messages", json=webchat, headers=headers)).status == 401
    assert (await client.post("/api/messages", json=_help_activity(), headers=headers)).status == 200


class CountingAuthentication:
    """botbuilder's authenticate_request, stood in: accepts tokens that expire at `expires`, or refuses all."""

    def __init__(self, expires: float, refuse: bool = False) -> None:
        self.calls = 0
        self.expires = expires
        self.refuse = refuse

    async def authenticate_request(self, activity: Activity, auth_header: str) -> AuthenticateRequestResult:
        self.calls += 1
        if self.refuse:
            raise Exception("Unauthorized. Invalid AppId passed on token")  # what botbuilder raises
        result = AuthenticateRequestResult()
        result.claims_identity = ClaimsIdentity({"aud": APP_ID, "exp": self.expires}, True)
        return result


async def test_a_verdict_is_reused_only_for_the_same_header_channel_and_service_url_and_never_past_exp() -> None:
    inner = CountingAuthentication(expires=time.time() + 600)
    auth = ReusingAuthentication(inner)
    activity = Activity(channel_id="msteams", service_url=SERVICE_URL)
    first = await auth.authenticate_request(activity, "Bearer a")
    again = await auth.authenticate_request(activity, "Bearer a")
    assert inner.calls == 1 and again is not first and again.claims_identity is first.claims_identity
    await auth.authenticate_request(Activity(channel_id="msteams", service_url="https://other.example/"), "Bearer a")
    await auth.authenticate_request(Activity(channel_id="webchat", service_url=SERVICE_URL), "Bearer a")
    await auth.authenticate_request(activity, "Bearer b")
    assert inner.calls == 4

    expired = CountingAuthentication(expires=time.time() - 1)
    auth = ReusingAuthentication(expired)
    await auth.authenticate_request(activity, "Bearer a")
    await auth.authenticate_request(activity, "Bearer a")
    assert expired.calls == 2

    refusing = CountingAuthentication(expires=time.time() + 600, refuse=True)
    auth = ReusingAuthentication(refusing)
    for _ in range(2):
        with pytest.raises(PermissionError):
            await auth.authenticate_request(activity, "Bearer a")
    assert refusing.calls == 2  # a refusal is never remembered as an acceptance
