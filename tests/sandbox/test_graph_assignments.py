"""Assignments over HTTP: shapes, masking, query options, rubric, delta, publish/activate/deactivate."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from sandbox.faults import Faults
from sandbox.school import POINTS_OUTCOME_ID, School
from sandbox.wire import ASSIGNMENT_PROPERTIES
from tests.sandbox.conftest import NOW, ROSA, GraphCaller

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?Z$")
INCLUDE_UNKNOWN = "include-unknown-enum-members"


async def test_assignment_json_has_graphs_shape(graph: GraphCaller) -> None:
    cells = graph.assignment("BIO101", "bio-cells")
    reply = await graph.get(graph.path("BIO101", "bio-cells"), graph.token(ROSA))
    assert reply.status == 200
    biology = graph.school_class("BIO101").id
    assert reply.body["@odata.context"] == (
        f"https://graph.microsoft.com/v1.0/$metadata#education/classes('{biology}')/assignments/$entity"
    )
    body = {k: v for k, v in reply.body.items() if k != "@odata.context"}
    assert tuple(body) == ASSIGNMENT_PROPERTIES
    assert body["grading"] == {"@odata.type": "#microsoft.graph.educationAssignmentPointsGradeType", "maxPoints": 10}
    assert body["assignTo"] == {"@odata.type": "#microsoft.graph.educationAssignmentClassRecipient"}
    assert body["instructions"]["contentType"] == "text" and body["status"] == "assigned"
    assert body["classId"] == biology and body["id"] == cells.id
    for name in ("dueDateTime", "assignedDateTime", "createdDateTime", "lastModifiedDateTime"):
        assert TIMESTAMP.match(body[name]), (name, body[name])
    assert body["closeDateTime"] is None and body["assignDateTime"] is None
    assert body["webUrl"].startswith("https://teams.microsoft.com/l/entity/")
    assert body["createdBy"]["user"]["id"] == graph.user(ROSA).id and body["createdBy"]["application"] is None


async def test_credit_assignments_have_null_grading(graph: GraphCaller) -> None:
    reply = await graph.get(graph.path("BIO101", "bio-ecosystem"), graph.token(ROSA))
    assert reply.body["grading"] is None


@pytest.mark.parametrize(("prefer", "shown"), [(False, "unknownFutureValue"), (True, "inactive")])
async def test_inactive_is_masked_without_the_prefer_header(graph: GraphCaller, prefer: bool, shown: str) -> None:
    reply = await graph.get(graph.path("BIO101", "bio-unit1"), graph.token(ROSA), prefer=prefer)
    assert reply.body["status"] == shown
    assert (reply.headers.get("Preference-Applied") == INCLUDE_UNKNOWN) is prefer


async def test_teachers_list_every_assignment_with_its_status(graph: GraphCaller) -> None:
    items, _ = await graph.all_pages(graph.path("BIO101") + "/assignments", graph.token(ROSA), prefer=True)
    statuses = {a["displayName"]: a["status"] for a in items}
    assert statuses == {
        "Cell structure worksheet": "assigned",
        "Microscope lab report": "assigned",
        "Ecosystem reflection": "assigned",
        "Photosynthesis quiz": "draft",
        "Genetics project": "scheduled",
        "Unit 1 review": "inactive",
    }
    scheduled = next(a for a in items if a["status"] == "scheduled")
    assert scheduled["assignDateTime"] > scheduled["createdDateTime"] and scheduled["assignedDateTime"] is None


async def test_filter_and_orderby_on_assignments(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    assigned = await graph.get(graph.path("BIO101") + "/assignments?$filter=status eq 'assigned'", token)
    assert {a["status"] for a in assigned.body["value"]} == {"assigned"} and len(assigned.body["value"]) == 3
    by_due = await graph.get(graph.path("BIO101") + "/assignments?$orderby=dueDateTime desc&$select=dueDateTime", token)
    dues = [a["dueDateTime"] for a in by_due.body["value"]]
    assert dues == sorted(dues, reverse=True) and set(by_due.body["value"][0]) == {"id", "dueDateTime"}
    refused = await graph.get(graph.path("BIO101") + "/assignments?$orderby=instructions", token)
    assert refused.status == 400 and "dueDateTime" in refused.body["error"]["message"]
    counted = await graph.get(graph.path("BIO101") + "/assignments?$count=true", token)
    assert counted.status == 400 and "'Count' is not allowed" in counted.body["error"]["message"]


async def test_expand_submissions_rubric_and_star(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = graph.path("BIO101", "bio-microscope")
    reply = await graph.get(f"{path}?$expand=submissions,rubric", token)
    assert reply.status == 200
    assert reply.body["@odata.context"].endswith("/assignments(submissions(),rubric())/$entity")
    assert len(reply.body["submissions"]) == 25 and "submissions@odata.context" in reply.body
    rubric = reply.body["rubric"]
    assert rubric["grading"]["maxPoints"] == 20 and [level["displayName"] for level in rubric["levels"]] == [
        "Excellent",
        "Proficient",
        "Developing",
    ]
    everything = await graph.get(f"{path}?$expand=*", token)
    assert {"submissions", "rubric", "resources"} <= set(everything.body)
    student = await graph.get(f"{path}?$expand=submissions", graph.student_token("BIO101", 3))
    assert [s["recipient"]["userId"] for s in student.body["submissions"]] == [graph.student("BIO101", 3).id]


@pytest.mark.parametrize("expand", ["bogus", "categories", "submissions($expand=outcomes)"])
async def test_unsupported_expands_are_400(graph: GraphCaller, expand: str) -> None:
    reply = await graph.get(graph.path("BIO101", "bio-cells") + f"?$expand={expand}", graph.token(ROSA))
    assert reply.status == 400 and reply.error_code == "BadRequest"


async def test_rubric_endpoint(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    points_rubric = await graph.get(graph.path("BIO101", "bio-microscope") + "/rubric", token)
    assert points_rubric.status == 200
    assert points_rubric.body["@odata.context"].endswith("/rubric/$entity")
    assert len(points_rubric.body["qualities"]) == 4
    quality = points_rubric.body["qualities"][0]
    assert quality["weight"] == 25 and len(quality["criteria"]) == 3
    assert quality["criteria"][0]["description"]["contentType"] == "text"
    credit_rubric = await graph.get(graph.path("CHEM201", "chem-safety") + "/rubric", token)
    assert credit_rubric.body["grading"] is None and credit_rubric.body["levels"][0]["grading"] is None
    none = await graph.get(graph.path("BIO101", "bio-cells") + "/rubric", token)
    assert none.status == 404


async def test_delta_pages_then_hands_out_a_delta_link_for_changes(graph: GraphCaller, school: School) -> None:
    token = graph.token(ROSA)
    first, pages = await graph.all_pages(graph.path("BIO101") + "/assignments/delta?$top=4", token)
    assert len(pages) == 2 and len(first) == 6
    assert pages[0].body["@odata.context"].endswith("$metadata#Collection(microsoft.graph.educationAssignment)")
    delta_link = pages[-1].body["@odata.deltaLink"]
    assert "$deltatoken=" in delta_link and delta_link.startswith(graph.absolute("/"))
    unchanged = await graph.get(delta_link, token)
    assert unchanged.body["value"] == []
    published = await graph.post(graph.path("BIO101", "bio-quiz") + "/publish", token)
    assert published.status == 200
    changed = await graph.get(delta_link, token)
    assert [a["displayName"] for a in changed.body["value"]] == ["Photosynthesis quiz"]
    refused = await graph.get(graph.path("BIO101") + "/assignments/delta?$select=id", token)
    assert refused.status == 400


async def test_publish_creates_a_working_submission_and_empty_outcomes_per_student(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    published = await graph.post(graph.path("BIO101", "bio-quiz") + "/publish", token)
    assert published.status == 200
    assert published.body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#educationAssignment"
    assert published.body["@odata.type"] == "#microsoft.graph.educationAssignment"
    assert published.body["status"] == "assigned" and published.body["assignedDateTime"] is not None
    items, _ = await graph.all_pages(graph.path("BIO101", "bio-quiz") + "/submissions?$expand=outcomes", token)
    assert len(items) == 25 and {s["status"] for s in items} == {"working"}
    assert {s["recipient"]["userId"] for s in items} == set(graph.school_class("BIO101").student_ids)
    for submission in items:
        assert submission["submittedBy"] == {
            "application": None,
            "device": None,
            "user": {"id": None, "displayName": None},
        }
        assert submission["outcomes"] == [
            {
                "@odata.type": "#microsoft.graph.educationFeedbackOutcome",
                "lastModifiedDateTime": None,
                "id": "ca05367a-b292-42d5-aff7-5d279feeace8",
                "lastModifiedBy": None,
                "feedback": None,
                "publishedFeedback": None,
            },
            {
                "@odata.type": "#microsoft.graph.educationPointsOutcome",
                "lastModifiedDateTime": None,
                "id": POINTS_OUTCOME_ID,
                "lastModifiedBy": None,
                "points": None,
                "publishedPoints": None,
            },
        ]
    again = await graph.post(graph.path("BIO101", "bio-quiz") + "/publish", token)
    assert again.status == 400
    student = graph.student_token("CHEM201")
    hidden_draft = await graph.post(graph.path("CHEM201", "chem-periodic") + "/publish", student)
    assert hidden_draft.status == 404  # students never see drafts
    not_theirs = await graph.post(graph.path("CHEM201", "chem-stoich") + "/deactivate", student)
    assert not_theirs.status == 403


async def test_publish_settles_like_graphs_background_job(graph: GraphCaller, school: School, faults: Faults) -> None:
    token = graph.token(ROSA)
    assert (await graph.admin("PUT", "/_sandbox/graph/faults", {"actionSettleMs": 60000})).status == 200
    assert faults.plan.action_settle_ms == 60000
    published = await graph.post(graph.path("BIO101", "bio-quiz") + "/publish", token)
    assert published.body["status"] == "published"
    still = await graph.get(graph.path("BIO101", "bio-quiz"), token)
    assert still.body["status"] == "published"
    start = school.now()
    school.clock = lambda: start + timedelta(minutes=2)
    settled = await graph.get(graph.path("BIO101", "bio-quiz"), token)
    assert settled.body["status"] == "assigned"


async def test_deactivate_and_activate(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = graph.path("BIO101", "bio-cells")
    off = await graph.post(f"{path}/deactivate", token, prefer=True)
    assert off.status == 200 and off.body["status"] == "inactive"
    masked = await graph.get(path, token)
    assert masked.body["status"] == "unknownFutureValue"
    on = await graph.post(f"{path}/activate", token)
    assert on.body["status"] == "assigned"
    twice = await graph.post(f"{path}/activate", token)
    assert twice.status == 400


async def test_assignment_times_are_relative_to_the_seed_now(graph: GraphCaller) -> None:
    reply = await graph.get(graph.path("BIO101", "bio-cells"), graph.token(ROSA))
    assert reply.body["dueDateTime"] == (NOW - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
