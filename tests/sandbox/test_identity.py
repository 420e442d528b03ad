"""The Entra stand-in over real HTTP(S) and real msal: metadata, JWKS, client credentials, OBO, refresh and refusals."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import msal
import pytest
import requests

from sandbox.app import Sandbox
from sandbox.directory import BOT_APP_ID, BOT_APP_SECRET, GRAPH_AUDIENCE
from sandbox.identity import TEAMS_CLIENT_ID, service_principal_id
from sandbox.tokens import TokenAuthority
from tests.sandbox.identity_fixtures import (
    GRAPH_SCOPES,
    claims_of,
    msal_client,
    running_sandbox,
    sso_token,
    student,
    teacher,
    tls_context,
    write_ca,
)


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with running_sandbox() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def ca_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_ca(sandbox, tmp_path)


async def post_token(
    http: aiohttp.ClientSession, sandbox: Sandbox, form: dict[str, str], tenant: str | None = None
) -> tuple[int, dict[str, Any]]:
    url = f"https://127.0.0.1:{sandbox.tls_port}/{tenant or sandbox.directory.tenant_id}/oauth2/v2.0/token"
    async with http.post(url, data=form, ssl=tls_context(sandbox)) as response:
        return response.status, await response.json()


def obo_form(assertion: str, **overrides: str) -> dict[str, str]:
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of",
        "assertion": assertion,
        "scope": " ".join(GRAPH_SCOPES) + " offline_access openid profile",
        "client_id": BOT_APP_ID,
        "client_secret": BOT_APP_SECRET,
        "client_info": "1",
    }
    form.update(overrides)
    return form


def assert_entra_error(body: dict[str, Any], error: str, code: int) -> None:
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert {"timestamp", "trace_id", "correlation_id"} <= body.keys()


# ---- discovery -----------------------------------------------------------------------------------------------------


async def test_openid_metadata_names_the_https_authority(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    tenant = sandbox.directory.tenant_id
    url = f"{sandbox.authority_url}/v2.0/.well-known/openid-configuration"
    async with http.get(url, ssl=tls_context(sandbox)) as response:
        assert response.status == 200
        metadata = await response.json()
    assert metadata["issuer"] == f"{sandbox.authority_url}/v2.0" == sandbox.authority.issuer
    assert metadata["token_endpoint"] == f"{sandbox.authority_url}/oauth2/v2.0/token"
    assert metadata["authorization_endpoint"] == f"{sandbox.authority_url}/oauth2/v2.0/authorize"
    assert metadata["jwks_uri"] == f"{sandbox.authority_url}/discovery/v2.0/keys"
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    assert sandbox.authority_url == f"https://127.0.0.1:{sandbox.tls_port}/{tenant}"

    async with http.get(f"{sandbox.base_url}/common/v2.0/.well-known/openid-configuration") as response:
        common = await response.json()
    assert common["issuer"].endswith("/{tenantid}/v2.0")
    assert common["token_endpoint"].endswith("/common/oauth2/v2.0/token")


async def test_unknown_tenant_is_refused_like_entra(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.base_url}/{uuid.uuid4()}/v2.0/.well-known/openid-configuration") as response:
        assert response.status == 400
        assert_entra_error(await response.json(), "invalid_tenant", 90002)


async def test_jwks_publishes_the_signing_key(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{sandbox.authority_url}/discovery/v2.0/keys", ssl=tls_context(sandbox)) as response:
        jwks = await response.json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["kid"] == sandbox.authority.kid
    token = sandbox.identity.sso_token(teacher(sandbox))
    public_key = jwt.PyJWK.from_dict(key).key
    claims = jwt.decode(token, public_key, algorithms=["RS256"], audience=f"api://botid-{BOT_APP_ID}")
    assert claims["iss"] == metadata_issuer(sandbox)


def metadata_issuer(sandbox: Sandbox) -> str:
    return f"{sandbox.authority_url}/v2.0"


# ---- client credentials --------------------------------------------------------------------------------------------


async def test_client_credentials_through_msal_gives_an_app_token(sandbox: Sandbox, ca_file: Path) -> None:
    app = await asyncio.to_thread(msal_client, sandbox, ca_file)
    result = await asyncio.to_thread(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert "access_token" in result, result
    claims = sandbox.authority.verify(result["access_token"], audience=GRAPH_AUDIENCE)
    registration = sandbox.directory.apps[BOT_APP_ID]
    assert claims["roles"] == sorted(registration.roles)
    assert "scp" not in claims
    assert claims["oid"] == service_principal_id(BOT_APP_ID) != BOT_APP_ID
    assert claims["azp"] == claims["appid"] == BOT_APP_ID
    principal = sandbox.authority.principal(claims)
    assert not principal.is_delegated and principal.roles == registration.roles

    again = await asyncio.to_thread(app.acquire_token_for_client, ["https://graph.microsoft.com/.default"])
    assert again["access_token"] == result["access_token"]
    assert again["token_source"] == "cache"
    assert sandbox.identity.stats.issued == {"client_credentials": 1}


async def test_client_credentials_for_the_bot_framework_audience(sandbox: Sandbox, ca_file: Path) -> None:
    app = await asyncio.to_thread(msal_client, sandbox, ca_file)
    result = await asyncio.to_thread(app.acquire_token_for_client, ["https://api.botframework.com/.default"])
    claims = sandbox.authority.verify(result["access_token"], audience="https://api.botframework.com")
    assert "roles" not in claims and claims["appid"] == BOT_APP_ID


async def test_client_credentials_needs_a_default_scope(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": BOT_APP_ID,
        "client_secret": BOT_APP_SECRET,
        "scope": "https://graph.microsoft.com/EduRoster.Read.All",
    }
    status, body = await post_token(http, sandbox, form)
    assert status == 400
    assert_entra_error(body, "invalid_scope", 1002012)
    status, body = await post_token(http, sandbox, {**form, "scope": "https://example.invalid/.default"})
    assert status == 400 and body["error"] == "invalid_resource"


# ---- on-behalf-of and the msal cache -------------------------------------------------------------------------------


async def test_obo_through_msal_then_silent_from_cache(
    sandbox: Sandbox, http: aiohttp.ClientSession, ca_file: Path
) -> None:
    rosa = teacher(sandbox)
    assertion = await sso_token(http, sandbox, rosa)
    cache = msal.TokenCache()
    app = await asyncio.to_thread(msal_client, sandbox, ca_file, cache=cache)

    result = await asyncio.to_thread(app.acquire_token_on_behalf_of, assertion, GRAPH_SCOPES)
    assert "access_token" in result, result
    claims = sandbox.authority.verify(result["access_token"], audience=GRAPH_AUDIENCE)
    assert claims["oid"] == rosa.id and claims["tid"] == sandbox.directory.tenant_id
    assert claims["upn"] == rosa.user_principal_name and claims["name"] == rosa.display_name
    assert set(claims["scp"].split()) == {"EduAssignments.ReadWrite", "EduRoster.ReadBasic"}
    assert claims["azp"] == BOT_APP_ID
    principal = sandbox.authority.principal(claims)
    assert principal.is_delegated and principal.user_id == rosa.id
    assert result["id_token_claims"]["oid"] == rosa.id

    (account,) = await asyncio.to_thread(app.get_accounts)
    assert account["username"] == rosa.user_principal_name
    assert account["home_account_id"] == f"{rosa.id}.{sandbox.directory.tenant_id}"
    refresh_tokens = list(cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN))
    assert len(refresh_tokens) == 1

    silent = await asyncio.to_thread(app.acquire_token_silent, GRAPH_SCOPES, account)
    assert silent is not None
    assert silent["access_token"] == result["access_token"]
    assert silent["token_source"] == "cache"
    assert "refresh_token" not in sandbox.identity.stats.issued


async def test_silent_refreshes_through_the_refresh_token_after_expiry(
    sandbox: Sandbox, http: aiohttp.ClientSession, ca_file: Path
) -> None:
    # msal treats an access token with under five minutes left as expired.
    sandbox.identity.access_token_lifetime_s = 120
    cache = msal.TokenCache()
    app = await asyncio.to_thread(msal_client, sandbox, ca_file, cache=cache)
    first = await asyncio.to_thread(
        app.acquire_token_on_behalf_of, await sso_token(http, sandbox, teacher(sandbox)), GRAPH_SCOPES
    )
    old_refresh = next(iter(cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)))["secret"]
    (account,) = await asyncio.to_thread(app.get_accounts)

    refreshed = await asyncio.to_thread(app.acquire_token_silent, GRAPH_SCOPES, account)
    assert refreshed is not None and "access_token" in refreshed
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert sandbox.identity.stats.issued["refresh_token"] == 1
    claims = sandbox.authority.verify(refreshed["access_token"], audience=GRAPH_AUDIENCE)
    assert claims["oid"] == teacher(sandbox).id
    new_refresh = next(iter(cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN)))["secret"]
    assert new_refresh != old_refresh  # rotated


async def test_revoked_refresh_token_is_invalid_grant(
    sandbox: Sandbox, http: aiohttp.ClientSession, ca_file: Path
) -> None:
    sandbox.identity.access_token_lifetime_s = 120
    rosa = teacher(sandbox)
    app = await asyncio.to_thread(msal_client, sandbox, ca_file)
    await asyncio.to_thread(app.acquire_token_on_behalf_of, await sso_token(http, sandbox, rosa), GRAPH_SCOPES)
    (account,) = await asyncio.to_thread(app.get_accounts)

    async with http.post(f"{sandbox.base_url}/_sandbox/revoke", json={"upn": rosa.user_principal_name}) as response:
        assert (await response.json()) == {"userId": rosa.id, "revoked": 1}

    result = await asyncio.to_thread(app.acquire_token_silent_with_error, GRAPH_SCOPES, account)
    assert result is not None
    assert result["error"] == "invalid_grant" and result["error_codes"] == [50173]


async def test_unknown_refresh_token_is_invalid_grant(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    form = {
        "grant_type": "refresh_token",
        "refresh_token": "0.Anot-a-token",
        "client_id": BOT_APP_ID,
        "client_secret": BOT_APP_SECRET,
    }
    status, body = await post_token(http, sandbox, form)
    assert status == 400
    assert_entra_error(body, "invalid_grant", 9002313)


async def test_obo_grants_only_the_consented_scopes(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    assertion = await sso_token(http, sandbox, teacher(sandbox))
    scope = "https://graph.microsoft.com/EduAssignments.ReadWrite https://graph.microsoft.com/Mail.Read"
    status, body = await post_token(http, sandbox, obo_form(assertion, scope=scope))
    assert status == 200
    assert claims_of(body["access_token"])["scp"] == "EduAssignments.ReadWrite"
    assert body["scope"] == "https://graph.microsoft.com/EduAssignments.ReadWrite"
    assert "refresh_token" not in body and "id_token" not in body  # no offline_access / openid asked for

    status, body = await post_token(http, sandbox, obo_form(assertion, scope="https://graph.microsoft.com/Mail.Read"))
    assert status == 400
    assert_entra_error(body, "invalid_grant", 65001)
    assert body["suberror"] == "consent_required"


async def test_obo_gives_client_info_for_msal(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    rosa = teacher(sandbox)
    status, body = await post_token(http, sandbox, obo_form(await sso_token(http, sandbox, rosa)))
    assert status == 200
    info = msal.oauth2cli.oidc.decode_part(body["client_info"])
    assert info == f'{{"uid":"{rosa.id}","utid":"{sandbox.directory.tenant_id}"}}'
    id_claims = claims_of(body["id_token"])
    assert id_claims["aud"] == BOT_APP_ID and id_claims["preferred_username"] == rosa.user_principal_name
    assert body["refresh_token"].startswith("0.A")


# ---- on-behalf-of refusals -------------------------------------------------------------------------------------------


async def test_obo_refuses_an_assertion_signed_by_another_key(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    impostor = TokenAuthority(sandbox.directory.tenant_id, sandbox.authority_url)
    forged = impostor.mint({"aud": f"api://botid-{BOT_APP_ID}", "oid": teacher(sandbox).id, "scp": "access_as_user"})
    status, body = await post_token(http, sandbox, obo_form(forged))
    assert status == 400
    assert_entra_error(body, "invalid_grant", 50013)
    assert "signature" in body["error_description"]


async def test_obo_refuses_an_assertion_for_another_audience(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    other_app = str(uuid.uuid4())
    assertion = await sso_token(http, sandbox, teacher(sandbox), app_id=other_app)
    status, body = await post_token(http, sandbox, obo_form(assertion))
    assert status == 400
    assert_entra_error(body, "invalid_grant", 50013)
    assert f"api://botid-{other_app}" in body["error_description"]


async def test_obo_refuses_an_expired_assertion(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    expired = sandbox.authority.mint(
        {"aud": f"api://botid-{BOT_APP_ID}", "oid": teacher(sandbox).id, "scp": "access_as_user"},
        lifetime_s=600,
        now=time.time() - 3600,
    )
    status, body = await post_token(http, sandbox, obo_form(expired))
    assert status == 400
    assert_entra_error(body, "invalid_grant", 500133)


async def test_obo_refuses_an_app_token_as_assertion(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    app_token = sandbox.authority.mint({"aud": f"api://botid-{BOT_APP_ID}", "oid": str(uuid.uuid4()), "roles": []})
    status, body = await post_token(http, sandbox, obo_form(app_token))
    assert status == 400
    assert_entra_error(body, "invalid_grant", 50013)


async def test_wrong_client_secret_is_401_invalid_client(
    sandbox: Sandbox, http: aiohttp.ClientSession, ca_file: Path
) -> None:
    assertion = await sso_token(http, sandbox, teacher(sandbox))
    status, body = await post_token(http, sandbox, obo_form(assertion, client_secret="not-the-secret"))
    assert status == 401
    assert_entra_error(body, "invalid_client", 7000215)

    app = await asyncio.to_thread(msal_client, sandbox, ca_file, secret="not-the-secret")
    result = await asyncio.to_thread(app.acquire_token_on_behalf_of, assertion, GRAPH_SCOPES)
    assert result["error"] == "invalid_client" and "access_token" not in result


async def test_unknown_client_and_missing_secret(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}
    status, body = await post_token(http, sandbox, {**form, "client_id": str(uuid.uuid4()), "client_secret": "x"})
    assert status == 400
    assert_entra_error(body, "unauthorized_client", 700016)
    status, body = await post_token(http, sandbox, {**form, "client_id": BOT_APP_ID})
    assert status == 401
    assert_entra_error(body, "invalid_client", 7000218)


async def test_unknown_grant_is_unsupported_grant_type(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    form = {"grant_type": "password", "client_id": BOT_APP_ID, "client_secret": BOT_APP_SECRET}
    status, body = await post_token(http, sandbox, form)
    assert status == 400
    assert_entra_error(body, "unsupported_grant_type", 70003)
    status, body = await post_token(http, sandbox, {"client_id": BOT_APP_ID})
    assert status == 400
    assert_entra_error(body, "invalid_request", 900144)


# ---- authorization code (sign-in link) -------------------------------------------------------------------------------


class HiddenFields(HTMLParser):
    """Reads the action and hidden inputs of a form_post page."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")


async def test_authorization_code_flow_through_msal(sandbox: Sandbox, ca_file: Path) -> None:
    rosa = teacher(sandbox)
    app = await asyncio.to_thread(msal_client, sandbox, ca_file)
    redirect_uri = "http://127.0.0.1:3978/auth/callback"
    flow = app.initiate_auth_code_flow(
        GRAPH_SCOPES, redirect_uri=redirect_uri, login_hint=rosa.user_principal_name, response_mode="form_post"
    )

    def follow_authorize() -> requests.Response:
        session = requests.Session()
        session.trust_env = False
        return session.get(flow["auth_uri"], verify=str(ca_file), allow_redirects=False)

    answer = await asyncio.to_thread(follow_authorize)
    assert answer.status_code == 200
    form = HiddenFields()
    form.feed(answer.text)
    assert form.action == redirect_uri
    assert {"code", "state", "client_info"} <= form.fields.keys()
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, form.fields)
    assert "access_token" in result, result
    assert result["id_token_claims"]["oid"] == rosa.id
    assert set(claims_of(result["access_token"])["scp"].split()) == {"EduAssignments.ReadWrite", "EduRoster.ReadBasic"}


async def test_codes_refresh_tokens_and_verifiers_are_remembered_for_log_scans(sandbox: Sandbox, ca_file: Path) -> None:
    rosa = teacher(sandbox)
    app = await asyncio.to_thread(msal_client, sandbox, ca_file)
    redirect_uri = "http://127.0.0.1:3978/auth/callback"
    flow = app.initiate_auth_code_flow(
        GRAPH_SCOPES, redirect_uri=redirect_uri, login_hint=rosa.user_principal_name, response_mode="form_post"
    )

    def follow_authorize() -> requests.Response:
        session = requests.Session()
        session.trust_env = False
        return session.get(flow["auth_uri"], verify=str(ca_file), allow_redirects=False)

    form = HiddenFields()
    form.feed((await asyncio.to_thread(follow_authorize)).text)
    result = await asyncio.to_thread(app.acquire_token_by_auth_code_flow, flow, form.fields)
    assert "access_token" in result, result
    assert form.fields["code"] in sandbox.identity.secrets_seen
    assert flow["code_verifier"] in sandbox.identity.secrets_seen
    assert result["refresh_token"] in sandbox.identity.secrets_seen


async def test_authorize_without_login_hint_offers_the_seeded_accounts(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    query = {
        "client_id": BOT_APP_ID,
        "response_type": "code",
        "redirect_uri": "http://localhost:3978/auth/callback",
        "scope": "openid",
        "state": "s1",
    }
    async with http.get(f"{sandbox.base_url}/{sandbox.directory.tenant_id}/oauth2/v2.0/authorize", params=query) as r:
        assert r.status == 200
        page = await r.text()
    assert teacher(sandbox).user_principal_name in page and "login_hint=" in page

    async with http.get(
        f"{sandbox.base_url}/{sandbox.directory.tenant_id}/oauth2/v2.0/authorize",
        params={**query, "redirect_uri": "https://evil.example/cb", "login_hint": teacher(sandbox).id},
        allow_redirects=False,
    ) as r:
        assert r.status == 400
        assert (await r.json())["error"] == "invalid_request"


async def test_authorization_code_is_single_use_and_checks_pkce(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    redirect_uri = "http://127.0.0.1:3978/cb"
    query = {
        "client_id": BOT_APP_ID,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "https://graph.microsoft.com/EduRoster.ReadBasic openid",
        "login_hint": student(sandbox).user_principal_name,
        "code_challenge": "plain-verifier-value-of-enough-length-0123456789",
        "code_challenge_method": "plain",
    }
    authorize = f"{sandbox.base_url}/{sandbox.directory.tenant_id}/oauth2/v2.0/authorize"
    async with http.get(authorize, params=query, allow_redirects=False) as r:
        code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": BOT_APP_ID,
        "client_secret": BOT_APP_SECRET,
        "code_verifier": "wrong",
    }
    status, body = await post_token(http, sandbox, form)
    assert status == 400 and body["error"] == "invalid_grant"
    status, body = await post_token(http, sandbox, {**form, "code_verifier": query["code_challenge"]})
    assert status == 400 and body["error_codes"] == [70008]  # the failed attempt used the code up


# ---- development helpers -------------------------------------------------------------------------------------------


async def test_sso_token_helper_mints_what_teams_hands_a_bot(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    rosa = teacher(sandbox)
    async with http.post(f"{sandbox.base_url}/_sandbox/sso-token", json={"userId": rosa.id}) as response:
        token = (await response.json())["token"]
    claims = sandbox.authority.verify(token, audience=f"api://botid-{BOT_APP_ID}")
    assert claims["scp"] == "access_as_user" and claims["azp"] == TEAMS_CLIENT_ID
    assert claims["oid"] == rosa.id and claims["upn"] == rosa.user_principal_name and claims["name"]
    assert claims["tid"] == sandbox.directory.tenant_id

    async with http.post(f"{sandbox.base_url}/_sandbox/sso-token", json={"upn": "nobody@nowhere.example"}) as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "UserNotFound"


async def test_token_helper_gives_a_delegated_graph_token(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    pupil = student(sandbox)
    async with http.post(f"{sandbox.base_url}/_sandbox/token", json={"upn": pupil.user_principal_name}) as response:
        body = await response.json()
    principal = sandbox.authority.principal(sandbox.authority.verify(body["access_token"], audience=GRAPH_AUDIENCE))
    assert principal.user_id == pupil.id and principal.scopes == sandbox.directory.apps[BOT_APP_ID].delegated_scopes

    narrowed = {"upn": pupil.user_principal_name, "scopes": ["https://graph.microsoft.com/EduRoster.ReadBasic"]}
    async with http.post(f"{sandbox.base_url}/_sandbox/token", json=narrowed) as response:
        assert claims_of((await response.json())["access_token"])["scp"] == "EduRoster.ReadBasic"
    async with http.post(f"{sandbox.base_url}/_sandbox/token", json={"upn": "ghost@nowhere.example"}) as response:
        assert response.status == 404
    async with http.post(f"{sandbox.base_url}/_sandbox/token", data=b"not json") as response:
        assert response.status == 400
