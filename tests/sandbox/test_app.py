"""The composed sandbox: lifecycle, http + https, `/_sandbox/info`, `/_sandbox/users`, `/_sandbox/ca.pem`."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from cryptography import x509

from sandbox.app import Sandbox, SandboxError
from sandbox.directory import BOT_APP_ID, BOT_APP_SECRET, GRAPH_AUDIENCE
from tests.sandbox.identity_fixtures import claims_of, running_sandbox, teacher, tls_context


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_info_tells_a_bot_where_everything_is(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base_url}/_sandbox/info") as response:
        info = await response.json()
    assert info == sandbox.info()
    tenant = sandbox.directory.tenant_id
    assert info["tenantId"] == tenant
    assert info["graphUrl"] == f"http://127.0.0.1:{sandbox.port}/v1.0"
    assert info["betaUrl"] == f"http://127.0.0.1:{sandbox.port}/beta"
    assert info["authorityUrl"] == f"https://127.0.0.1:{sandbox.tls_port}/{tenant}"
    assert info["connectorUrl"] == f"http://127.0.0.1:{sandbox.port}/connector"
    assert info["botAppId"] == BOT_APP_ID and info["botAppSecret"] == BOT_APP_SECRET
    assert info["caPem"] == sandbox.ca_pem
    assert sandbox.port != sandbox.tls_port


async def test_https_port_serves_the_same_app_under_the_sandbox_ca(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    https_base = f"https://127.0.0.1:{sandbox.tls_port}"
    async with http.get(f"{https_base}/_sandbox/info", ssl=tls_context(sandbox)) as response:
        assert (await response.json())["authorityUrl"] == sandbox.authority_url
    async with http.get(f"https://localhost:{sandbox.tls_port}/_sandbox/info", ssl=tls_context(sandbox)) as response:
        assert response.status == 200  # the certificate names localhost too
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        async with http.get(f"{https_base}/_sandbox/info") as response:
            pass  # the system store does not trust the sandbox CA


async def test_ca_pem_is_served_and_is_a_ca(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base_url}/_sandbox/ca.pem") as response:
        pem = await response.text()
    assert pem == sandbox.ca_pem
    certificate = x509.load_pem_x509_certificate(pem.encode())
    assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


async def test_users_lists_the_seeded_people(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base_url}/_sandbox/users") as response:
        users = await response.json()
    assert len(users) == len(sandbox.directory.users)
    assert users[0]["role"] == "teacher"
    by_id = {u["id"]: u for u in users}
    for school_class in sandbox.directory.classes.values():
        for teacher_id in school_class.teacher_ids:
            listed = {c["id"]: c for c in by_id[teacher_id]["classes"]}
            assert listed[school_class.id] == {
                "id": school_class.id,
                "displayName": school_class.display_name,
                "role": "teacher",
            }
        for student_id in school_class.student_ids:
            assert {"id": school_class.id, "displayName": school_class.display_name, "role": "student"} in by_id[
                student_id
            ]["classes"]
    rosa = teacher(sandbox)
    assert by_id[rosa.id]["upn"] == rosa.user_principal_name and by_id[rosa.id]["displayName"] == rosa.display_name


async def test_tokens_are_issued_for_the_https_authority(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sandbox.base_url}/_sandbox/token", json={"upn": teacher(sandbox).id}) as response:
        token = (await response.json())["access_token"]
    claims = claims_of(token)
    assert claims["iss"] == f"{sandbox.authority_url}/v2.0" and claims["aud"] == GRAPH_AUDIENCE


async def test_graph_is_mounted_and_checks_bearers(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.graph_url}/education/classes") as response:
        assert response.status == 401
    async with http.post(f"{sandbox.base_url}/_sandbox/token", json={"upn": teacher(sandbox).id}) as response:
        token = (await response.json())["access_token"]
    async with http.get(
        f"{sandbox.graph_url}/education/classes", headers={"Authorization": f"Bearer {token}"}
    ) as response:
        assert response.status == 200
        assert (await response.json())["value"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_fixed_ports_lifecycle_and_misuse(http: aiohttp.ClientSession) -> None:
    with pytest.raises(SandboxError):
        Sandbox(host="0.0.0.0")
    port, tls_port = free_port(), free_port()
    sandbox = Sandbox(port=port, tls_port=tls_port, host="localhost")
    with pytest.raises(SandboxError):
        _ = sandbox.authority  # the issuer needs the https port: no authority before start
    async with sandbox:
        assert sandbox.base_url == f"http://localhost:{port}"
        assert sandbox.authority_url.startswith(f"https://localhost:{tls_port}/")
        with pytest.raises(SandboxError):
            await sandbox.start()
        async with http.get(f"http://127.0.0.1:{port}/_sandbox/info") as response:
            assert response.status == 200
    with pytest.raises(aiohttp.ClientConnectorError):
        async with http.get(f"http://127.0.0.1:{port}/_sandbox/info"):
            pass
