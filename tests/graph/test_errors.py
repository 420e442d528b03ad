"""The one error map: HTTP status + Graph error JSON → the GraphError tree; Retry-After parsing; safe messages."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from graph.errors import (
    GraphAuthError,
    GraphError,
    GraphForbiddenError,
    GraphNotFoundError,
    GraphThrottledError,
    GraphUnavailableError,
    error_from_response,
    parse_retry_after,
)


def error_body(code: str, message: str = "Something went wrong.", inner: dict[str, str] | None = None) -> bytes:
    error: dict[str, object] = {"code": code, "message": message}
    if inner is not None:
        error["innerError"] = inner
    return json.dumps({"error": error}).encode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, GraphError),
        (401, GraphAuthError),
        (403, GraphForbiddenError),
        (404, GraphNotFoundError),
        (409, GraphError),
        (412, GraphError),
        (424, GraphError),
        (429, GraphThrottledError),
        (500, GraphUnavailableError),
        (502, GraphUnavailableError),
        (503, GraphUnavailableError),
        (504, GraphUnavailableError),
        (418, GraphError),
    ],
)
def test_status_picks_the_class(status: int, expected: type[GraphError]) -> None:
    error = error_from_response(status, {}, error_body("anything"))
    assert type(error) is expected
    assert error.status == status
    assert isinstance(error, GraphError)


def test_invalid_grading_keeps_code_and_inner_code() -> None:
    body = error_body("badRequest", "Bad request.", {"code": "invalidGrading", "message": "Points must be less"})
    error = error_from_response(400, {"request-id": "r-1"}, body, method="PATCH", path="/education/x")
    assert type(error) is GraphError and error.status == 400
    assert (error.code, error.inner_code, error.request_id) == ("badRequest", "invalidGrading", "r-1")
    assert error.message == "Bad request."


def test_numeric_string_code_of_missing_outcome() -> None:
    error = error_from_response(404, {}, error_body("20241", "Entity not found. Outcome id: abc"))
    assert isinstance(error, GraphNotFoundError)
    assert error.code == "20241"
    assert error.inner_code is None


def test_class_follows_status_not_message_or_code() -> None:
    # Graph's own batch example answers 401 with code "Forbidden": the status decides.
    error = error_from_response(401, {}, error_body("Forbidden", "Access is denied, not found, throttled"))
    assert type(error) is GraphAuthError


def test_throttled_reads_fractional_retry_after_in_any_case() -> None:
    body = error_body("TooManyRequests", "Please retry again later.", {"code": "429", "request-id": "inner-id"})
    error = error_from_response(429, {"Retry-After": "2.128"}, body)
    assert isinstance(error, GraphThrottledError)
    assert error.retry_after == pytest.approx(2.128)
    assert error.request_id == "inner-id"
    assert error.inner_code == "429"
    lower = error_from_response(429, {"retry-after": "10"}, body)
    assert lower.retry_after == 10.0


def test_unavailable_carries_retry_after_and_others_do_not() -> None:
    assert error_from_response(503, {"Retry-After": "3"}, b"").retry_after == 3.0
    assert error_from_response(400, {"Retry-After": "3"}, b"").retry_after is None


def test_batch_item_body_is_already_parsed_json() -> None:
    body = {"error": {"code": "accessDenied", "message": "nope", "innerError": {"request-id": "b-1"}}}
    error = error_from_response(403, {"content-type": "application/json"}, body)
    assert isinstance(error, GraphForbiddenError)
    assert (error.code, error.request_id) == ("accessDenied", "b-1")


@pytest.mark.parametrize("body", [b"<html>Bad gateway</html>", b"", None, "not json", {"error": "flat"}, [1, 2]])
def test_bodies_that_are_not_odata_errors(body: object) -> None:
    error = error_from_response(502, {}, body)
    assert isinstance(error, GraphUnavailableError)
    assert error.code == ""
    assert error.inner_code is None


def test_header_request_id_wins_then_client_request_id() -> None:
    assert error_from_response(404, {"Request-Id": "h"}, error_body("x")).request_id == "h"
    assert error_from_response(404, {"client-request-id": "c"}, b"").request_id == "c"


def test_str_is_safe_to_log() -> None:
    body = error_body("badRequest", "Feedback 'Ada Lovelace did great' rejected", {"code": "invalidGrading"})
    error = error_from_response(400, {"request-id": "r-9"}, body, method="PATCH", path="/education/classes/c1")
    text = str(error)
    assert "Ada Lovelace" not in text
    assert "Graph 400 badRequest/invalidGrading" in text
    assert "PATCH /education/classes/c1" in text
    assert "r-9" in text
    assert "Ada Lovelace" in error.message  # kept for diagnostics, apart from str()


def test_transport_failure_has_no_status() -> None:
    error = GraphUnavailableError(None, "timeout", method="POST", path="/x/return")
    assert str(error).startswith("Graph no answer timeout")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0.01", 0.01), ("7", 7.0), (" 2.5 ", 2.5), ("-3", 0.0), ("soon", None), ("", None), (None, None), ("nan", None)],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    now = datetime(2026, 1, 5, 12, 0, 0, tzinfo=UTC)
    value = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(value, now=now.timestamp()) == pytest.approx(30.0)
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp()) == 0.0
