"""With an app id configured, Gradebot validates inbound Bot Framework JWTs for real (botbuilder's CloudAdapter,
pointed at locally generated keys through overridden OpenID metadata): valid → accepted; anything else → 401."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app import create_app
from bot.config import Settings
from sandbox.directory import default_directory
from tests.bot.activities import message
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
    settings = Settings(
        app_id=APP_ID,
        app_password="not-used-offline",
        app_type="MultiTenant",
        bot_openid_metadata_url=f"{metadata.url}/v1/.well-known/openidconfiguration",
        token_encryption_key=b"k" * 32,
        public_base_url="https://gradebot.example",
        database_url=f"sqlite:///{tmp_path / 'gradebot.db'}",
        reminders_enabled=False,
    )
    settings.validate()
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


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("bearer-of-bad-signature", id="bad-signature"),
        pytest.param("wrong-audience", id="wrong-audience"),
        pytest.param("expired", id="expired"),
        pytest.param("Bearer not.a.jwt", id="malformed"),
        pytest.param("Bearer ", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", id="not-bearer"),
        pytest.param("wrong-issuer", id="wrong-issuer"),
        pytest.param("wrong-service-url", id="wrong-service-url"),
    ],
)
async def test_anything_but_a_valid_token_is_401_never_500(
    client: Any, signing_key: rsa.RSAPrivateKey, authorization: str | None
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers: dict[str, str] = {}
    if authorization == "bearer-of-bad-signature":
        headers["Authorization"] = f"Bearer {_token(other)}"
    elif authorization == "wrong-audience":
        headers["Authorization"] = f"Bearer {_token(signing_key, aud=str(uuid.uuid4()))}"
    elif authorization == "expired":
        headers["Authorization"] = f"Bearer {_token(signing_key, exp=int(time.time()) - 3600, nbf=0, iat=0)}"
    elif authorization == "wrong-issuer":
        headers["Authorization"] = f"Bearer {_token(signing_key, iss='https://evil.example')}"
    elif authorization == "wrong-service-url":
        headers["Authorization"] = f"Bearer {_token(signing_key, serviceurl='https://evil.example/')}"
    elif authorization is not None:
        headers["Authorization"] = authorization
    response = await client.post("/api/messages", json=_help_activity(), headers=headers)
    assert response.status == 401


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
