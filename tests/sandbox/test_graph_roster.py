"""Roster endpoints over HTTP: classes, members, teachers, users, schools, /me — shapes, visibility, query options."""

from __future__ import annotations

import pytest

from sandbox.wire import CLASS_PROPERTIES, USER_PROPERTIES
from tests.sandbox.conftest import DAVID, ROSA, GraphCaller

GRAPH_V1 = "https://graph.microsoft.com/v1.0/$metadata#"


def codes(graph: GraphCaller, items: list[dict[str, object]]) -> set[str]:
    by_id = {c.id: c.class_code for c in graph.school.directory.classes.values()}
    return {by_id[str(item["id"])] for item in items}


@pytest.mark.parametrize(
    ("caller", "path", "expected"),
    [
        ("rosa", "/education/classes", {"BIO101", "CHEM201"}),
        ("david", "/education/classes", {"CHEM201", "HIST9"}),
        ("app", "/education/classes", {"BIO101", "CHEM201", "HIST9"}),
        ("bio-student", "/education/classes", {"BIO101"}),
        ("rosa", "/education/me/taughtClasses", {"BIO101", "CHEM201"}),
        ("david", "/education/me/classes", {"CHEM201", "HIST9"}),
        ("bio-student", "/education/me/classes", {"BIO101"}),
        ("bio-student", "/education/me/taughtClasses", set()),
        ("app", "/education/users/{david}/taughtClasses", {"CHEM201", "HIST9"}),
        ("rosa", "/education/users/{rosa}/classes", {"BIO101", "CHEM201"}),
        ("rosa", "/education/schools/{school}/classes", {"BIO101", "CHEM201"}),
        ("app", "/education/schools/{school}/classes", {"BIO101", "CHEM201", "HIST9"}),
    ],
)
async def test_who_sees_which_classes(graph: GraphCaller, caller: str, path: str, expected: set[str]) -> None:
    tokens = {
        "rosa": graph.token(ROSA),
        "david": graph.token(DAVID),
        "app": graph.app_token(),
        "bio-student": graph.student_token("BIO101", 0),
    }
    school_id = next(iter(graph.school.directory.schools))
    url = path.format(david=graph.user(DAVID).id, rosa=graph.user(ROSA).id, school=school_id)
    reply = await graph.get(url, tokens[caller])
    assert reply.status == 200, reply.body
    assert codes(graph, reply.body["value"]) == expected


async def test_class_json_has_graphs_shape(graph: GraphCaller) -> None:
    biology = graph.school_class("BIO101")
    reply = await graph.get(f"/education/classes/{biology.id}", graph.token(ROSA))
    assert reply.status == 200
    assert reply.body["@odata.context"] == f"{GRAPH_V1}education/classes/$entity"
    body = {k: v for k, v in reply.body.items() if k != "@odata.context"}
    assert tuple(body) == CLASS_PROPERTIES
    assert body["displayName"] == "Biology 101" and body["classCode"] == "BIO101"
    assert body["createdBy"] == {"application": None, "device": None, "user": {"id": None, "displayName": None}}
    assert body["term"]["displayName"] == biology.term_name
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.headers["OData-Version"] == "4.0"


async def test_odata_key_syntax_addresses_the_same_class(graph: GraphCaller) -> None:
    biology = graph.school_class("BIO101")
    reply = await graph.get(f"/education/classes('{biology.id}')", graph.token(ROSA))
    assert reply.status == 200 and reply.body["id"] == biology.id


async def test_members_and_teachers_page_through_every_user(graph: GraphCaller) -> None:
    chemistry = graph.school_class("CHEM201")
    token = graph.token(DAVID)
    members, pages = await graph.all_pages(f"/education/classes/{chemistry.id}/members", token)
    assert len(pages) == 3  # 27 people at 10 a page
    assert {m["id"] for m in members} == set(chemistry.member_ids)
    assert tuple(members[0]) == USER_PROPERTIES
    teachers = await graph.get(f"/education/classes/{chemistry.id}/teachers", token)
    assert [t["userPrincipalName"] for t in teachers.body["value"]] == [ROSA, DAVID]
    assert {t["primaryRole"] for t in teachers.body["value"]} == {"teacher"}
    assert teachers.body["value"][0]["teacher"]["teacherNumber"] == "T0001"


async def test_me_needs_a_delegated_token(graph: GraphCaller) -> None:
    me = await graph.get("/education/me", graph.token(ROSA))
    assert me.status == 200
    assert me.body["@odata.context"] == f"{GRAPH_V1}education/me/$entity"
    assert me.body["userPrincipalName"] == ROSA and me.body["primaryRole"] == "teacher"
    student = await graph.get("/education/me", graph.student_token("BIO101"))
    assert student.body["primaryRole"] == "student" and student.body["student"]["studentNumber"].startswith("S")
    as_app = await graph.get("/education/me", graph.app_token())
    assert as_app.status == 400 and as_app.error_code == "BadRequest"
    assert "delegated" in as_app.body["error"]["message"]


@pytest.mark.parametrize(
    ("caller", "target", "status"),
    [("rosa", "rosa", 200), ("rosa", "chem-student", 200), ("rosa", "hist-only-student", 403), ("app", "rosa", 200)],
)
async def test_reading_a_user(graph: GraphCaller, caller: str, target: str, status: int) -> None:
    users = {
        "rosa": graph.user(ROSA),
        "chem-student": graph.student("CHEM201", 0),
        "hist-only-student": graph.student("HIST9", 24),
    }
    token = graph.token(ROSA) if caller == "rosa" else graph.app_token()
    reply = await graph.get(f"/education/users/{users[target].id}", token)
    assert reply.status == status
    if status == 200:
        assert reply.body["id"] == users[target].id


async def test_delegated_callers_list_only_their_own_classes(graph: GraphCaller) -> None:
    reply = await graph.get(f"/education/users/{graph.user(DAVID).id}/classes", graph.token(ROSA))
    assert reply.status == 403 and reply.error_code == "accessDenied"


async def test_a_class_outside_the_callers_classes_is_forbidden(graph: GraphCaller) -> None:
    history = graph.school_class("HIST9")
    for path in ("", "/members", "/teachers", "/assignments"):
        reply = await graph.get(f"/education/classes/{history.id}{path}", graph.token(ROSA))
        assert reply.status == 403 and reply.error_code == "accessDenied", path


@pytest.mark.parametrize(
    "path",
    [
        "/education/classes/00000000-0000-0000-0000-000000000000",
        "/education/users/00000000-0000-0000-0000-000000000000",
        "/education/schools/00000000-0000-0000-0000-000000000000/classes",
    ],
)
async def test_unknown_roster_ids_are_404(graph: GraphCaller, path: str) -> None:
    reply = await graph.get(path, graph.app_token())
    assert reply.status == 404 and reply.error_code == "Request_ResourceNotFound"


async def test_classes_query_options(graph: GraphCaller) -> None:
    token = graph.app_token()
    ordered = await graph.get("/education/classes?$orderby=displayName desc", token)
    assert [c["displayName"] for c in ordered.body["value"]] == ["World History 9", "Chemistry 201", "Biology 101"]
    filtered = await graph.get("/education/classes?$filter=displayName eq 'Biology 101'", token)
    assert [c["classCode"] for c in filtered.body["value"]] == ["BIO101"]
    counted = await graph.get("/education/classes?$count=true&$top=2", token)
    assert counted.body["@odata.count"] == 3 and len(counted.body["value"]) == 2
    assert "$count=true" in counted.body["@odata.nextLink"]
    selected = await graph.get("/education/classes?$select=displayName,classCode", token)
    assert selected.body["@odata.context"] == f"{GRAPH_V1}education/classes(displayName,classCode)"
    assert all(set(c) == {"id", "displayName", "classCode"} for c in selected.body["value"])
    bad_order = await graph.get("/education/classes?$orderby=description", token)
    assert bad_order.status == 400 and "displayName" in bad_order.body["error"]["message"]


async def test_search_needs_consistency_level_eventual(graph: GraphCaller) -> None:
    token = graph.app_token()
    without = await graph.get('/education/classes?$search="displayName:chem"', token)
    assert without.status == 400 and "ConsistencyLevel" in without.body["error"]["message"]
    found = await graph.get(
        '/education/classes?$search="displayName:chem"', token, headers={"ConsistencyLevel": "eventual"}
    )
    assert [c["classCode"] for c in found.body["value"]] == ["CHEM201"]


async def test_beta_serves_the_same_roster_with_beta_context(graph: GraphCaller) -> None:
    reply = await graph.get("/education/classes", graph.token(ROSA), version="beta")
    assert reply.status == 200
    assert reply.body["@odata.context"] == "https://graph.microsoft.com/beta/$metadata#education/classes"
    assert codes(graph, reply.body["value"]) == {"BIO101", "CHEM201"}
