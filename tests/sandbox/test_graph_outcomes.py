"""Outcomes over HTTP: empty outcomes as Graph lists them, PATCH of points/feedback/rubric with Graph's checks,
feedback-resource outcomes (POST, isof filter, DELETE), and the error bodies Graph documents."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sandbox.school import FEEDBACK_OUTCOME_ID, POINTS_OUTCOME_ID, RUBRIC_OUTCOME_ID
from tests.sandbox.conftest import ROSA, GraphCaller

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
POINTS = "#microsoft.graph.educationPointsOutcome"
FEEDBACK = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC = "#microsoft.graph.educationRubricOutcome"
RESOURCE = "#microsoft.graph.educationFeedbackResourceOutcome"
ALL_NULL = {"application": None, "device": None, "user": {"id": None, "displayName": None}}


def points_body(value: Any) -> dict[str, Any]:
    return {
        "@odata.type": POINTS,
        "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": value},
    }


def lab(graph: GraphCaller, seat: int = 4) -> str:
    """A working submission of the points + rubric lab report (seat 4 never started)."""
    return graph.path("BIO101", "bio-microscope", graph.submission("BIO101", "bio-microscope", seat))


async def test_empty_outcomes_are_listed_like_graph_lists_them(graph: GraphCaller) -> None:
    assert graph.submission("BIO101", "bio-microscope", 4).state.status == "working"
    reply = await graph.get(lab(graph) + "/outcomes", graph.token(ROSA))
    assert reply.status == 200
    assert reply.body["@odata.context"].endswith(
        f"/submissions('{graph.submission('BIO101', 'bio-microscope', 4).id}')/outcomes"
    )
    feedback, points, rubric = reply.body["value"]
    assert feedback == {
        "@odata.type": FEEDBACK,
        "lastModifiedDateTime": None,
        "id": FEEDBACK_OUTCOME_ID,
        "lastModifiedBy": None,
        "feedback": None,
        "publishedFeedback": None,
    }
    assert points == {
        "@odata.type": POINTS,
        "lastModifiedDateTime": None,
        "id": POINTS_OUTCOME_ID,
        "lastModifiedBy": None,
        "points": None,
        "publishedPoints": None,
    }
    assert rubric["@odata.type"] == RUBRIC and rubric["id"] == RUBRIC_OUTCOME_ID
    assert rubric["lastModifiedBy"] == ALL_NULL and TIMESTAMP.match(rubric["lastModifiedDateTime"])
    assert len(rubric["rubricQualityFeedback"]) == 4
    assert all(q["feedback"] is None for q in rubric["rubricQualityFeedback"])
    assert all(q["columnId"] is None for q in rubric["publishedRubricQualitySelectedLevels"])


async def test_credit_assignments_have_only_feedback(graph: GraphCaller) -> None:
    path = graph.path("BIO101", "bio-ecosystem", graph.submission("BIO101", "bio-ecosystem", 3))
    reply = await graph.get(f"{path}/outcomes", graph.token(ROSA))
    assert [o["@odata.type"] for o in reply.body["value"]] == [FEEDBACK]


async def test_patch_points_fills_graded_by_and_reads_back(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = f"{lab(graph)}/outcomes/{POINTS_OUTCOME_ID}"
    reply = await graph.patch(path, token, body=points_body(85.0))
    assert reply.status == 200
    rosa = {"application": None, "device": None, "user": {"id": graph.user(ROSA).id, "displayName": None}}
    assert reply.body["@odata.type"] == POINTS and reply.body["id"] == POINTS_OUTCOME_ID
    assert reply.body["points"]["points"] == 85 and reply.body["points"]["gradedBy"] == rosa
    assert TIMESTAMP.match(reply.body["points"]["gradedDateTime"])
    assert reply.body["lastModifiedBy"] == rosa
    assert reply.body["lastModifiedDateTime"] == reply.body["points"]["gradedDateTime"]
    assert reply.body["publishedPoints"] is None and "grade" not in reply.body["points"]
    again = await graph.get(path, token)
    assert again.body["points"] == reply.body["points"]
    assert again.body["@odata.context"].endswith("/outcomes/$entity")
    beta = await graph.patch(path, token, body=points_body(12.5), version="beta")
    assert beta.body["points"]["points"] == 12.5 and beta.body["points"]["grade"] is None
    cleared = await graph.patch(path, token, body={"@odata.type": POINTS, "points": None})
    assert cleared.status == 200 and cleared.body["points"] is None


async def test_patch_feedback_and_rubric(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    feedback = await graph.patch(
        f"{lab(graph)}/outcomes/{FEEDBACK_OUTCOME_ID}",
        token,
        body={"@odata.type": FEEDBACK, "feedback": {"text": {"content": "<p>Good</p>", "contentType": "html"}}},
    )
    assert feedback.status == 200
    assert feedback.body["feedback"]["text"] == {"content": "<p>Good</p>", "contentType": "html"}
    assert feedback.body["feedback"]["feedbackBy"]["user"]["id"] == graph.user(ROSA).id
    assert TIMESTAMP.match(feedback.body["feedback"]["feedbackDateTime"])
    rubric = (await graph.get(graph.path("BIO101", "bio-microscope") + "/rubric", token)).body
    quality, level = rubric["qualities"][1]["qualityId"], rubric["levels"][0]["levelId"]
    selected = await graph.patch(
        f"{lab(graph)}/outcomes/{RUBRIC_OUTCOME_ID}",
        token,
        body={
            "@odata.type": RUBRIC,
            "rubricQualityFeedback": [{"qualityId": quality, "feedback": {"content": "Clear", "contentType": "text"}}],
            "rubricQualitySelectedLevels": [{"qualityId": quality, "columnId": level}],
        },
    )
    assert selected.status == 200
    chosen = {s["qualityId"]: s["columnId"] for s in selected.body["rubricQualitySelectedLevels"]}
    assert chosen[quality] == level and sum(1 for c in chosen.values() if c) == 1
    notes = {q["qualityId"]: q["feedback"] for q in selected.body["rubricQualityFeedback"]}
    assert notes[quality] == {"content": "Clear", "contentType": "text"}
    unknown = await graph.patch(
        f"{lab(graph)}/outcomes/{RUBRIC_OUTCOME_ID}",
        token,
        body={"@odata.type": RUBRIC, "rubricQualitySelectedLevels": [{"qualityId": "nope", "columnId": level}]},
    )
    assert unknown.status == 400


@pytest.mark.parametrize(
    ("raw_points", "message"),
    [
        ("-1", None),
        ("-0.5", None),
        ("9999999", "Points must be less than 9999999 when using PointsGradeType."),
        ("1e12", "Points must be less than 9999999 when using PointsGradeType."),
        ("NaN", None),
        ("Infinity", None),
        ("-Infinity", None),
        ('"ten"', None),
    ],
)
async def test_bad_points_are_invalid_grading(graph: GraphCaller, raw_points: str, message: str | None) -> None:
    raw = (
        '{"@odata.type":"#microsoft.graph.educationPointsOutcome","points":'
        '{"@odata.type":"#microsoft.graph.educationAssignmentPointsGrade","points":' + raw_points + "}}"
    ).encode()
    reply = await graph.patch(
        f"{lab(graph)}/outcomes/{POINTS_OUTCOME_ID}",
        graph.token(ROSA),
        raw=raw,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400
    error = reply.body["error"]
    assert (error["code"], error["message"], error["innerError"]["code"]) == (
        "badRequest",
        "Bad request.",
        "invalidGrading",
    )
    if message is not None:
        assert error["innerError"]["message"] == message
    unchanged = await graph.get(f"{lab(graph)}/outcomes/{POINTS_OUTCOME_ID}", graph.token(ROSA))
    assert unchanged.body["points"] is None


@pytest.mark.parametrize(
    ("outcome", "body", "fragment"),
    [
        (POINTS_OUTCOME_ID, {"points": {"points": 5}}, "'@odata.type' property is required"),
        (POINTS_OUTCOME_ID, {"@odata.type": FEEDBACK, "feedback": None}, "does not match"),
        (FEEDBACK_OUTCOME_ID, points_body(5), "does not match"),
        (POINTS_OUTCOME_ID, {"@odata.type": POINTS, "publishedPoints": {"points": 5}}, "read-only"),
        (FEEDBACK_OUTCOME_ID, {"@odata.type": FEEDBACK, "publishedFeedback": None}, "read-only"),
        (POINTS_OUTCOME_ID, {"@odata.type": POINTS, "lastModifiedDateTime": "2026-01-01T00:00:00Z"}, "read-only"),
        (POINTS_OUTCOME_ID, {"@odata.type": POINTS, "grade": "A"}, "does not exist"),
        (FEEDBACK_OUTCOME_ID, {"@odata.type": FEEDBACK, "feedback": {"text": {"content": 5}}}, "educationItemBody"),
        (POINTS_OUTCOME_ID, [1, 2], "JSON object"),
    ],
)
async def test_patch_bodies_graph_refuses(graph: GraphCaller, outcome: str, body: Any, fragment: str) -> None:
    reply = await graph.patch(f"{lab(graph)}/outcomes/{outcome}", graph.token(ROSA), body=body)
    assert reply.status == 400 and fragment in reply.body["error"]["message"], reply.body


async def test_a_body_that_is_not_json_is_400(graph: GraphCaller) -> None:
    reply = await graph.patch(
        f"{lab(graph)}/outcomes/{POINTS_OUTCOME_ID}",
        graph.token(ROSA),
        raw=b"{points: 5",
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400 and reply.error_code == "BadRequest"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_unknown_outcome_is_404_20241(graph: GraphCaller, method: str) -> None:
    missing = "05d0f76c-1dfa-4442-926c-1b094828b505"
    reply = await graph.call(
        method,
        f"{lab(graph)}/outcomes/{missing}",
        token=graph.token(ROSA),
        body=points_body(5) if method == "PATCH" else None,
    )
    assert reply.status == 404
    assert reply.body["error"]["code"] == "20241"
    assert reply.body["error"]["message"] == f"Entity not found. Outcome id: {missing}"


async def test_feedback_resource_outcomes_are_added_filtered_published_and_deleted(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = lab(graph)
    added = await graph.post(
        f"{path}/outcomes",
        token,
        body={
            "@odata.type": RESOURCE,
            "feedbackResource": {
                "@odata.type": "#microsoft.graph.educationWordResource",
                "displayName": "Comments.docx",
                "fileUrl": "https://contoso-high.example/drive/items/c1",
            },
        },
    )
    assert added.status == 201
    assert added.body["@odata.type"] == RESOURCE and added.body["resourceStatus"] == "notPublished"
    assert added.body["feedbackResource"]["fileUrl"].endswith("/c1")
    only = await graph.get(f"{path}/outcomes?$filter=isof('microsoft.graph.educationFeedbackResourceOutcome')", token)
    assert [o["id"] for o in only.body["value"]] == [added.body["id"]]
    await graph.post(f"{path}/return", token)
    published = await graph.get(f"{path}/outcomes/{added.body['id']}", token)
    assert published.body["resourceStatus"] == "published"
    deleted = await graph.call("DELETE", f"{path}/outcomes/{added.body['id']}", token=token)
    assert deleted.status == 204 and deleted.body is None
    gone = await graph.get(f"{path}/outcomes/{added.body['id']}", token)
    assert gone.status == 404 and gone.error_code == "20241"
    built_in = await graph.call("DELETE", f"{path}/outcomes/{POINTS_OUTCOME_ID}", token=token)
    assert built_in.status == 400
    wrong_kind = await graph.post(f"{path}/outcomes", token, body=points_body(3))
    assert wrong_kind.status == 400


async def test_students_see_only_returned_grades(graph: GraphCaller) -> None:
    graded = graph.submission("BIO101", "bio-cells", 4)  # scenario g: graded, not returned
    token = graph.token(graph.student("BIO101", 4), scopes="EduRoster.ReadBasic EduAssignments.Read")
    path = graph.path("BIO101", "bio-cells", graded)
    mine = {o["id"]: o for o in (await graph.get(f"{path}/outcomes", token)).body["value"]}
    assert mine[POINTS_OUTCOME_ID]["points"] is None and mine[FEEDBACK_OUTCOME_ID]["feedback"] is None
    teacher = {o["id"]: o for o in (await graph.get(f"{path}/outcomes", graph.token(ROSA))).body["value"]}
    assert teacher[POINTS_OUTCOME_ID]["points"] is not None
    returned = graph.submission("BIO101", "bio-cells", 6)
    theirs = await graph.get(
        graph.path("BIO101", "bio-cells", returned) + "/outcomes",
        graph.token(graph.student("BIO101", 6), scopes="EduAssignments.Read"),
    )
    points = next(o for o in theirs.body["value"] if o["id"] == POINTS_OUTCOME_ID)
    assert points["publishedPoints"] is not None and points["points"] == points["publishedPoints"]


async def test_outcome_list_query_options(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    selected = await graph.get(f"{lab(graph)}/outcomes?$select=id&$top=2", token)
    assert [set(o) for o in selected.body["value"]] == [{"@odata.type", "id"}] * 2
    assert "@odata.nextLink" in selected.body
    filtered = await graph.get(f"{lab(graph)}/outcomes?$filter=isof('microsoft.graph.educationPointsOutcome')", token)
    assert [o["id"] for o in filtered.body["value"]] == [POINTS_OUTCOME_ID]
    refused = await graph.get(f"{lab(graph)}/outcomes?$expand=points", token)
    assert refused.status == 400
