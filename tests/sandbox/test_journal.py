"""The write journal: every outcome PATCH and submission action Graph applied (directly or inside `$batch`) is
listed in order at `/_sandbox/graph/writes`; refused and faulted requests are not; the journal can be cleared."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.journal import WriteJournal
from sandbox.school import FEEDBACK_OUTCOME_ID, POINTS_OUTCOME_ID, RUBRIC_OUTCOME_ID
from tests.sandbox.conftest import DAVID, NOW, ROSA, GraphCaller

POINTS = "#microsoft.graph.educationPointsOutcome"
FEEDBACK = "#microsoft.graph.educationFeedbackOutcome"
RUBRIC = "#microsoft.graph.educationRubricOutcome"


def points_body(value: float | None) -> dict[str, Any]:
    return {"@odata.type": POINTS, "points": None if value is None else {"points": value}}


def feedback_body(text: str) -> dict[str, Any]:
    return {"@odata.type": FEEDBACK, "feedback": {"text": {"content": text, "contentType": "text"}}}


async def writes(graph: GraphCaller, query: str = "") -> list[dict[str, Any]]:
    reply = await graph.admin("GET", f"/_sandbox/graph/writes{query}")
    assert reply.status == 200
    return list(reply.body["writes"])


async def test_outcome_writes_and_actions_are_journaled_in_order_with_their_values(graph: GraphCaller) -> None:
    rosa = graph.token(ROSA)
    submission = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    path = graph.path("BIO101", "bio-cells", submission)
    assert (await graph.patch(f"{path}/outcomes/{POINTS_OUTCOME_ID}", rosa, body=points_body(7.5))).status == 200
    batch = {
        "requests": [
            {
                "id": "1",
                "method": "PATCH",
                "url": f"{path}/outcomes/{FEEDBACK_OUTCOME_ID}",
                "headers": {"Content-Type": "application/json"},
                "body": feedback_body("Well argued"),
            }
        ]
    }
    assert (await graph.post("/$batch", rosa, body=batch)).body["responses"][0]["status"] == 200
    assert (await graph.post(f"{path}/return", rosa)).status == 200
    assert (await graph.patch(f"{path}/outcomes/{POINTS_OUTCOME_ID}", rosa, body=points_body(None))).status == 200

    journal = await writes(graph)
    assert [(w["kind"], w["value"]) for w in journal] == [
        ("points", 7.5),
        ("feedback", "Well argued"),
        ("return", None),
        ("points", None),
    ]
    assert [w["seq"] for w in journal] == [1, 2, 3, 4]
    rosa_id = graph.user(ROSA).id
    first = journal[0]
    assert (first["classId"], first["assignmentId"], first["submissionId"], first["by"]) == (
        submission.class_id,
        submission.assignment_id,
        submission.id,
        rosa_id,
    )
    assert first["at"].startswith(NOW.date().isoformat())


async def test_rubric_levels_and_one_submission_filter(graph: GraphCaller) -> None:
    rosa = graph.token(ROSA)
    lab = graph.submission("BIO101", "bio-microscope", 4)
    other = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    rubric = graph.school.rubric_of(graph.assignment("BIO101", "bio-microscope"))
    assert rubric is not None
    quality, level = rubric.qualities[0].quality_id, rubric.levels[0].level_id
    body = {"@odata.type": RUBRIC, "rubricQualitySelectedLevels": [{"qualityId": quality, "columnId": level}]}
    lab_path = graph.path("BIO101", "bio-microscope", lab)
    assert (await graph.patch(f"{lab_path}/outcomes/{RUBRIC_OUTCOME_ID}", rosa, body=body)).status == 200
    other_path = graph.path("BIO101", "bio-cells", other)
    assert (await graph.patch(f"{other_path}/outcomes/{POINTS_OUTCOME_ID}", rosa, body=points_body(3))).status == 200

    only_lab = await writes(graph, f"?submissionId={lab.id.upper()}")
    assert len(only_lab) == 1 and only_lab[0]["kind"] == "rubric"
    assert [quality, level] in only_lab[0]["value"]
    later = await writes(graph, f"?after={only_lab[0]['seq']}")
    assert [(w["kind"], w["submissionId"]) for w in later] == [("points", other.id)]


async def test_refused_and_faulted_writes_are_not_journaled(graph: GraphCaller) -> None:
    submission = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    path = f"{graph.path('BIO101', 'bio-cells', submission)}/outcomes/{POINTS_OUTCOME_ID}"
    assert (await graph.patch(path, graph.token(DAVID), body=points_body(5))).status == 403  # not David's class
    assert (await graph.patch(path, graph.token(ROSA), body=points_body(-1))).status == 400
    await graph.admin("POST", "/_sandbox/graph/faults/script", {"status": 503, "method": "PATCH"})
    assert (await graph.patch(path, graph.token(ROSA), body=points_body(5))).status == 503
    assert await writes(graph) == []


async def test_the_journal_can_be_cleared_and_numbering_carries_on(graph: GraphCaller) -> None:
    submission = graph.submissions_with("BIO101", "bio-cells", "submitted")[0]
    path = f"{graph.path('BIO101', 'bio-cells', submission)}/outcomes/{POINTS_OUTCOME_ID}"
    assert (await graph.patch(path, graph.token(ROSA), body=points_body(1))).status == 200
    assert (await graph.admin("DELETE", "/_sandbox/graph/writes")).status == 204
    assert await writes(graph) == []
    assert (await graph.patch(path, graph.token(ROSA), body=points_body(2))).status == 200
    reply = await graph.admin("GET", "/_sandbox/graph/writes")
    assert [w["seq"] for w in reply.body["writes"]] == [2] and reply.body["lastSeq"] == 2
    refused = await graph.admin("GET", "/_sandbox/graph/writes?after=soon")
    assert refused.status == 400


def test_a_full_journal_drops_its_oldest_writes() -> None:
    journal = WriteJournal(capacity=2)
    for value in (1, 2, 3):
        journal.record("points", "c", "a", "s", at=NOW, by="u", value=value)
    assert [w.value for w in journal] == [2, 3] and journal.last_seq == 3
    with pytest.raises(ValueError):
        WriteJournal(capacity=0)
