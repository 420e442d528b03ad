"""Submissions over HTTP: shapes, enum masking, paging, query options, the action table, publishing of grades,
settling, and getRecentlyModifiedSubmissions."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.school import (
    FEEDBACK_OUTCOME_ID,
    POINTS_OUTCOME_ID,
    RUBRIC_OUTCOME_ID,
    Actor,
    Resource,
    RubricOutcome,
    School,
)
from sandbox.wire import SUBMISSION_PROPERTIES
from tests.sandbox.conftest import DAVID, ROSA, GraphCaller

# Seats of "Cell structure worksheet" (profile sslsglrgwrbaxsuslgrwsslrw) by their seeded status.
SEAT = {"working": 8, "submitted": 0, "late": 2, "graded": 4, "returned": 6, "resubmitted": 10, "reassigned": 11}
SEAT["excused"] = 12
TRANSITIONS = {
    ("working", "submit"): "submitted",
    ("working", "return"): "returned",
    ("working", "reassign"): "reassigned",
    ("working", "excuse"): "excused",
    ("submitted", "unsubmit"): "working",
    ("submitted", "return"): "returned",
    ("submitted", "reassign"): "reassigned",
    ("submitted", "excuse"): "excused",
    ("returned", "submit"): "submitted",
    ("returned", "return"): "returned",
    ("returned", "reassign"): "reassigned",
    ("returned", "excuse"): "excused",
    ("reassigned", "submit"): "submitted",
    ("reassigned", "return"): "returned",
    ("reassigned", "reassign"): "reassigned",
    ("reassigned", "excuse"): "excused",
    ("excused", "submit"): "submitted",
    ("excused", "return"): "returned",
    ("excused", "reassign"): "reassigned",
}
POINTS_PATCH = {
    "@odata.type": "#microsoft.graph.educationPointsOutcome",
    "points": {"@odata.type": "#microsoft.graph.educationAssignmentPointsGrade", "points": 8.5},
}
FEEDBACK_PATCH = {
    "@odata.type": "#microsoft.graph.educationFeedbackOutcome",
    "feedback": {"text": {"content": "Nice diagrams.", "contentType": "text"}},
}


def cells(graph: GraphCaller, kind: str) -> str:
    return graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", SEAT[kind]))


async def test_submission_json_has_graphs_shape(graph: GraphCaller) -> None:
    submission = graph.submission("BIO101", "bio-cells", SEAT["submitted"])
    reply = await graph.get(cells(graph, "submitted"), graph.token(ROSA))
    assert reply.status == 200
    biology, assignment = graph.school_class("BIO101").id, graph.assignment("BIO101", "bio-cells").id
    assert reply.body["@odata.context"] == (
        "https://graph.microsoft.com/v1.0/$metadata#education/classes"
        f"('{biology}')/assignments('{assignment}')/submissions/$entity"
    )
    body = {k: v for k, v in reply.body.items() if k != "@odata.context"}
    assert tuple(body) == SUBMISSION_PROPERTIES
    assert body["status"] == "submitted" and body["assignmentId"] == assignment
    assert body["recipient"] == {
        "@odata.type": "#microsoft.graph.educationSubmissionIndividualRecipient",
        "userId": submission.student_id,
    }
    assert body["submittedBy"] == {
        "application": None,
        "device": None,
        "user": {"id": submission.student_id, "displayName": None},
    }
    assert body["returnedBy"] == {"application": None, "device": None, "user": {"id": None, "displayName": None}}
    assert body["returnedDateTime"] is None and body["submittedDateTime"].endswith("Z")
    assert "outcomes" not in body  # navigation properties only when expanded


@pytest.mark.parametrize("version", ["v1.0", "beta"])
@pytest.mark.parametrize("kind", ["reassigned", "excused"])
async def test_reassigned_and_excused_are_masked_as_returned_without_prefer(
    graph: GraphCaller, kind: str, version: str
) -> None:
    token = graph.token(ROSA)
    masked = await graph.get(cells(graph, kind), token, version=version)
    assert masked.body["status"] == "returned" and "Preference-Applied" not in masked.headers
    when = "reassignedDateTime" if kind == "reassigned" else "excusedDateTime"
    who = "reassignedBy" if kind == "reassigned" else "excusedBy"
    assert masked.body["returnedDateTime"] == masked.body[when] is not None
    assert masked.body["returnedBy"] == masked.body[who]
    honest = await graph.get(cells(graph, kind), token, prefer=True, version=version)
    assert honest.body["status"] == kind
    assert honest.headers["Preference-Applied"] == "include-unknown-enum-members"


async def test_prefer_may_be_one_of_several_preferences(graph: GraphCaller) -> None:
    reply = await graph.get(
        cells(graph, "reassigned"),
        graph.token(ROSA),
        headers={"Prefer": "odata.maxpagesize=5, include-unknown-enum-members"},
    )
    assert reply.body["status"] == "reassigned"


async def test_paging_follows_next_links_to_the_end(graph: GraphCaller) -> None:
    path = graph.path("BIO101", "bio-cells") + "/submissions?$expand=outcomes&$select=id,status"
    items, pages = await graph.all_pages(path, graph.token(ROSA))
    assert [len(p.body["value"]) for p in pages] == [10, 10, 5]
    assert {s["id"] for s in items} == set(graph.assignment("BIO101", "bio-cells").submissions)
    first_link = urlsplit(pages[0].body["@odata.nextLink"])
    assert f"{first_link.scheme}://{first_link.netloc}" == graph.absolute("/").rstrip("/")
    query = parse_qs(first_link.query)
    assert query["$expand"] == ["outcomes"] and query["$select"] == ["id,status"] and "$skiptoken" in query
    assert all(set(s) == {"id", "status", "outcomes"} for s in items)
    assert "@odata.nextLink" not in pages[-1].body


@pytest.mark.parametrize(("top", "sizes"), [(4, [4, 4, 4, 4, 4, 4, 1]), (10, [10, 10, 5]), (25, [25]), (999, [25])])
async def test_top_sets_the_page_size(graph: GraphCaller, top: int, sizes: list[int]) -> None:
    path = graph.path("BIO101", "bio-cells") + f"/submissions?$top={top}"
    items, pages = await graph.all_pages(path, graph.token(ROSA))
    assert [len(p.body["value"]) for p in pages] == sizes and len({s["id"] for s in items}) == 25


@pytest.mark.parametrize("max_top", [12])
async def test_top_above_the_maximum_is_clamped_to_it(graph: GraphCaller) -> None:
    path = graph.path("BIO101", "bio-cells") + "/submissions?$top=100"
    items, pages = await graph.all_pages(path, graph.token(ROSA))
    assert [len(p.body["value"]) for p in pages] == [12, 12, 1] and len({s["id"] for s in items}) == 25


async def test_headers_are_not_carried_by_next_links(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    first = await graph.get(graph.path("BIO101", "bio-cells") + "/submissions", token, prefer=True)
    assert first.headers["Preference-Applied"] == "include-unknown-enum-members"
    next_link = first.body["@odata.nextLink"]
    assert "include-unknown" not in next_link
    without = await graph.get(next_link, token)  # seats 10-19: reassigned and excused ones, masked
    assert "Preference-Applied" not in without.headers
    assert {s["status"] for s in without.body["value"]} == {"working", "submitted", "returned"}
    resent = await graph.get(next_link, token, prefer=True)
    assert {"reassigned", "excused"} <= {s["status"] for s in resent.body["value"]}


@pytest.mark.parametrize(
    "query",
    [
        "$skiptoken=not-base64!",
        "$skiptoken=eyJJbm5lclNraXBUb2tlbiI6ImFiYyJ9",
        "$skip=10",
        '$search="abc"',
        "$count=true",
        "$filter=status eq",
        "$filter=status",
        "$filter=nosuchproperty eq 'x'",
        "$filter=startswith(status,'w')",
        "$orderby=lastModifiedDateTime",
        "$select=nosuchproperty",
        "$top=-1",
        "$top=ten",
        "$unknown=1",
        "$top=1&$top=2",
    ],
)
async def test_unsupported_or_broken_query_options_are_400(graph: GraphCaller, query: str) -> None:
    reply = await graph.get(graph.path("BIO101", "bio-cells") + f"/submissions?{query}", graph.token(ROSA))
    assert reply.status == 400, reply.body
    assert reply.error_code == "BadRequest" and reply.body["error"]["message"]


async def test_a_tampered_or_reused_skiptoken_is_refused(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    first = await graph.get(graph.path("BIO101", "bio-cells") + "/submissions?$top=5", token)
    next_link = first.body["@odata.nextLink"]
    skiptoken = parse_qs(urlsplit(next_link).query)["$skiptoken"][0]
    other_query = await graph.get(
        graph.path("BIO101", "bio-cells") + f"/submissions?$top=6&$skiptoken={skiptoken}", token
    )
    assert other_query.status == 400
    other_path = await graph.get(
        graph.path("BIO101", "bio-ecosystem") + f"/submissions?$top=5&$skiptoken={skiptoken}", token
    )
    assert other_path.status == 400
    flipped = skiptoken[:-6] + ("A" if skiptoken[-6] != "A" else "B") + skiptoken[-5:]
    tampered = await graph.get(next_link.replace(skiptoken.replace("=", "%3D"), flipped.replace("=", "%3D")), token)
    assert tampered.status == 400


async def test_filter_select_and_orderby_on_submissions(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    base = graph.path("BIO101", "bio-cells") + "/submissions"
    submitted, _ = await graph.all_pages(f"{base}?$filter=status eq 'submitted'", token)
    expected = {s.id for s in graph.submissions_with("BIO101", "bio-cells", "submitted")}
    assert {s["id"] for s in submitted} == expected and len(expected) == 15
    student = graph.student("BIO101", SEAT["late"]).id
    one = await graph.get(f"{base}?$filter=status eq 'submitted' and recipient/userId eq '{student}'", token)
    assert [s["recipient"]["userId"] for s in one.body["value"]] == [student]
    selected = await graph.get(f"{base}?$select=status,submittedDateTime&$top=3", token)
    assert selected.body["@odata.context"].endswith("/submissions(status,submittedDateTime)")
    assert all(set(s) == {"id", "status", "submittedDateTime"} for s in selected.body["value"])
    ordered, _ = await graph.all_pages(f"{base}?$orderby=submittedDateTime desc", token)
    times = [s["submittedDateTime"] for s in ordered if s["submittedDateTime"]]
    assert times == sorted(times, reverse=True) and ordered[-1]["submittedDateTime"] is None


async def test_expand_everything_on_one_submission(graph: GraphCaller) -> None:
    path = cells(graph, "graded")
    reply = await graph.get(f"{path}?$expand=*", graph.token(ROSA))
    assert reply.body["@odata.context"].endswith("/submissions(outcomes(),resources(),submittedResources())/$entity")
    for name in ("outcomes", "resources", "submittedResources"):
        assert reply.body[f"{name}@odata.context"].endswith(f"/{name}")
    kinds = {o["@odata.type"]: o for o in reply.body["outcomes"]}
    points = kinds["#microsoft.graph.educationPointsOutcome"]["points"]
    assert points["points"] > 0 and points["gradedBy"]["user"]["id"] == graph.user(ROSA).id
    assert kinds["#microsoft.graph.educationPointsOutcome"]["publishedPoints"] is None
    word = reply.body["submittedResources"][0]["resource"]
    assert word["@odata.type"] == "#microsoft.graph.educationWordResource" and word["fileUrl"].startswith("https://")
    assert word["displayName"].endswith(".docx")


async def test_submitted_resources_endpoints(graph: GraphCaller) -> None:
    submission = graph.submission("BIO101", "bio-microscope", 0)  # word file and link
    path = graph.path("BIO101", "bio-microscope", submission)
    reply = await graph.get(f"{path}/submittedResources", graph.token(ROSA))
    types = [r["resource"]["@odata.type"] for r in reply.body["value"]]
    assert types == ["#microsoft.graph.educationWordResource", "#microsoft.graph.educationLinkResource"]
    assert reply.body["value"][1]["resource"]["link"].startswith("https://")
    working = await graph.get(f"{path}/resources", graph.token(ROSA))
    assert [r["id"] for r in working.body["value"]] == [r["id"] for r in reply.body["value"]]


@pytest.mark.parametrize("start", ["working", "submitted", "returned", "reassigned", "excused"])
@pytest.mark.parametrize("action", ["submit", "unsubmit", "return", "reassign", "excuse"])
async def test_the_transition_table_over_http(graph: GraphCaller, start: str, action: str) -> None:
    reply = await graph.post(cells(graph, start) + f"/{action}", graph.token(ROSA), prefer=True)
    expected = TRANSITIONS.get((start, action))
    if expected is None:
        assert reply.status == 400 and reply.error_code == "BadRequest"
        return
    assert reply.status == 200, reply.body
    assert reply.body["@odata.context"] == "https://graph.microsoft.com/v1.0/$metadata#educationSubmission"
    assert reply.body["@odata.type"] == "#microsoft.graph.educationSubmission"
    assert reply.body["status"] == expected
    after = await graph.get(cells(graph, start), graph.token(ROSA), prefer=True)
    assert after.body["status"] == expected


async def test_submit_copies_resources_and_unsubmit_goes_back_to_working(graph: GraphCaller, school: School) -> None:
    submission = graph.submission("BIO101", "bio-cells", SEAT["working"])
    student = graph.student("BIO101", SEAT["working"])
    url = "https://contoso-high.example/drive/items/w1"
    work = Resource("word", "My worksheet.docx", url, Actor.user(student.id), school.now())
    school.add_submission_resource(submission.class_id, submission.assignment_id, submission.id, work)
    token = graph.student_token("BIO101", SEAT["working"])
    path = cells(graph, "working")
    submitted = await graph.post(f"{path}/submit", token)
    assert submitted.body["status"] == "submitted" and submitted.body["submittedDateTime"] is not None
    turned_in = await graph.get(f"{path}/submittedResources", token)
    assert [r["resource"]["displayName"] for r in turned_in.body["value"]] == ["My worksheet.docx"]
    undone = await graph.post(f"{path}/unsubmit", token)
    assert undone.body["status"] == "working" and undone.body["unsubmittedBy"]["user"]["id"] == student.id


async def test_return_copies_points_and_feedback_into_the_published_ones(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = cells(graph, "submitted")
    graded = await graph.patch(f"{path}/outcomes/{POINTS_OUTCOME_ID}", token, body=POINTS_PATCH)
    await graph.patch(f"{path}/outcomes/{FEEDBACK_OUTCOME_ID}", token, body=FEEDBACK_PATCH)
    student = graph.student_token("BIO101", SEAT["submitted"], scopes="EduRoster.ReadBasic EduAssignments.ReadWrite")
    before = await graph.get(f"{path}/outcomes", student)
    student_points = next(o for o in before.body["value"] if o["id"] == POINTS_OUTCOME_ID)
    assert student_points["points"] is None and student_points["publishedPoints"] is None  # not returned yet
    returned = await graph.post(f"{path}/return", token)
    assert returned.body["status"] == "returned"
    assert returned.body["returnedBy"]["user"]["id"] == graph.user(ROSA).id and returned.body["returnedDateTime"]
    outcomes = (await graph.get(f"{path}/outcomes", token)).body["value"]
    points = next(o for o in outcomes if o["id"] == POINTS_OUTCOME_ID)
    feedback = next(o for o in outcomes if o["id"] == FEEDBACK_OUTCOME_ID)
    assert points["publishedPoints"] == points["points"] == graded.body["points"]
    assert points["publishedPoints"]["points"] == 8.5
    assert feedback["publishedFeedback"] == feedback["feedback"]
    assert feedback["publishedFeedback"]["text"]["content"] == "Nice diagrams."
    after = await graph.get(f"{path}/outcomes", student)
    seen = next(o for o in after.body["value"] if o["id"] == POINTS_OUTCOME_ID)
    assert seen["publishedPoints"]["points"] == 8.5


async def test_reassign_answers_like_graphs_examples(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    masked = await graph.post(cells(graph, "graded") + "/reassign", token)
    assert masked.body["status"] == "returned"
    assert masked.body["returnedDateTime"] == masked.body["reassignedDateTime"] is not None
    other_graded = graph.path("BIO101", "bio-cells", graph.submission("BIO101", "bio-cells", 7))
    honest = await graph.post(f"{other_graded}/reassign", token, prefer=True)
    assert honest.body["status"] == "reassigned" and honest.headers["Preference-Applied"]


async def test_excuse_deletes_feedback_and_rubric_selections(graph: GraphCaller) -> None:
    graded = next(
        s
        for s in graph.submissions_with("BIO101", "bio-microscope", "submitted")
        for outcome in s.outcomes_of(RubricOutcome)
        if any(level.column_id for level in outcome.selected_levels)
    )
    token = graph.token(ROSA)
    path = graph.path("BIO101", "bio-microscope", graded)
    before = {o["id"]: o for o in (await graph.get(f"{path}/outcomes", token)).body["value"]}
    assert before[FEEDBACK_OUTCOME_ID]["feedback"] is not None
    assert any(s["columnId"] for s in before[RUBRIC_OUTCOME_ID]["rubricQualitySelectedLevels"])
    excused = await graph.post(f"{path}/excuse", token, prefer=True)
    assert excused.body["status"] == "excused" and excused.body["excusedBy"]["user"]["id"] == graph.user(ROSA).id
    after = {o["id"]: o for o in (await graph.get(f"{path}/outcomes", token)).body["value"]}
    assert after[FEEDBACK_OUTCOME_ID]["feedback"] is None
    assert all(s["columnId"] is None for s in after[RUBRIC_OUTCOME_ID]["rubricQualitySelectedLevels"])
    assert all(f["feedback"] is None for f in after[RUBRIC_OUTCOME_ID]["rubricQualityFeedback"])


async def test_actions_settle_after_the_configured_delay(graph: GraphCaller, school: School) -> None:
    assert (await graph.admin("PUT", "/_sandbox/graph/faults", {"actionSettleMs": 5000})).status == 200
    token = graph.token(ROSA)
    path = cells(graph, "submitted")
    answer = await graph.post(f"{path}/return", token)
    assert answer.body["status"] == "returned"
    stale = await graph.get(path, token)
    assert stale.body["status"] == "submitted"  # Graph runs the action in the background: clients must confirm
    start = school.now()
    school.clock = lambda: start + timedelta(seconds=6)
    settled = await graph.get(path, token)
    assert settled.body["status"] == "returned"


async def test_every_change_updates_last_modified(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    path = cells(graph, "submitted")
    stamps = [(await graph.get(path, token)).body["lastModifiedDateTime"]]
    await graph.patch(f"{path}/outcomes/{POINTS_OUTCOME_ID}", token, body=POINTS_PATCH)
    stamps.append((await graph.get(path, token)).body["lastModifiedDateTime"])
    await graph.post(f"{path}/return", token)
    after = (await graph.get(path, token)).body
    stamps.append(after["lastModifiedDateTime"])
    assert stamps[0] < stamps[1] < stamps[2]
    assert after["lastModifiedBy"]["user"]["id"] == graph.user(ROSA).id
    recent = await graph.get(graph.path("BIO101") + "/getRecentlyModifiedSubmissions?$top=1", token)
    assert recent.body["value"][0]["id"] == graph.submission("BIO101", "bio-cells", SEAT["submitted"]).id


async def test_recently_modified_submissions_cover_seven_days_newest_first(graph: GraphCaller, school: School) -> None:
    token = graph.token(DAVID)
    items, pages = await graph.all_pages(graph.path("HIST9") + "/getRecentlyModifiedSubmissions", token)
    assert pages[0].body["@odata.context"] == (
        "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.educationSubmission)"
    )
    history = graph.school_class("HIST9").id
    since = school.now() - timedelta(days=7)
    expected = {
        s.id for s in school.submissions_of(history) if s.state.last_modified_at and s.state.last_modified_at >= since
    }
    assert {s["id"] for s in items} == expected
    assert 0 < len(expected) < sum(1 for _ in school.submissions_of(history))
    stamps = [s["lastModifiedDateTime"] for s in items]
    assert stamps == sorted(stamps, reverse=True)
    ascending, _ = await graph.all_pages(
        graph.path("HIST9") + "/getRecentlyModifiedSubmissions?$orderby=lastModifiedDateTime asc", token
    )
    assert [s["lastModifiedDateTime"] for s in ascending] == sorted(stamps)


async def test_recently_modified_submissions_query_options(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    base = graph.path("BIO101") + "/getRecentlyModifiedSubmissions"
    assignment = graph.assignment("BIO101", "bio-microscope").id
    by_assignment, _ = await graph.all_pages(f"{base}?$filter=assignmentId eq '{assignment}'", token)
    assert by_assignment and {s["assignmentId"] for s in by_assignment} == {assignment}
    working, _ = await graph.all_pages(f"{base}?$filter=status eq 'working'&$expand=outcomes", token)
    assert working and {s["status"] for s in working} == {"working"} and all("outcomes" in s for s in working)
    bad_order = await graph.get(f"{base}?$orderby=status", token)
    assert bad_order.status == 400 and bad_order.error_code == "20143"
    assert bad_order.body["error"]["message"] == (
        "The OData query is invalid. $orderby clause is only supported for these properties : (lastModifiedDateTime)."
    )
    bad_filter = await graph.get(f"{base}?$filter=lastModifiedDateTime eq 2026-03-10T00:00:00Z", token)
    assert bad_filter.status == 400 and bad_filter.error_code == "BadRequest"
    not_boolean = await graph.get(f"{base}?$filter=status", token)
    assert not_boolean.body["error"]["message"] == (
        "Invalid filter clause: The $filter expression must evaluate to a single boolean value."
    )


async def test_recently_modified_submissions_on_beta_and_by_function_name(graph: GraphCaller) -> None:
    token = graph.token(ROSA)
    biology = graph.school_class("BIO101").id
    reply = await graph.get(
        f"/education/classes('{biology}')/microsoft.graph.getRecentlyModifiedSubmissions()?$expand=outcomes&$top=50",
        token,
        version="beta",
    )
    assert reply.status == 200
    assert reply.body["@odata.context"].startswith("https://graph.microsoft.com/beta/$metadata#Collection(")
    graded = [
        o["points"]
        for s in reply.body["value"]
        for o in s["outcomes"]
        if o["@odata.type"].endswith("PointsOutcome") and o["points"]
    ]
    assert graded and all(p["grade"] is None for p in graded)  # beta-only property of educationAssignmentPointsGrade
    teacher_elsewhere = await graph.get(graph.path("HIST9") + "/getRecentlyModifiedSubmissions", token)
    assert teacher_elsewhere.status == 403


async def test_recently_modified_since_a_moment_sees_a_student_turn_in_across_pages(
    graph: GraphCaller, school: School
) -> None:
    later = school.now() + timedelta(hours=3)
    school.clock = lambda: later
    student = graph.student_token("BIO101", SEAT["working"])
    turned_in = graph.submission("BIO101", "bio-cells", SEAT["working"])
    answer = await graph.post(graph.path("BIO101", "bio-cells", turned_in) + "/submit", student)
    assert answer.status == 200
    token = graph.token(ROSA)
    since = f"$filter=lastModifiedDateTime ge {later.isoformat().replace('+00:00', 'Z')}"
    base = graph.path("BIO101") + "/getRecentlyModifiedSubmissions"
    items, _ = await graph.all_pages(f"{base}?{since}&$expand=outcomes", token)
    assert [(s["id"], s["status"], s["lastModifiedDateTime"][:19]) for s in items] == [
        (turned_in.id, "submitted", later.isoformat()[:19])
    ]
    assert items[0]["outcomes"]  # $expand=outcomes
    # Every submission of the class since the week began, two at a time: each nextLink keeps the $filter.
    week = f"$filter=lastModifiedDateTime ge {(later - timedelta(days=7)).isoformat().replace('+00:00', 'Z')}"
    paged, pages = await graph.all_pages(f"{base}?{week}&$top=2", token)
    assert len(pages) > 2 and all(len(page.body["value"]) <= 2 for page in pages)
    for page in pages[:-1]:
        carried = parse_qs(urlsplit(page.body["@odata.nextLink"]).query)
        assert carried["$filter"] == [week.removeprefix("$filter=")] and carried["$top"] == ["2"]
        assert list(carried)[-1] == "$skiptoken"  # `…?$filter=…&$top=2&$skiptoken=…`, as Graph's example
    assert len({s["id"] for s in paged}) == len(paged) and paged[0]["id"] == turned_in.id  # newest first
    students_see = await graph.get(base, student)
    assert students_see.status == 403  # teachers and apps only
