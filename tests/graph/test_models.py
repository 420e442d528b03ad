"""graph.models: Graph JSON → frozen typed models (names, nulls, evolvable enums, timestamps, outcomes by type)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from graph.client import EducationClient, SubmissionRef
from graph.connection import GraphHttp
from graph.errors import GraphError
from graph.models import (
    Actor,
    Assignment,
    AssignmentStatus,
    EducationClass,
    EducationUser,
    Outcomes,
    Page,
    PointsGrade,
    PointsOutcome,
    Resource,
    RubricSelection,
    Submission,
    SubmissionStatus,
    format_datetime,
    parse,
    parse_datetime,
    select,
)
from tests.graph.conftest import CountingTokens
from tests.graph.scripted import ScriptedGraph, reply
from tests.graph.shapes import NOBODY, assignment, by, feedback_outcome, points_outcome, rubric_outcome, submission


def test_unknown_enum_values_read_as_unknown_future_value() -> None:
    assert parse(Submission, submission("s", status="deferred")).status is SubmissionStatus.UNKNOWN_FUTURE_VALUE
    assert parse(Submission, {"id": "s", "status": None}).status is SubmissionStatus.UNKNOWN_FUTURE_VALUE
    assert parse(Assignment, assignment("a", status="scheduled")).status is AssignmentStatus.SCHEDULED
    assert parse(Assignment, assignment("a", status="archived")).status is AssignmentStatus.UNKNOWN_FUTURE_VALUE
    assert parse(Submission, submission("s", status="excused")).status is SubmissionStatus.EXCUSED
    assert parse(Submission, {"id": "s", "status": 7}).status is SubmissionStatus.UNKNOWN_FUTURE_VALUE


def test_timestamps_with_seven_digits_read_as_aware_datetimes() -> None:
    moment = parse_datetime("2026-03-02T10:00:00.1234567Z")
    assert moment == datetime(2026, 3, 2, 10, 0, 0, 123456, tzinfo=UTC)
    assert moment is not None and moment.utcoffset() == timedelta(0)
    assert parse_datetime("2026-03-02T11:00:00+01:00") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert parse_datetime(None) is None and parse_datetime("") is None
    assert format_datetime(datetime(2026, 3, 2, 11, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))) == (
        "2026-03-02T10:00:00.000005Z"
    )
    body = {**submission("s"), "submittedDateTime": "2026-03-01T09:00:00.9999999Z", "returnedDateTime": None}
    read = parse(Submission, body)
    assert read.submitted_at == datetime(2026, 3, 1, 9, 0, 0, 999999, tzinfo=UTC) and read.returned_at is None
    with pytest.raises(ValidationError):  # a time without a zone cannot be compared with the others
        parse(Submission, {**body, "submittedDateTime": "2026-03-01T09:00:00"})


def test_identity_sets() -> None:
    def modified_by(identity: object) -> Actor | None:
        return parse(PointsOutcome, {**points_outcome("p"), "lastModifiedBy": identity}).last_modified_by

    assert modified_by(NOBODY) is None and modified_by(None) is None
    named = {"application": None, "device": None, "user": {"id": "t-1", "displayName": "Rosa"}}
    assert modified_by(named) == Actor("t-1", "Rosa")
    app = {"application": {"id": "app-1", "displayName": None}, "device": None, "user": None}
    assert modified_by(app) == Actor(None, None)  # someone, though not a user


def test_outcomes_are_read_working_and_published() -> None:
    items = [points_outcome("p", points=8.0, published=6.0), feedback_outcome("f", "Better"), rubric_outcome("r")]
    items[1]["publishedFeedback"] = {"text": {"content": "Good", "contentType": "text"}, "feedbackBy": by("t")}
    items[0]["lastModifiedBy"] = by("t")
    outcomes = parse(Outcomes, items)
    assert outcomes.points is not None and outcomes.points.last_modified_by == Actor("t")
    assert outcomes.points.points is not None and outcomes.points.points.points == 8.0
    assert outcomes.points.points.graded_at == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert outcomes.points.published_points is not None and outcomes.points.published_points.points == 6.0
    assert outcomes.feedback is not None and outcomes.feedback.feedback is not None
    assert outcomes.feedback.feedback.text == "Better"
    assert outcomes.feedback.published_feedback is not None
    assert outcomes.feedback.published_feedback.text == "Good"
    assert outcomes.rubric is not None and outcomes.rubric.selected_levels == ()
    assert parse(Outcomes, []) == Outcomes()


def test_cleared_and_empty_values_read_as_none() -> None:
    cleared = points_outcome("p")
    cleared["points"] = {"points": None, "gradedDateTime": None, "gradedBy": NOBODY}
    blank = feedback_outcome("f")
    blank["feedback"] = {"text": None, "feedbackDateTime": None, "feedbackBy": None}
    blank["publishedFeedback"] = {"text": {"content": None, "contentType": "text"}}
    rubric = rubric_outcome("r")
    rubric["publishedRubricQualitySelectedLevels"] = [{"qualityId": "q1", "columnId": None}]
    outcomes = parse(Outcomes, [cleared, blank, rubric])
    assert outcomes.points is not None and outcomes.points.points is None
    assert outcomes.feedback is not None and outcomes.feedback.feedback is None
    assert outcomes.feedback.published_feedback is None
    # Graph lists each quality of an ungraded rubric with no level: that is no grade, not a grade of "".
    assert outcomes.rubric is not None and outcomes.rubric.published_selected_levels == ()


def test_a_rubric_listing_its_qualities_without_levels_is_no_grade() -> None:
    rubric = rubric_outcome("r")
    rubric["rubricQualitySelectedLevels"] = [
        {"qualityId": "q1", "columnId": None},
        {"qualityId": "q2", "columnId": "c"},
    ]
    outcomes = parse(Outcomes, [rubric])
    assert outcomes.rubric is not None and outcomes.rubric.selected_levels == (RubricSelection("q2", "c"),)


def test_unknown_properties_are_ignored_and_missing_ones_defaulted() -> None:
    body = {"id": "c-1", "displayName": None, "mailNickname": "bio", "course": {"subject": "Biology"}}
    assert parse(EducationClass, body) == EducationClass("c-1", "")
    minimal = parse(Submission, {"id": "s"})
    assert (minimal.web_url, minimal.student_id, minimal.outcomes, minimal.submitted_resources) == (None,) * 4
    credit = parse(Assignment, {**assignment("a", max_points=None), "displayName": None, "extra": [1]})
    assert (credit.max_points, credit.is_points, credit.display_name) == (None, False, "")
    points = parse(Assignment, assignment("a", max_points=20))
    assert (points.max_points, points.is_points, points.due) == (20.0, True, datetime(2026, 3, 1, 23, 59, tzinfo=UTC))


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (Submission, {"status": "submitted"}),
        (Assignment, {"displayName": "No id"}),
        (EducationUser, {"id": None}),
        (Outcomes, [{"@odata.type": "#microsoft.graph.educationPointsOutcome", "points": None}]),
        (Page[Submission], {"value": [{"id": "s1"}, {"status": "working"}]}),
    ],
)
def test_a_missing_id_is_refused(kind: Any, body: object) -> None:
    with pytest.raises(ValidationError):
        parse(kind, body)


def test_models_are_frozen_values() -> None:
    read = parse(Submission, submission("s", outcomes=[points_outcome("p", 5.0)]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.id = "other"  # type: ignore[misc]
    assert read == parse(Submission, submission("s", outcomes=[points_outcome("p", 5.0)]))
    assert RubricSelection("q", "c") == RubricSelection(quality_id="q", column_id="c")
    built = PointsOutcome("p", last_modified_by=Actor("t"), points=PointsGrade(5.0))  # built in code: parts kept
    assert (built.last_modified_by, built.points) == (Actor("t"), PointsGrade(5.0))
    assert len({RubricSelection("q", "c"), RubricSelection("q", "c")}) == 1


def test_submitted_resources() -> None:
    def item(kind: str, **resource: str | None) -> dict[str, Any]:
        return {"id": "r", "resource": {"@odata.type": f"#microsoft.graph.education{kind}Resource", **resource}}

    body = submission("s")
    body["submittedResources"] = [
        item("Word", displayName="Essay.docx", fileUrl="https://f"),
        item("Link", displayName=None, link="https://l"),
        item("Channel", displayName="General", url="https://c"),
        {"id": "r", "resource": {"displayName": "Odd"}},
    ]
    assert parse(Submission, body).submitted_resources == (
        Resource("Essay.docx", "https://f"),
        Resource("", "https://l"),
        Resource("General", "https://c"),
        Resource("Odd", None),
    )


def test_select_lists_name_what_the_models_read() -> None:
    assert select(Submission) == (
        "id",
        "status",
        "recipient",
        "submittedDateTime",
        "returnedDateTime",
        "reassignedDateTime",
        "excusedDateTime",
        "webUrl",
    )
    assert {"grading", "dueDateTime", "assignDateTime"} <= set(select(Assignment))
    assert "maxPoints" not in select(Assignment)


async def test_a_body_of_the_wrong_shape_is_a_graph_error_without_its_values(
    scripted: ScriptedGraph, http: GraphHttp, tokens: CountingTokens
) -> None:
    body = {**submission("s-1"), "submittedDateTime": "Ada Lovelace", "outcomes": [{"@odata.type": 5}]}
    scripted.then(reply(200, body))
    with pytest.raises(GraphError) as caught:
        await EducationClient(http, tokens).get_submission(SubmissionRef("c-1", "a-1", "s-1"))
    error = caught.value
    assert (error.status, error.code) == (200, "invalidResponse")
    assert error.path == "/v1.0/education/classes/c-1/assignments/a-1/submissions/s-1"
    assert "submittedDateTime" in error.message and "Ada" not in error.message and "Ada" not in str(error)
    assert error.__cause__ is None and error.__suppress_context__
