"""Fixtures for the Graph emulator tests: a seeded school served by `setup_graph` on a real aiohttp test server
(127.0.0.1), a TokenAuthority to mint Graph bearers, and a small caller that speaks Graph over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.directory import BOT_APP_ID, GRAPH_AUDIENCE, TENANT_ID, SchoolClass, User, stable_id
from sandbox.faults import FaultPlan, Faults
from sandbox.graph_api import setup_graph
from sandbox.odata import MAX_TOP
from sandbox.school import Assignment, School, Submission
from sandbox.seed import default_school
from sandbox.tokens import TokenAuthority

AppClient = TestClient[web.Request, web.Application]
NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
"""The seeded school's `now` in these tests (a Monday, on the hour)."""
TEACHER_SCOPES = "EduRoster.ReadBasic EduAssignments.ReadWrite User.Read"
STUDENT_SCOPES = "EduRoster.ReadBasic EduAssignments.ReadWriteBasic"
APP_ROLES = ("EduRoster.Read.All", "EduAssignments.ReadWrite.All")
ROSA = "rosa.martinez@contoso-high.example"
DAVID = "david.okafor@contoso-high.example"


class SleepRecorder:
    """The Faults sleep seam: records every requested delay and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(0)


class FakeMonotonic:
    """The Faults monotonic seam: time moves only when a test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str]

    @property
    def error_code(self) -> str | None:
        return self.body["error"]["code"] if isinstance(self.body, dict) and "error" in self.body else None


class GraphCaller:
    """Calls the emulator over HTTP with bearers minted by the test TokenAuthority."""

    def __init__(self, client: AppClient, authority: TokenAuthority, school: School) -> None:
        self.client = client
        self.authority = authority
        self.school = school

    # -- people and ids --------------------------------------------------------------------------------------------

    def user(self, upn: str) -> User:
        found = self.school.directory.user_by_upn(upn)
        assert found is not None, upn
        return found

    def school_class(self, code: str) -> SchoolClass:
        return next(c for c in self.school.directory.classes.values() if c.class_code == code)

    def student(self, code: str, seat: int = 0) -> User:
        return self.school.directory.users[self.school_class(code).student_ids[seat]]

    def assignment(self, code: str, key: str) -> Assignment:
        class_id = self.school_class(code).id
        return self.school.assignments[stable_id("assignment", f"{class_id}:{key}")]

    def submission(self, code: str, key: str, seat: int = 0) -> Submission:
        student_id = self.school_class(code).student_ids[seat]
        return next(s for s in self.assignment(code, key).submissions.values() if s.student_id == student_id)

    def submissions_with(self, code: str, key: str, status: str) -> list[Submission]:
        return [s for s in self.assignment(code, key).submissions.values() if s.state.status == status]

    def path(self, code: str, key: str | None = None, submission: Submission | None = None) -> str:
        """`/education/classes/{c}[/assignments/{a}[/submissions/{s}]]`."""
        text = f"/education/classes/{self.school_class(code).id}"
        if key is not None:
            text += f"/assignments/{self.assignment(code, key).id}"
        if submission is not None:
            text += f"/submissions/{submission.id}"
        return text

    # -- tokens ----------------------------------------------------------------------------------------------------

    def token(self, who: str | User, scopes: str = TEACHER_SCOPES, **claims: Any) -> str:
        """A delegated Graph token for a seeded user (teachers default to the bot's teacher scopes)."""
        user = self.user(who) if isinstance(who, str) else who
        body = {
            "aud": GRAPH_AUDIENCE,
            "scp": scopes,
            "oid": user.id,
            "upn": user.user_principal_name,
            "name": user.display_name,
            "azp": BOT_APP_ID,
        }
        body.update(claims)
        return self.authority.mint(body)

    def student_token(self, code: str, seat: int = 0, scopes: str = STUDENT_SCOPES) -> str:
        return self.token(self.student(code, seat), scopes)

    def app_token(self, roles: Iterable[str] = APP_ROLES, app_id: str = BOT_APP_ID, **claims: Any) -> str:
        body: dict[str, Any] = {
            "aud": "00000003-0000-0000-c000-000000000000",
            "roles": list(roles),
            "azp": app_id,
            "appid": app_id,
            "oid": stable_id("service-principal", app_id),
        }
        body.update(claims)
        return self.authority.mint(body)

    # -- HTTP ------------------------------------------------------------------------------------------------------

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        prefer: bool = False,
        headers: Mapping[str, str] | None = None,
        version: str = "v1.0",
    ) -> Reply:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        if prefer:
            sent["Prefer"] = "include-unknown-enum-members"
        data: bytes | None = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if path.startswith("http"):
            # An absolute link (a nextLink) is followed verbatim, the way Graph clients do.
            request = self.client.session.request(method, path, data=data, headers=sent)
        else:
            request = self.client.request(method, f"/{version}{path}", data=data, headers=sent)
        async with request as response:
            text = await response.read()
            parsed = json.loads(text) if text else None
            return Reply(response.status, parsed, dict(response.headers))

    async def admin(self, method: str, path: str, body: Any = None) -> Reply:
        """Call a `/_sandbox/graph/...` admin endpoint (no Graph version prefix, no bearer)."""
        data = json.dumps(body).encode() if body is not None else None
        async with self.client.request(method, path, data=data) as response:
            text = await response.read()
            return Reply(response.status, json.loads(text) if text else None, dict(response.headers))

    async def get(self, path: str, token: str | None = None, **kwargs: Any) -> Reply:
        return await self.call("GET", path, token=token, **kwargs)

    async def post(self, path: str, token: str | None = None, **kwargs: Any) -> Reply:
        return await self.call("POST", path, token=token, **kwargs)

    async def patch(self, path: str, token: str | None = None, **kwargs: Any) -> Reply:
        return await self.call("PATCH", path, token=token, **kwargs)

    async def all_pages(self, path: str, token: str, **kwargs: Any) -> tuple[list[Any], list[Reply]]:
        """Follow every @odata.nextLink verbatim (absolute URLs, resending headers); all items and every page."""
        pages = [await self.get(path, token, **kwargs)]
        while pages[-1].status == 200 and "@odata.nextLink" in pages[-1].body:
            next_link = pages[-1].body["@odata.nextLink"]
            assert next_link.startswith(str(self.client.make_url("/")).rstrip("/")), next_link
            pages.append(await self.get(next_link, token, **kwargs))
        items = [item for page in pages if page.status == 200 for item in page.body["value"]]
        return items, pages

    def absolute(self, path: str) -> str:
        return str(self.client.make_url(path))


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def authority(signing_key: rsa.RSAPrivateKey) -> TokenAuthority:
    return TokenAuthority(TENANT_ID, f"https://127.0.0.1:1/{TENANT_ID}", key=signing_key)


@pytest.fixture
def school() -> School:
    return default_school(now=NOW)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def monotonic() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def faults(sleeps: SleepRecorder, monotonic: FakeMonotonic) -> Faults:
    return Faults(FaultPlan(), monotonic=monotonic, sleep=sleeps)


@pytest.fixture
def page_size() -> int:
    return 10


@pytest.fixture
def max_top() -> int:
    return MAX_TOP


@pytest.fixture
def graph_app(
    school: School, authority: TokenAuthority, faults: Faults, page_size: int, max_top: int
) -> web.Application:
    app = web.Application()
    setup_graph(app, school, authority, faults, page_size=page_size, max_top=max_top)
    return app


@pytest.fixture
async def graph(
    aiohttp_client: Callable[[web.Application], Awaitable[AppClient]],
    graph_app: web.Application,
    authority: TokenAuthority,
    school: School,
) -> GraphCaller:
    client = await aiohttp_client(graph_app)
    return GraphCaller(client, authority, school)
