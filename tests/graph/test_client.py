"""EducationClient against the scripted Graph: paths, query options, paging, typed results and PATCH bodies."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from graph.client import EducationClient, FeedbackPatch, PointsPatch, RubricPatch, SubmissionRef
from graph.connection import GraphHttp
from graph.errors import GraphNotFoundError
from graph.models import (
    AssignmentStatus,
    FeedbackOutcome,
    PointsOutcome,
    RubricOutcome,
    RubricSelection,
    Submission,
    SubmissionStatus,
)
from tests.graph.conftest import CountingTokens
from tests.graph.scripted import ScriptedGraph, batch_answer, graph_error, reply
from tests.graph.shapes import (
    assignment,
    collection,
    feedback_outcome,
    points_outcome,
    rubric_outcome,
    submission,
)


@pytest.fixture
def client(http: GraphHttp, tokens: CountingTokens) -> EducationClient:
    return EducationClient(http, tokens)


def query_of(path_qs: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(path_qs).query)


async def test_list_submissions_follows_every_next_link(scripted: ScriptedGraph, client: EducationClient) -> None:
    second = f"{scripted.base}/education/classes/c-1/assignments/a-1/submissions?$expand=outcomes&$skiptoken=eyJ9%3d%3d"
    third = f"{scripted.base}/education/classes/c-1/assignments/a-1/submissions?$skiptoken=page3"
    scripted.then(
        reply(200, collection([submission("s1", outcomes=[points_outcome(points=80.0)])], second)),
        reply(200, collection([submission("s2", "working", outcomes=[])], third)),
        reply(200, collection([submission("s3", "returned", outcomes=[])])),
    )
    submissions = await client.list_submissions("c-1", "a-1")
    assert [item.id for item in submissions] == ["s1", "s2", "s3"]
    assert all(isinstance(item, Submission) for item in submissions)
    first_outcomes = submissions[0].outcomes
    assert first_outcomes is not None and first_outcomes.points is not None
    assert first_outcomes.points.points is not None and first_outcomes.points.points.points == 80.0
    first = scripted.seen[0]
    assert first.path == "/v1.0/education/classes/c-1/assignments/a-1/submissions"
    assert query_of(first.path_qs)["$expand"] == ["outcomes"]
    assert "status" in query_of(first.path_qs)["$select"][0].split(",")
    # nextLinks are requested verbatim, with the Prefer header re-sent on every page.
    assert scripted.seen[1].path_qs == second.removeprefix(scripted.base.removesuffix("/v1.0"))
    assert scripted.seen[2].path_qs.endswith("$skiptoken=page3")
    assert all(seen.headers["Prefer"] == "include-unknown-enum-members" for seen in scripted.seen)


async def test_ids_are_url_encoded(scripted: ScriptedGraph, client: EducationClient) -> None:
    scripted.then(reply(200, assignment("a/b")))
    await client.get_assignment("c 1", "a/b?#")
    assert scripted.seen[0].path_qs.startswith("/v1.0/education/classes/c%201/assignments/a%2Fb%3F%23?")
    with pytest.raises(ValueError):
        await client.get_assignment("", "a")


async def test_list_assignments_in_every_status(scripted: ScriptedGraph, client: EducationClient) -> None:
    scripted.then(
        reply(200, collection([assignment("a1"), assignment("a2", "draft", None), assignment("a3", "inactive")])),
    )
    everything = await client.list_assignments("c-1")
    assert [item.status for item in everything] == [
        AssignmentStatus.ASSIGNED,
        AssignmentStatus.DRAFT,
        AssignmentStatus.INACTIVE,
    ]
    assert everything[1].max_points is None
    assert "status" in query_of(scripted.seen[0].path_qs)["$select"][0].split(",")


async def test_roster_calls(scripted: ScriptedGraph, client: EducationClient) -> None:
    teacher = {"id": "t-1", "displayName": "Rosa", "primaryRole": "teacher", "userPrincipalName": "rosa@x.test"}
    klass = {"id": "c-1", "displayName": "Biology", "classCode": "BIO", "term": {"displayName": "2026"}}
    scripted.then(
        reply(200, collection([klass])),
        reply(200, collection([klass])),
        reply(200, klass),
        reply(200, collection([teacher])),
        reply(200, collection([teacher, {"id": "s-1", "displayName": "Sam", "primaryRole": "student"}])),
    )
    assert [c.term_name for c in await client.taught_classes()] == ["2026"]
    assert [c.id for c in await client.user_taught_classes("t-1")] == ["c-1"]
    assert (await client.get_class("c-1")).class_code == "BIO"
    assert [(u.id, u.display_name) for u in await client.class_teachers("c-1")] == [("t-1", "Rosa")]
    assert [(u.id, u.display_name) for u in await client.class_members("c-1")] == [("t-1", "Rosa"), ("s-1", "Sam")]
    assert [seen.path for seen in scripted.seen] == [
        "/v1.0/education/me/taughtClasses",
        "/v1.0/education/users/t-1/taughtClasses",
        "/v1.0/education/classes/c-1",
        "/v1.0/education/classes/c-1/teachers",
        "/v1.0/education/classes/c-1/members",
    ]
    assert all("$select" in query_of(seen.path_qs) for seen in scripted.seen)


async def test_get_submission_expands_outcomes_and_resources(scripted: ScriptedGraph, client: EducationClient) -> None:
    body = submission("s1", outcomes=[feedback_outcome(text="Good")])
    body["submittedResources"] = [
        {"resource": {"@odata.type": "#microsoft.graph.educationLinkResource", "displayName": "Essay", "link": "u"}}
    ]
    scripted.then(reply(200, body))
    item = await client.get_submission(SubmissionRef("c-1", "a-1", "s1"))
    assert item.outcomes is not None and item.outcomes.feedback is not None
    assert item.submitted_resources is not None and item.submitted_resources[0].url == "u"
    assert query_of(scripted.seen[0].path_qs)["$expand"] == ["outcomes,submittedResources"]


async def test_outcomes_are_picked_by_type(scripted: ScriptedGraph, client: EducationClient) -> None:
    resource = {"@odata.type": "#microsoft.graph.educationFeedbackResourceOutcome", "id": "fr", "resourceStatus": "x"}
    unknown = {"@odata.type": "#microsoft.graph.educationFutureOutcome", "id": "u"}
    items = [feedback_outcome("f"), resource, points_outcome("p", 7.0), unknown, rubric_outcome("r", [("q", "c")])]
    scripted.then(reply(200, submission("s-1", outcomes=items)))
    outcomes = (await client.get_submission(SubmissionRef("c-1", "a-1", "s-1"), expand=("outcomes",))).outcomes
    assert outcomes is not None
    assert (outcomes.points and outcomes.points.id, outcomes.feedback and outcomes.feedback.id) == ("p", "f")
    assert outcomes.rubric is not None and outcomes.rubric.selected_levels == (RubricSelection("q", "c"),)
    assert scripted.seen[0].path == "/v1.0/education/classes/c-1/assignments/a-1/submissions/s-1"


async def test_grade_writes_send_documented_bodies(scripted: ScriptedGraph, client: EducationClient) -> None:
    # The feedback answer omits @odata.type: the type we asked for is assumed.
    answer = feedback_outcome("f-1", "Well argued")
    del answer["@odata.type"]
    scripted.then(
        batch_answer(
            lambda item: {
                "status": 200,
                "body": {
                    "1": points_outcome("p-9", 85.0),
                    "2": answer,
                    "3": rubric_outcome("r-1", [("q1", "c2")]),
                }[item["id"]],
            }
        )
    )
    ref = SubmissionRef("c-1", "a-1", "s-1")
    settled = await client.patch_outcomes_many(
        [
            PointsPatch(ref, "p-9", 85),
            FeedbackPatch(ref, "f-1", "Well argued"),
            RubricPatch(ref, "r-1", [RubricSelection("q1", "c2")]),
        ]
    )
    points, feedback, rubric = (item.unwrap() for item in settled)
    assert isinstance(points, PointsOutcome) and points.points is not None and points.points.points == 85.0
    assert isinstance(feedback, FeedbackOutcome) and feedback.feedback is not None
    assert feedback.feedback.text == "Well argued"
    assert isinstance(rubric, RubricOutcome) and rubric.selected_levels == (RubricSelection("q1", "c2"),)
    requests = scripted.seen[0].body["requests"]
    assert [(item["method"], item["url"]) for item in requests] == [
        ("PATCH", "/education/classes/c-1/assignments/a-1/submissions/s-1/outcomes/p-9"),
        ("PATCH", "/education/classes/c-1/assignments/a-1/submissions/s-1/outcomes/f-1"),
        ("PATCH", "/education/classes/c-1/assignments/a-1/submissions/s-1/outcomes/r-1"),
    ]
    assert [item["body"] for item in requests] == [
        {
            "@odata.type": "#microsoft.graph.educationPointsOutcome",
            "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": 85.0},
        },
        {
            "@odata.type": "#microsoft.graph.educationFeedbackOutcome",
            "feedback": {"text": {"content": "Well argued", "contentType": "text"}},
        },
        {
            "@odata.type": "#microsoft.graph.educationRubricOutcome",
            "rubricQualitySelectedLevels": [{"qualityId": "q1", "columnId": "c2"}],
        },
    ]
    assert all(item["headers"]["Content-Type"].startswith("application/json") for item in requests)
    assert not any(key.startswith("published") for item in requests for key in item["body"])


async def test_an_answer_of_another_outcome_type_is_refused(scripted: ScriptedGraph, client: EducationClient) -> None:
    scripted.then(batch_answer(lambda item: {"status": 200, "body": feedback_outcome("p-9", "text")}))
    settled = await client.patch_outcomes_many([PointsPatch(SubmissionRef("c-1", "a-1", "s-1"), "p-9", 5)])
    assert settled[0].error is not None and settled[0].error.code == "invalidResponse"


@pytest.mark.parametrize("points", [float("nan"), float("inf"), True])
async def test_non_finite_points_are_refused_before_sending(
    scripted: ScriptedGraph, client: EducationClient, points: float
) -> None:
    with pytest.raises(ValueError):
        await client.patch_outcomes_many([PointsPatch(SubmissionRef("c-1", "a-1", "s-1"), "p", points)])
    assert scripted.seen == []


async def test_actions_post_to_class_paths_and_tolerate_204(scripted: ScriptedGraph, client: EducationClient) -> None:
    scripted.then(
        reply(200, submission("s-1", "returned")),
        reply(204),
        reply(200, submission("s-1", "excused")),
    )
    returned = await client.act(SubmissionRef("c-1", "a-1", "s-1"), "return")
    assert returned is not None and returned.status is SubmissionStatus.RETURNED
    assert await client.act(SubmissionRef("c-1", "a-1", "s-1"), "reassign") is None
    excused = await client.act(SubmissionRef("c-1", "a-1", "s-1"), "excuse")
    assert excused is not None and excused.status is SubmissionStatus.EXCUSED
    base = "/v1.0/education/classes/c-1/assignments/a-1/submissions/s-1/"
    assert [(seen.method, seen.path) for seen in scripted.seen] == [
        ("POST", base + "return"),
        ("POST", base + "reassign"),
        ("POST", base + "excuse"),
    ]


async def test_rubric_read_through_expand(scripted: ScriptedGraph, client: EducationClient) -> None:
    rubric = {
        "id": "rb",
        "displayName": "Lab report",
        "levels": [{"levelId": "l1", "displayName": "Good", "grading": {"maxPoints": 2}}],
        "qualities": [{"qualityId": "q1", "displayName": "Method", "criteria": [{"description": {"content": "ok"}}]}],
    }
    scripted.then(reply(200, {"id": "a-1", "rubric": rubric}), reply(200, {"id": "a-2", "rubric": None}))
    found = await client.get_rubric("c-1", "a-1")
    assert found is not None and found.levels[0].points == 2.0 and found.qualities[0].display_name == "Method"
    assert await client.get_rubric("c-1", "a-2") is None
    assert scripted.seen[0].path == "/v1.0/education/classes/c-1/assignments/a-1"
    assert query_of(scripted.seen[0].path_qs) == {"$select": ["id"], "$expand": ["rubric"]}


async def test_not_found_raises_typed_error(scripted: ScriptedGraph, client: EducationClient) -> None:
    scripted.then(graph_error(404, "itemNotFound"))
    with pytest.raises(GraphNotFoundError) as caught:
        await client.get_submission(SubmissionRef("c-1", "a-1", "missing"))
    assert caught.value.code == "itemNotFound"
    assert caught.value.path == "/v1.0/education/classes/c-1/assignments/a-1/submissions/missing"


async def test_a_refused_status_filter_is_asked_again_without_it_and_filtered_here(
    scripted: ScriptedGraph, client: EducationClient
) -> None:
    refused = {"status": 400, "body": {"error": {"code": "BadRequest", "message": "Invalid filter clause"}}}
    every = collection([submission("s1"), submission("s2", "working", outcomes=[]), submission("s3", "returned")])
    scripted.then(
        batch_answer(lambda item: refused if "filter" in item["url"] else {"status": 200, "body": every}),
        batch_answer(lambda item: refused if "filter" in item["url"] else {"status": 200, "body": every}),
    )
    settled = await client.list_submissions_many([("c-1", "a-1")], status=SubmissionStatus.SUBMITTED)
    assert [s.id for s in settled[0].unwrap()] == ["s1"]
    first, second = (seen.body["requests"][0]["url"] for seen in scripted.seen)
    assert "filter" in first and "filter" not in second
