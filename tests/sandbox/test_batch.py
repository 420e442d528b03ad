"""`$batch` over HTTP: envelope rules, per-item answers, dependsOn with 424, per-item auth, throttling and faults."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import aiohttp
import pytest

from sandbox.directory import BOT_APP_ID
from sandbox.school import FEEDBACK_OUTCOME_ID, POINTS_OUTCOME_ID, School
from tests.sandbox.conftest import ROSA, GraphCaller

JSON = {"Content-Type": "application/json"}


def by_id(reply_body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in reply_body["responses"]}


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


async def test_a_batch_answers_each_request_like_a_direct_call(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    cells = graph.path("BIO101", "bio-cells")
    requests = [
        get("1", "/education/me"),
        get("2", f"{cells}/submissions?$top=3&$select=id,status"),
        get("3", f"{graph.path('BIO101')}/assignments/00000000-0000-0000-0000-000000000000"),
        get("4", "education/classes"),  # relative without the leading slash, as Graph's own example writes it
    ]
    reply = await graph.post("/$batch", token, body={"requests": requests})
    assert reply.status == 200
    answers = by_id(reply.body)
    assert sorted(answers) == ["1", "2", "3", "4"]
    assert answers["1"]["status"] == 200 and answers["1"]["body"]["userPrincipalName"] == ROSA
    assert answers["1"]["headers"]["Content-Type"].startswith("application/json")
    direct = await graph.get(f"{cells}/submissions?$top=3&$select=id,status", token)
    assert [s["id"] for s in answers["2"]["body"]["value"]] == [s["id"] for s in direct.body["value"]]
    assert answers["2"]["body"]["@odata.nextLink"].startswith(graph.absolute("/v1.0/education/"))
    assert answers["3"]["status"] == 404 and answers["3"]["body"]["error"]["code"] == "itemNotFound"
    assert answers["4"]["status"] == 200 and len(answers["4"]["body"]["value"]) == 2


async def test_writes_in_a_batch_need_headers_and_run_with_their_body(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    submission = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 0))
    patch = {
        "id": "grade",
        "method": "PATCH",
        "url": f"{submission}/outcomes/{POINTS_OUTCOME_ID}",
        "headers": JSON,
        "body": {"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": {"points": 9}},
    }
    reply = await graph.post("/$batch", token, body={"requests": [patch]})
    assert by_id(reply.body)["grade"]["status"] == 200
    assert by_id(reply.body)["grade"]["body"]["points"]["points"] == 9
    headerless = {key: value for key, value in patch.items() if key != "headers"}
    refused = await graph.post("/$batch", token, body={"requests": [headerless]})
    assert refused.status == 400
    assert refused.body["error"]["message"] == "Write request id : grade does not contain Content-Type header or body."


@pytest.mark.parametrize(
    ("envelope", "fragment"),
    [
        ({"requests": [get(str(n), "/education/me") for n in range(21)]}, "at most 20"),
        ({"requests": [get("1", "/education/me"), get("1", "/education/classes")]}, "unique"),
        ({"requests": [{"method": "GET", "url": "/education/me"}]}, "'id'"),
        ({"requests": [{"id": "1", "url": "/education/me"}]}, "'method'"),
        ({"requests": [{"id": "1", "method": "GET"}]}, "'url'"),
        ({"requests": [get("1", "https://graph.microsoft.com/v1.0/education/me")]}, "relative"),
        ({"requests": [get("1", "/education/me", dependsOn=["9"])]}, "not in the batch"),
        ({"requests": [get("1", "/a", dependsOn=["2"]), get("2", "/b", dependsOn=["1"])]}, "cycle"),
        ({"requests": [get("1", "/education/me", headers=["Accept"])]}, "'headers'"),
        ({"requests": []}, "no requests"),
        ({"calls": []}, "'requests'"),
        ([], "'requests'"),
    ],
)
async def test_malformed_batches_are_400(graph: GraphCaller, envelope: Any, fragment: str) -> None:
    reply = await graph.post("/$batch", graph.token(ROSA), body=envelope)
    assert reply.status == 400 and reply.error_code == "BadRequest"
    assert fragment in reply.body["error"]["message"]


async def test_twenty_requests_are_fine(graph: GraphCaller) -> None:
    reply = await graph.post(
        "/$batch", graph.token(ROSA), body={"requests": [get(str(n), "/education/me") for n in range(20)]}
    )
    assert reply.status == 200 and {item["status"] for item in reply.body["responses"]} == {200}


async def test_a_body_that_is_not_json_is_400(graph: GraphCaller) -> None:
    reply = await graph.post("/$batch", graph.token(ROSA), raw=b"not json", headers=JSON)
    assert reply.status == 400 and reply.body["error"]["message"] == "Invalid batch payload format."


async def test_depends_on_runs_in_order_and_fails_dependents_with_424(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    submission = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 1))
    requests = [
        {
            "id": "3",
            "method": "POST",
            "url": f"{submission}/return",
            "dependsOn": ["2"],
        },
        {
            "id": "2",
            "method": "PATCH",
            "url": f"{submission}/outcomes/{FEEDBACK_OUTCOME_ID}",
            "headers": JSON,
            "body": {
                "@odata.type": "#microsoft.graph.educationFeedbackOutcome",
                "feedback": {"text": {"content": "ok"}},
            },
            "dependsOn": ["1"],
        },
        {
            "id": "1",
            "method": "PATCH",
            "url": f"{submission}/outcomes/{POINTS_OUTCOME_ID}",
            "headers": JSON,
            "body": {"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": {"points": 7}},
        },
    ]
    reply = await graph.post("/$batch", token, body={"requests": requests})
    assert [item["id"] for item in reply.body["responses"]] == ["1", "2", "3"]  # dependencies first
    assert [item["status"] for item in reply.body["responses"]] == [200, 200, 200]
    outcomes = (await graph.get(f"{submission}/outcomes", token)).body["value"]
    points = next(o for o in outcomes if o["id"] == POINTS_OUTCOME_ID)
    assert points["publishedPoints"]["points"] == 7  # the return ran after the grade

    failing = [
        get("a", graph.path("BIO101") + "/assignments/00000000-0000-0000-0000-000000000000"),
        get("b", "/education/me", dependsOn=["a"]),
        get("c", "/education/me", dependsOn=["b"]),
        get("d", "/education/me"),
    ]
    chained = by_id((await graph.post("/$batch", token, body={"requests": failing})).body)
    assert [chained[k]["status"] for k in "abcd"] == [404, 424, 424, 200]
    assert chained["b"]["body"]["error"]["code"] == "FailedDependency"


async def test_each_item_is_authorized_on_its_own(graph: GraphCaller) -> None:
    token = graph.student_token("BIO101", 0)
    mine = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 0))
    theirs = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 1))
    reply = await graph.post("/$batch", token, body={"requests": [get("mine", mine), get("theirs", theirs)]})
    answers = by_id(reply.body)
    assert answers["mine"]["status"] == 200 and answers["theirs"]["status"] == 403


async def test_a_batch_without_a_bearer_is_401(graph: GraphCaller) -> None:
    reply = await graph.post("/$batch", body={"requests": [get("1", "/education/me")]})
    assert reply.status == 401 and reply.error_code == "InvalidAuthenticationToken"


async def test_items_are_counted_and_throttled_one_by_one(graph: GraphCaller) -> None:
    await graph.admin("PUT", "/_sandbox/graph/faults", {"throttleLimit": 3})
    reply = await graph.post(
        "/$batch",
        graph.token(ROSA),
        body={"requests": [get(str(n), graph.path("BIO101", "bio-cells")) for n in range(5)]},
    )
    assert reply.status == 200
    statuses = sorted(item["status"] for item in reply.body["responses"])
    assert statuses == [200, 200, 200, 429, 429]
    throttled = [item for item in reply.body["responses"] if item["status"] == 429]
    for item in throttled:
        assert item["headers"]["Retry-After"] == "10"
        assert item["body"]["error"]["code"] == "TooManyRequests"
        assert item["body"]["error"]["innerError"]["code"] == "429"
    stats = (await graph.admin("GET", "/_sandbox/graph/stats")).body
    assert stats["batches"] == 1 and stats["batchItems"] == 5
    assert stats["requestsByApp"] == {BOT_APP_ID: 5} and stats["throttled"] == 2


async def test_prefer_is_read_per_item(graph: GraphCaller) -> None:
    reassigned = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 11))
    requests = [
        get("plain", reassigned),
        get("honest", reassigned, headers={"Prefer": "include-unknown-enum-members"}),
    ]
    answers = by_id((await graph.post("/$batch", graph.token(ROSA), body={"requests": requests})).body)
    assert answers["plain"]["body"]["status"] == "returned"
    assert answers["honest"]["body"]["status"] == "reassigned"
    assert answers["honest"]["headers"]["Preference-Applied"] == "include-unknown-enum-members"


async def test_beta_batches_answer_with_beta_contexts(graph: GraphCaller) -> None:
    reply = await graph.post(
        "/$batch", graph.token(ROSA), body={"requests": [get("1", "/education/classes")]}, version="beta"
    )
    assert by_id(reply.body)["1"]["body"]["@odata.context"].startswith("https://graph.microsoft.com/beta/")


async def test_scripted_faults_hit_single_items(graph: GraphCaller) -> None:
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"status": 503, "retryAfter": 2, "pathRegex": "/me$"})
    requests = [get("me", "/education/me"), get("classes", "/education/classes")]
    answers = by_id((await graph.post("/$batch", graph.token(ROSA), body={"requests": requests})).body)
    assert answers["me"]["status"] == 503 and answers["me"]["headers"]["Retry-After"] == "2"
    assert answers["me"]["body"]["error"]["code"] == "serviceNotAvailable"
    assert answers["classes"]["status"] == 200


async def test_a_scripted_drop_on_an_item_drops_the_whole_batch(graph: GraphCaller) -> None:
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"fault": "drop", "pathRegex": "/education/me$"})
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await graph.post("/$batch", graph.token(ROSA), body={"requests": [get("me", "/education/me")]})
    again = await graph.post("/$batch", graph.token(ROSA), body={"requests": [get("me", "/education/me")]})
    assert by_id(again.body)["me"]["status"] == 200


async def test_an_internal_failure_answers_graphs_500_and_spares_the_other_items(
    graph: GraphCaller, school: School
) -> None:
    def broken_clock() -> datetime:
        raise RuntimeError("the clock seam broke")

    school.clock = broken_clock  # an assignment's status needs the clock; /education/me does not
    requests = [get("me", "/education/me"), get("subs", graph.path("BIO101") + "/assignments")]
    answers = by_id((await graph.post("/$batch", graph.token(ROSA), body={"requests": requests})).body)
    assert answers["me"]["status"] == 200
    assert answers["subs"]["status"] == 500 and answers["subs"]["body"]["error"]["code"] == "generalException"
