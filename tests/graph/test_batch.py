"""$batch over the scripted Graph: chunking, order, throttled items retried, item errors, bulk helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest

from graph.batch import Answer, BatchRequest, run_batch
from graph.client import EducationClient, FeedbackPatch, PointsPatch, RubricPatch, SubmissionRef
from graph.connection import GraphHttp
from graph.errors import GraphError, GraphNotFoundError, GraphThrottledError, GraphUnavailableError
from graph.models import PointsOutcome, RubricSelection, SubmissionStatus
from tests.graph.conftest import CountingTokens, RecordedSleeps
from tests.graph.scripted import ScriptedGraph, batch_answer, drop, graph_error
from tests.graph.shapes import collection, feedback_outcome, points_outcome, submission

Batch = Callable[[list[BatchRequest]], Awaitable[list[Answer]]]


@pytest.fixture
def client(http: GraphHttp, tokens: CountingTokens) -> EducationClient:
    return EducationClient(http, tokens)


@pytest.fixture
def batch(http: GraphHttp, tokens: CountingTokens) -> Batch:
    return lambda requests: run_batch(http, tokens, requests)


def echo(item: Mapping[str, Any]) -> Mapping[str, Any]:
    return {"status": 200, "headers": {"Content-Type": "application/json"}, "body": {"url": item["url"]}}


def gets(count: int) -> list[BatchRequest]:
    return [BatchRequest("GET", f"/education/classes/c-{n}") for n in range(count)]


async def test_splits_into_batches_of_twenty_and_keeps_order(scripted: ScriptedGraph, batch: Batch) -> None:
    scripted.default = batch_answer(echo)  # answers come back in reverse order
    results = await batch(gets(25))
    assert [result.unwrap()["url"] for result in results] == [f"/education/classes/c-{n}" for n in range(25)]
    sizes = sorted(len(seen.body["requests"]) for seen in scripted.seen)
    assert sizes == [5, 20]
    assert all(seen.method == "POST" and seen.path == "/v1.0/$batch" for seen in scripted.seen)
    item = scripted.seen[0].body["requests"][0]
    assert item["method"] == "GET"
    assert item["headers"]["Prefer"] == "include-unknown-enum-members"


async def test_throttled_items_retried_after_longest_retry_after(
    scripted: ScriptedGraph, batch: Batch, sleeps: RecordedSleeps
) -> None:
    def first_round(item: Mapping[str, Any]) -> Mapping[str, Any]:
        if item["id"] == "2":
            return {"status": 429, "headers": {"Retry-After": "0.02"}, "body": {"error": {"code": "TooManyRequests"}}}
        if item["id"] == "4":
            return {"status": 503, "headers": {"retry-after": "0.05"}, "body": {"error": {"code": "x"}}}
        return echo(item)

    scripted.then(batch_answer(first_round), batch_answer(echo))
    results = await batch(gets(5))
    assert all(result.error is None for result in results)
    assert [result.unwrap()["url"] for result in results] == [f"/education/classes/c-{n}" for n in range(5)]
    assert sleeps == [0.05]
    assert [item["id"] for item in scripted.seen[1].body["requests"]] == ["2", "4"]


async def test_throttled_items_give_up_with_their_own_error(
    scripted: ScriptedGraph, batch: Batch, sleeps: RecordedSleeps
) -> None:
    def always_throttled(item: Mapping[str, Any]) -> Mapping[str, Any]:
        if item["id"] == "1":
            return {"status": 429, "headers": {"Retry-After": "1"}, "body": {"error": {"code": "TooManyRequests"}}}
        return echo(item)

    scripted.default = batch_answer(always_throttled)
    results = await batch(gets(3))
    assert isinstance(results[0].error, GraphThrottledError)
    assert results[0].error.retry_after == 1.0
    with pytest.raises(GraphThrottledError):
        results[0].unwrap()
    assert results[1].error is None and results[2].error is None
    assert len(scripted.seen) == 4  # max_attempts
    assert sleeps == [1.0, 1.0, 1.0]


async def test_empty_batch_sends_nothing(scripted: ScriptedGraph, batch: Batch) -> None:
    assert await batch([]) == []
    assert scripted.seen == []


async def test_missing_item_answer_is_unavailable(scripted: ScriptedGraph, batch: Batch) -> None:
    def only_first(item: Mapping[str, Any]) -> Mapping[str, Any]:
        return echo(item) if item["id"] == "1" else {"status": "garbled"}

    scripted.then(batch_answer(only_first))
    results = await batch(gets(2))
    assert results[0].error is None
    assert isinstance(results[1].error, GraphUnavailableError) and results[1].error.status is None


async def test_list_submissions_many_batches_first_pages_then_follows(
    scripted: ScriptedGraph, client: EducationClient, tokens: CountingTokens
) -> None:
    page2 = f"{scripted.base}/education/classes/c-1/assignments/a-1/submissions?$skiptoken=next"

    def first_pages(item: Mapping[str, Any]) -> Mapping[str, Any]:
        url = item["url"]
        assert "$expand=outcomes" in url
        if "/assignments/a-1/" in url:
            return {"status": 200, "body": collection([submission("s1", outcomes=[points_outcome()])], page2)}
        if "/assignments/a-2/" in url:
            return {"status": 200, "body": collection([submission("s3", "working", outcomes=[])])}
        return {"status": 404, "body": {"error": {"code": "itemNotFound"}}}

    def next_pages(item: Mapping[str, Any]) -> Mapping[str, Any]:
        assert item["url"] == "/education/classes/c-1/assignments/a-1/submissions?$skiptoken=next"
        return {"status": 200, "body": collection([submission("s2", outcomes=[])])}

    # The nextLinks of every assignment go in the next batch (relative to the version root).
    scripted.then(batch_answer(first_pages), batch_answer(next_pages))
    settled = await client.list_submissions_many([("c-1", "a-1"), ("c-1", "a-2"), ("c-1", "gone")])
    assert [item.id for item in settled[0].unwrap()] == ["s1", "s2"]
    assert [(item.id, item.status) for item in settled[1].unwrap()] == [("s3", SubmissionStatus.WORKING)]
    assert settled[2].error is not None and isinstance(settled[2].error, GraphNotFoundError)
    with pytest.raises(GraphNotFoundError):
        settled[2].unwrap()
    assert [seen.path for seen in scripted.seen] == ["/v1.0/$batch", "/v1.0/$batch"]


async def test_patch_outcomes_many(scripted: ScriptedGraph, client: EducationClient) -> None:
    ref = SubmissionRef("c-1", "a-1", "s-1")

    def answer(item: Mapping[str, Any]) -> Mapping[str, Any]:
        assert item["method"] == "PATCH"
        assert item["headers"]["Content-Type"] == "application/json"
        kind = item["body"]["@odata.type"]
        if kind.endswith("PointsOutcome"):
            points = item["body"]["points"]["points"]
            if points < 0:
                error = {"code": "badRequest", "innerError": {"code": "invalidGrading"}}
                return {"status": 400, "body": {"error": error}}
            return {"status": 200, "body": points_outcome(item["url"].rsplit("/", 1)[1], points)}
        if kind.endswith("FeedbackOutcome"):
            return {"status": 200, "body": feedback_outcome("f", item["body"]["feedback"]["text"]["content"])}
        return {"status": 404, "body": {"error": {"code": "20241"}}}

    scripted.then(batch_answer(answer))
    settled = await client.patch_outcomes_many(
        [
            PointsPatch(ref, "p", 9.5),
            FeedbackPatch(ref, "f", "Nice"),
            PointsPatch(ref, "p", -1),
            RubricPatch(ref, "missing", (RubricSelection("q", "c"),)),
        ]
    )
    points = settled[0].unwrap()
    assert isinstance(points, PointsOutcome) and points.points is not None and points.points.points == 9.5
    assert settled[1].error is None
    assert type(settled[2].error) is GraphError and settled[2].error.status == 400
    assert settled[2].error.inner_code == "invalidGrading"
    assert isinstance(settled[3].error, GraphNotFoundError) and settled[3].error.code == "20241"
    urls = [item["url"] for item in scripted.seen[0].body["requests"]]
    assert urls[0] == "/education/classes/c-1/assignments/a-1/submissions/s-1/outcomes/p"


async def test_return_many_tolerates_204_and_reports_per_item(scripted: ScriptedGraph, client: EducationClient) -> None:
    def answer(item: Mapping[str, Any]) -> Mapping[str, Any]:
        assert item["method"] == "POST" and item["url"].endswith("/return")
        if "/s-1/" in item["url"]:
            return {"status": 200, "body": submission("s-1", "returned")}
        if "/s-2/" in item["url"]:
            return {"status": 204}
        return {"status": 403, "body": {"error": {"code": "accessDenied"}}}

    scripted.then(batch_answer(answer))
    settled = await client.return_many([SubmissionRef("c-1", "a-1", f"s-{n}") for n in (1, 2, 3)])
    first = settled[0].unwrap()
    assert first is not None and first.status is SubmissionStatus.RETURNED
    assert settled[1].error is None and settled[1].unwrap() is None
    assert settled[2].error is not None and settled[2].error.status == 403


async def test_batch_of_posts_is_not_resent_after_a_drop(
    scripted: ScriptedGraph, client: EducationClient, sleeps: RecordedSleeps
) -> None:
    scripted.then(drop(), batch_answer(echo))
    settled = await client.return_many([SubmissionRef("c-1", "a-1", "s-1")])
    error = settled[0].error
    assert isinstance(error, GraphUnavailableError) and error.status is None  # caller must re-read the submission
    assert len(scripted.seen) == 1


async def test_grade_writes_are_not_resent_when_graph_may_have_run_them(
    scripted: ScriptedGraph, client: EducationClient
) -> None:
    """A lost answer or a 504 may hide a write that landed: the outbox re-reads rather than writing it twice. A 429
    or 503 means Graph did not run it, but a grade write was checked against what was just read: sent again after
    the wait, it could overwrite a co-teacher's grade saved meanwhile — so it comes back and the outbox re-checks."""
    ref = SubmissionRef("c-1", "a-1", "s-1")
    scripted.then(drop())
    settled = await client.patch_outcomes_many([PointsPatch(ref, "p", 7.0)])
    assert isinstance(settled[0].error, GraphUnavailableError) and settled[0].error.status is None
    assert len(scripted.seen) == 1

    def gateway_timeout(item: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"status": 504, "body": {"error": {"code": "GatewayTimeout"}}}

    def unavailable(item: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"status": 503, "body": {"error": {"code": "serviceNotAvailable"}}}

    def landed(item: Mapping[str, Any]) -> Mapping[str, Any]:
        return {"status": 200, "body": points_outcome("p", 7.0)}

    scripted.then(batch_answer(gateway_timeout), batch_answer(unavailable), batch_answer(landed))
    settled = await client.patch_outcomes_many([PointsPatch(ref, "p", 7.0)])
    assert isinstance(settled[0].error, GraphUnavailableError) and settled[0].error.status == 504
    settled = await client.patch_outcomes_many([PointsPatch(ref, "p", 7.0)])
    assert isinstance(settled[0].error, GraphUnavailableError) and settled[0].error.status == 503
    assert len(scripted.seen) == 3, "the 503 was not sent again"
    settled = await client.patch_outcomes_many([PointsPatch(ref, "p", 7.0)])
    assert settled[0].error is None and len(scripted.seen) == 4


async def test_batch_of_gets_is_resent_after_a_drop(scripted: ScriptedGraph, batch: Batch) -> None:
    scripted.then(drop(), batch_answer(echo))
    results = await batch(gets(2))
    assert [result.unwrap()["url"] for result in results] == ["/education/classes/c-0", "/education/classes/c-1"]
    assert len(scripted.seen) == 2


async def test_whole_batch_throttled_is_retried_once_not_twice(
    scripted: ScriptedGraph, batch: Batch, sleeps: RecordedSleeps
) -> None:
    scripted.default = graph_error(429, "TooManyRequests", retry_after="0.5")
    results = await batch(gets(2))
    assert all(isinstance(result.error, GraphThrottledError) for result in results)
    assert len(scripted.seen) == 4  # the batch request's own retries only, no extra item-level rounds
