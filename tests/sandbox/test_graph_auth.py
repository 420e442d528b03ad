"""Authorization like Graph: bearer checks (401), scopes and roles (403), class membership, student limits."""

from __future__ import annotations

import time
from functools import cache
from typing import Any

import pytest

from sandbox.directory import BOT_APP_ID, GRAPH_AUDIENCE, TENANT_ID
from sandbox.school import FEEDBACK_OUTCOME_ID, POINTS_OUTCOME_ID
from sandbox.tokens import TokenAuthority
from tests.sandbox.conftest import DAVID, ROSA, GraphCaller

POINTS_BODY = {
    "@odata.type": "#microsoft.graph.educationPointsOutcome",
    "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": 7},
}


@cache
def stranger(issuer_base: str) -> TokenAuthority:
    """Same tenant and issuer, another signing key (one key for the whole module: keys are slow to make)."""
    return TokenAuthority(TENANT_ID, issuer_base)


def bearer_cases(graph: GraphCaller) -> dict[str, str | None]:
    rosa = graph.user(ROSA)
    claims: dict[str, Any] = {"aud": GRAPH_AUDIENCE, "scp": "EduRoster.ReadBasic", "oid": rosa.id, "azp": BOT_APP_ID}
    return {
        "no header": None,
        "basic scheme": "Basic cm9zYTpwYXNzd29yZA==",
        "empty bearer": "Bearer ",
        "not a jwt": "Bearer not-a-token",
        "another key": "Bearer " + stranger(graph.authority.issuer_base).mint(claims),
        "expired": "Bearer " + graph.authority.mint(claims, lifetime_s=60, now=time.time() - 3600),
        "bot audience": "Bearer " + graph.authority.mint({**claims, "aud": f"api://botid-{BOT_APP_ID}"}),
        "other tenant": "Bearer " + graph.authority.mint({**claims, "tid": "11111111-1111-1111-1111-111111111111"}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "no header",
        "basic scheme",
        "empty bearer",
        "not a jwt",
        "another key",
        "expired",
        "bot audience",
        "other tenant",
    ],
)
async def test_bad_bearers_get_401_invalid_authentication_token(graph: GraphCaller, case: str) -> None:
    header = bearer_cases(graph)[case]
    headers = {"Authorization": header} if header is not None else {}
    reply = await graph.get("/education/classes", headers={**headers, "client-request-id": "c-1"})
    assert reply.status == 401
    assert reply.error_code == "InvalidAuthenticationToken"
    inner = reply.body["error"]["innerError"]
    assert inner["client-request-id"] == "c-1" and inner["request-id"] and inner["date"]
    assert reply.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("audience", [GRAPH_AUDIENCE, "00000003-0000-0000-c000-000000000000"])
async def test_both_graph_audience_forms_are_accepted(graph: GraphCaller, audience: str) -> None:
    reply = await graph.get("/education/me", graph.token(ROSA, aud=audience))
    assert reply.status == 200 and reply.body["userPrincipalName"] == ROSA


@pytest.mark.parametrize(
    ("grant", "method", "target", "status"),
    [
        ("scp:User.Read", "GET", "classes", 403),
        ("scp:EduRoster.ReadBasic", "GET", "classes", 200),
        ("scp:EduRoster.ReadBasic", "GET", "assignments", 403),
        ("scp:EduAssignments.ReadBasic", "GET", "submissions", 200),
        ("scp:EduAssignments.ReadBasic", "GET", "submissions?$expand=outcomes", 403),
        ("scp:EduAssignments.ReadBasic", "GET", "outcomes", 403),
        ("scp:EduAssignments.Read", "GET", "outcomes", 200),
        ("scp:EduAssignments.Read", "PATCH", "points", 403),
        ("scp:EduAssignments.ReadWriteBasic", "PATCH", "points", 403),
        ("scp:EduAssignments.ReadWrite", "PATCH", "points", 200),
        ("scp:EduAssignments.Read", "GET", "recent", 200),
        ("scp:EduAssignments.ReadBasic", "GET", "recent", 403),
        ("roles:EduRoster.Read.All", "GET", "classes", 200),
        ("roles:EduRoster.ReadBasic.All", "GET", "classes", 403),
        ("roles:EduRoster.Read.All", "GET", "assignments", 403),
        ("roles:EduAssignments.ReadWrite", "GET", "assignments", 403),
        ("roles:EduAssignments.Read.All", "GET", "outcomes", 200),
        ("roles:EduAssignments.Read.All", "GET", "recent", 200),
        ("roles:EduAssignments.ReadBasic.All", "GET", "recent", 403),
        ("roles:EduAssignments.Read.All", "PATCH", "points", 403),
        ("roles:EduAssignments.ReadWrite.All", "PATCH", "points", 200),
    ],
)
async def test_scopes_and_roles_gate_each_operation(
    graph: GraphCaller, grant: str, method: str, target: str, status: int
) -> None:
    kind, _, value = grant.partition(":")
    token = graph.token(ROSA, scopes=value) if kind == "scp" else graph.app_token(roles=[value])
    submission = graph.submission("BIO101", "bio-cells", 0)
    base = graph.path("BIO101", "bio-cells", submission)
    paths = {
        "classes": "/education/classes",
        "assignments": graph.path("BIO101") + "/assignments",
        "submissions": graph.path("BIO101", "bio-cells") + "/submissions",
        "submissions?$expand=outcomes": graph.path("BIO101", "bio-cells") + "/submissions?$expand=outcomes",
        "outcomes": f"{base}/outcomes",
        "points": f"{base}/outcomes/{POINTS_OUTCOME_ID}",
        "recent": graph.path("BIO101") + "/getRecentlyModifiedSubmissions",
    }
    reply = await graph.call(method, paths[target], token=token, body=POINTS_BODY if method == "PATCH" else None)
    assert reply.status == status, reply.body
    if status == 403:
        assert reply.error_code == "accessDenied" and "requires one of" in reply.body["error"]["message"]


async def test_a_student_reads_only_their_own_submission(graph: GraphCaller) -> None:
    token = graph.student_token("BIO101", 0)
    mine = graph.submission("BIO101", "bio-cells", 0)
    listed = await graph.get(graph.path("BIO101", "bio-cells") + "/submissions", token)
    assert [s["id"] for s in listed.body["value"]] == [mine.id]
    own = await graph.get(graph.path("BIO101", "bio-cells", mine), token)
    assert own.status == 200
    other = await graph.get(graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 1)), token)
    assert other.status == 403 and other.error_code == "accessDenied"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("PATCH", f"/outcomes/{POINTS_OUTCOME_ID}", POINTS_BODY),
        ("PATCH", f"/outcomes/{FEEDBACK_OUTCOME_ID}", {"@odata.type": "#microsoft.graph.educationFeedbackOutcome"}),
        ("POST", "/return", None),
        ("POST", "/reassign", None),
        ("POST", "/excuse", None),
    ],
)
async def test_a_student_cannot_grade_or_return(graph: GraphCaller, method: str, suffix: str, body: Any) -> None:
    token = graph.student_token("BIO101", 0, scopes="EduRoster.ReadBasic EduAssignments.ReadWrite")
    own = graph.submission("BIO101", "bio-cells", 0)
    reply = await graph.call(method, graph.path("BIO101", "bio-cells", own) + suffix, token=token, body=body)
    assert reply.status == 403 and reply.error_code == "accessDenied"


async def test_a_student_turns_in_their_own_work_but_not_someone_elses(graph: GraphCaller) -> None:
    token = graph.student_token("BIO101", 8)
    own = graph.submission("BIO101", "bio-cells", 8)  # scenario w: working
    assert own.state.status == "working"
    submitted = await graph.post(graph.path("BIO101", "bio-cells", own) + "/submit", token)
    assert submitted.status == 200 and submitted.body["status"] == "submitted"
    assert submitted.body["submittedBy"]["user"]["id"] == own.student_id
    other = graph.submissions_with("BIO101", "bio-cells", "working")[0]
    refused = await graph.post(graph.path("BIO101", "bio-cells", other) + "/submit", token)
    assert refused.status == 403


async def test_students_do_not_see_drafts_scheduled_work_or_recent_changes(graph: GraphCaller) -> None:
    token = graph.student_token("BIO101", 0)
    listed = await graph.get(graph.path("BIO101") + "/assignments", token)
    names = {a["displayName"] for a in listed.body["value"]}
    assert "Photosynthesis quiz" not in names and "Genetics project" not in names
    assert "Cell structure worksheet" in names
    draft = await graph.get(graph.path("BIO101", "bio-quiz"), token)
    assert draft.status == 404
    recent = await graph.get(graph.path("BIO101") + "/getRecentlyModifiedSubmissions", token)
    assert recent.status == 403


async def test_teachers_act_only_in_classes_they_teach(graph: GraphCaller) -> None:
    history = graph.submission("HIST9", "hist-sources", 0)
    path = graph.path("HIST9", "hist-sources", history) + f"/outcomes/{POINTS_OUTCOME_ID}"
    refused = await graph.patch(path, graph.token(ROSA), body=POINTS_BODY)
    assert refused.status == 403
    allowed = await graph.patch(path, graph.token(DAVID), body=POINTS_BODY)
    assert allowed.status == 200
    chemistry = graph.submission("CHEM201", "chem-stoich", 0)
    co_taught = graph.path("CHEM201", "chem-stoich", chemistry) + f"/outcomes/{POINTS_OUTCOME_ID}"
    for teacher in (ROSA, DAVID):
        reply = await graph.patch(co_taught, graph.token(teacher), body=POINTS_BODY)
        assert reply.status == 200 and reply.body["points"]["gradedBy"]["user"]["id"] == graph.user(teacher).id


async def test_an_application_acts_in_any_class_as_itself(graph: GraphCaller) -> None:
    submission = graph.submission("HIST9", "hist-sources", 0)
    path = graph.path("HIST9", "hist-sources", submission) + f"/outcomes/{POINTS_OUTCOME_ID}"
    reply = await graph.patch(path, graph.app_token(), body=POINTS_BODY)
    assert reply.status == 200
    expected = {"application": {"id": BOT_APP_ID, "displayName": None}, "device": None, "user": None}
    assert reply.body["lastModifiedBy"] == expected and reply.body["points"]["gradedBy"] == expected


async def test_tokens_that_name_no_known_user_or_carry_no_permission_are_refused(graph: GraphCaller) -> None:
    unknown = graph.authority.mint(
        {"aud": GRAPH_AUDIENCE, "scp": "EduRoster.ReadBasic", "oid": "0badc0de-0000-0000-0000-000000000000"}
    )
    assert (await graph.get("/education/classes", unknown)).status == 403
    bare = graph.authority.mint({"aud": GRAPH_AUDIENCE, "azp": BOT_APP_ID})
    assert (await graph.get("/education/classes", bare)).status == 403
