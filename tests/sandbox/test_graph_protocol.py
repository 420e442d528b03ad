"""Graph's protocol around the resources: unknown paths and methods, error bodies, request ids, timestamps,
`@odata.context` per version."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.sandbox.conftest import ROSA, GraphCaller

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
TIME_KEYS = re.compile(r"(DateTime)$")


@pytest.mark.parametrize(
    ("path", "status", "code", "fragment"),
    [
        ("/education/bogus", 400, "BadRequest", "Resource not found for the segment 'bogus'."),
        ("/nothing/here", 400, "BadRequest", "Resource not found for the segment 'nothing'."),
        ("/education/classes/{bio}/sandwiches", 400, "BadRequest", "segment 'sandwiches'"),
        ("/education/me/assignments", 404, "UnknownError", "No HTTP resource was found"),
        ("/education/classes/{bio}/assignmentCategories", 404, "UnknownError", "No HTTP resource was found"),
    ],
)
async def test_unknown_paths_answer_like_graph(
    graph: GraphCaller, path: str, status: int, code: str, fragment: str
) -> None:
    reply = await graph.get(path.format(bio=graph.school_class("BIO101").id), graph.token(ROSA))
    assert reply.status == status and reply.error_code == code
    assert fragment in reply.body["error"]["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/education/classes/{bio}"), ("PATCH", "/education/classes"), ("GET", "/$batch"), ("PUT", "/$batch")],
)
async def test_unsupported_methods_are_405(graph: GraphCaller, method: str, path: str) -> None:
    reply = await graph.call(method, path.format(bio=graph.school_class("BIO101").id), token=graph.token(ROSA), body={})
    assert reply.status == 405
    assert "does not support http method" in reply.body["error"]["message"]


async def test_unknown_assignment_and_submission_ids_are_404(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    missing = "00000000-0000-0000-0000-0000000000aa"
    assignment = await graph.get(graph.path("BIO101") + f"/assignments/{missing}", token)
    assert assignment.status == 404 and assignment.error_code == "itemNotFound"
    submission = await graph.get(graph.path("BIO101", "bio-cells") + f"/submissions/{missing}", token)
    assert submission.status == 404 and submission.error_code == "itemNotFound"
    other_class = await graph.get(
        graph.path("CHEM201") + f"/assignments/{graph.assignment('BIO101', 'bio-cells').id}", token
    )
    assert other_class.status == 404  # an assignment is only found under its own class


async def test_ids_are_case_insensitive_like_guids(graph: GraphCaller) -> None:
    path = graph.path("BIO101", "bio-cells").upper().replace("/EDUCATION/CLASSES/", "/education/classes/")
    path = path.replace("/ASSIGNMENTS/", "/assignments/")
    reply = await graph.get(path, graph.token(ROSA))
    assert reply.status == 200 and reply.body["id"] == graph.assignment("BIO101", "bio-cells").id


async def test_every_error_carries_request_ids_and_a_date(graph: GraphCaller) -> None:
    reply = await graph.get("/education/bogus", graph.token(ROSA), headers={"client-request-id": "abc-123"})
    inner = reply.body["error"]["innerError"]
    assert inner["client-request-id"] == "abc-123" and inner["request-id"] == reply.headers["request-id"]
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$", inner["date"])


async def test_successful_answers_echo_request_ids(graph: GraphCaller) -> None:
    reply = await graph.get("/education/me", graph.token(ROSA), headers={"client-request-id": "xyz"})
    assert reply.headers["client-request-id"] == "xyz" and reply.headers["request-id"]


def _walk(value: Any, key: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [pair for k, v in value.items() for pair in _walk(v, k)]
    if isinstance(value, list):
        return [pair for item in value for pair in _walk(item, key)]
    return [(key, value)]


async def test_all_timestamps_are_utc_with_z(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    items, _ = await graph.all_pages(graph.path("BIO101", "bio-microscope") + "/submissions?$expand=*", token)
    assignments, _ = await graph.all_pages(graph.path("BIO101") + "/assignments?$expand=rubric", token)
    stamps = [v for k, v in _walk([items, assignments]) if TIME_KEYS.search(k) and v is not None]
    assert len(stamps) > 100
    assert all(TIMESTAMP.match(v) for v in stamps), [v for v in stamps if not TIMESTAMP.match(v)][:3]
    assert any("." in v for v in stamps)  # fractional seconds where the moment has them


@pytest.mark.parametrize("version", ["v1.0", "beta"])
async def test_context_names_graph_for_each_version(graph: GraphCaller, version: str) -> None:
    reply = await graph.get(
        graph.path("BIO101", "bio-cells") + "/submissions?$top=1", graph.token(ROSA), version=version
    )
    assert reply.body["@odata.context"].startswith(f"https://graph.microsoft.com/{version}/$metadata#education/")
    assert reply.body["@odata.nextLink"].startswith(graph.absolute(f"/{version}/education/"))
