"""Helpers for the identity, connector, app and CLI tests: a running Sandbox, an msal client that trusts its CA."""

from __future__ import annotations

import functools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import msal
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.app import Sandbox
from sandbox.directory import BOT_APP_ID, BOT_APP_SECRET, User
from sandbox.school import School
from sandbox.tls import TlsMaterial, generate_tls_material

GRAPH_SCOPES = [
    "https://graph.microsoft.com/EduAssignments.ReadWrite",
    "https://graph.microsoft.com/EduRoster.ReadBasic",
]


@functools.cache
def shared_keys() -> tuple[rsa.RSAPrivateKey, TlsMaterial]:
    """One signing key and one CA for the whole test run: generating them is most of a sandbox's start-up time."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048), generate_tls_material()


def new_sandbox(school: School | None = None) -> Sandbox:
    signing_key, tls = shared_keys()
    return Sandbox(school, signing_key=signing_key, tls=tls)


@asynccontextmanager
async def running_sandbox(sandbox: Sandbox | None = None) -> AsyncIterator[Sandbox]:
    running = sandbox or new_sandbox()
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def write_ca(sandbox: Sandbox, folder: Path) -> Path:
    path = folder / "sandbox-ca.pem"
    path.write_text(sandbox.ca_pem, encoding="ascii")
    return path


def msal_client(
    sandbox: Sandbox,
    ca_file: Path,
    *,
    client_id: str = BOT_APP_ID,
    secret: str = BOT_APP_SECRET,
    cache: msal.TokenCache | None = None,
) -> msal.ConfidentialClientApplication:
    """The real msal, unmodified, pointed at the sandbox's https authority (blocking: call it in a thread)."""
    session = requests.Session()
    session.verify = str(ca_file)
    session.trust_env = False
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=sandbox.authority_url,
        http_client=session,
        instance_discovery=False,
        token_cache=cache,
    )


def tls_context(sandbox: Sandbox) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=sandbox.ca_pem)


def claims_of(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


def teacher(sandbox: Sandbox) -> User:
    return next(u for u in sorted(sandbox.directory.users.values(), key=lambda u: u.id) if u.role == "teacher")


def student(sandbox: Sandbox) -> User:
    return next(u for u in sorted(sandbox.directory.users.values(), key=lambda u: u.id) if u.role == "student")


async def sso_token(http: aiohttp.ClientSession, sandbox: Sandbox, user: User, app_id: str | None = None) -> str:
    body: dict[str, str] = {"upn": user.user_principal_name}
    if app_id is not None:
        body["appId"] = app_id
    async with http.post(f"{sandbox.base_url}/_sandbox/sso-token", json=body) as response:
        assert response.status == 200
        return str((await response.json())["token"])
