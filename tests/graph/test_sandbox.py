"""EducationClient against the real Graph stand-in (sandbox/): roster, paging, outcomes, grading, errors, faults.

The sandbox serves the seeded Contoso High on 127.0.0.1 with pages of at most 4 (whatever `$top` asks), so every
list here crosses page boundaries.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.school.progress import GradingState, grading_state
from graph.client import EducationClient, FeedbackPatch, PointsPatch, RubricPatch, SubmissionRef
from graph.connection import GraphHttp, RetryPolicy, TokenProvider
from graph.errors import (
    GraphAuthError,
    GraphError,
    GraphForbiddenError,
    GraphNotFoundError,
    GraphUnavailableError,
)
from graph.models import (
    AssignmentStatus,
    FeedbackOutcome,
    PointsOutcome,
    RubricOutcome,
    RubricSelection,
    SubmissionStatus,
)
from sandbox.directory import BOT_APP_ID, GRAPH_AUDIENCE, TENANT_ID, SchoolClass, User, stable_id
from sandbox.faults import FaultPlan, Faults, ScriptedFault
from sandbox.graph_api import setup_graph
from sandbox.school import School
from sandbox.school import Submission as SchoolSubmission
from sandbox.seed import default_school
from sandbox.tokens import TokenAuthority
from tests.graph.conftest import RecordedSleeps

NOW = datetime(2026, 3, 16, 9, 0, tzinfo=UTC)
PAGE_SIZE = 4
SCOPES = "EduRoster.ReadBasic EduAssignments.ReadWrite"
ROSA = "rosa.martinez@contoso-high.example"
DAVID = "david.okafor@contoso-high.example"

ServerFactory = Callable[..., Awaitable[Any]]


@pytest.fixture(scope="session")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


async def _no_wait(seconds: float) -> None:
    return None


@dataclass
class Sandbox:
    """The seeded school behind a live Graph emulator, and a way to act as any of its people."""

    school: School
    authority: TokenAuthority
    faults: Faults
    http: GraphHttp

    def user(self, upn: str) -> User:
        found = self.school.directory.user_by_upn(upn)
        assert found is not None
        return found

    def school_class(self, code: str) -> SchoolClass:
        return next(c for c in self.school.directory.classes.values() if c.class_code == code)

    def assignment_id(self, code: str, key: str) -> str:
        return stable_id("assignment", f"{self.school_class(code).id}:{key}")

    def submissions(self, code: str, key: str) -> list[SchoolSubmission]:
        return list(self.school.assignments[self.assignment_id(code, key)].submissions.values())

    def first_with(self, code: str, key: str, status: str) -> SchoolSubmission:
        return next(s for s in self.submissions(code, key) if s.state.status == status)

    def token_of(self, user: User) -> TokenProvider:
        claims = {"aud": GRAPH_AUDIENCE, "scp": SCOPES, "oid": user.id, "upn": user.user_principal_name}

        async def token(refresh: bool = False) -> str:
            return self.authority.mint({**claims, "azp": BOT_APP_ID})

        return token

    def client(self, upn: str = ROSA) -> EducationClient:
        return EducationClient(self.http, self.token_of(self.user(upn)))


@pytest.fixture
async def sandbox(
    aiohttp_server: ServerFactory, signing_key: rsa.RSAPrivateKey, sleeps: RecordedSleeps
) -> AsyncIterator[Sandbox]:
    school = default_school(now=NOW)
    authority = TokenAuthority(TENANT_ID, f"https://127.0.0.1:1/{TENANT_ID}", key=signing_key)
    faults = Faults(FaultPlan(), sleep=_no_wait)
    app = web.Application()
    setup_graph(app, school, authority, faults, page_size=PAGE_SIZE, max_top=PAGE_SIZE)
    server = await aiohttp_server(app, host="127.0.0.1")
    policy = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.5, max_total_wait=5.0)
    http = GraphHttp(str(server.make_url("/v1.0")), retry=policy, sleep=sleeps, random=lambda: 0.5)
    yield Sandbox(school, authority, faults, http)
    await http.aclose()


async def test_roster_of_a_teacher(sandbox: Sandbox) -> None:
    rosa = sandbox.client(ROSA)
    taught = await rosa.taught_classes()
    assert sorted(c.class_code or "" for c in taught) == ["BIO101", "CHEM201"]
    assert sorted(c.id for c in await rosa.user_taught_classes(sandbox.user(ROSA).id)) == sorted(c.id for c in taught)
    chemistry = sandbox.school_class("CHEM201")
    assert (await rosa.get_class(chemistry.id)).display_name == "Chemistry 201"
    teachers = await rosa.class_teachers(chemistry.id)
    assert {(t.id, t.display_name) for t in teachers} == {
        (sandbox.user(ROSA).id, sandbox.user(ROSA).display_name),
        (sandbox.user(DAVID).id, sandbox.user(DAVID).display_name),
    }
    members = await rosa.class_members(sandbox.school_class("BIO101").id)  # 26 people over 7 pages
    assert {m.id for m in members} == set(sandbox.school_class("BIO101").member_ids)


async def test_assignments_show_every_status_with_prefer(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    everything = {a.id: a for a in await rosa.list_assignments(biology)}
    statuses = {a.status for a in everything.values()}
    assert {AssignmentStatus.DRAFT, AssignmentStatus.ASSIGNED, AssignmentStatus.INACTIVE} <= statuses
    cells = await rosa.get_assignment(biology, sandbox.assignment_id("BIO101", "bio-cells"))
    assert (cells.id, cells.max_points) == (sandbox.assignment_id("BIO101", "bio-cells"), 10.0)
    ecosystem = everything[sandbox.assignment_id("BIO101", "bio-ecosystem")]
    assert ecosystem.max_points is None  # credit assignment


async def test_submissions_paged_with_outcomes_and_unmasked_statuses(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    submissions = await rosa.list_submissions(biology, cells)
    expected = {s.id: s.state.status for s in sandbox.submissions("BIO101", "bio-cells")}
    assert len(submissions) == 25
    assert {s.id: s.status.value for s in submissions} == expected
    assert {SubmissionStatus.REASSIGNED, SubmissionStatus.EXCUSED} <= {s.status for s in submissions}
    assert all(s.outcomes is not None and s.outcomes.points is not None for s in submissions)
    assert all(s.outcomes is not None and s.outcomes.feedback is not None for s in submissions)


async def test_many_submission_lists_filtered_by_status_hold_only_that_status(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    keys = ("bio-cells", "bio-microscope", "bio-ecosystem")
    assignments = [(biology, sandbox.assignment_id("BIO101", key)) for key in keys]
    filtered = await rosa.list_submissions_many(assignments, status=SubmissionStatus.SUBMITTED)
    for key, settled in zip(keys, filtered, strict=True):
        submitted = {s.id for s in sandbox.submissions("BIO101", key) if s.state.status == "submitted"}
        assert submitted and {s.id for s in settled.unwrap()} == submitted
        assert all(s.outcomes is not None for s in settled.unwrap())


async def test_grade_then_return_round_trip(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    target = sandbox.first_with("BIO101", "bio-cells", "submitted")
    before = await rosa.get_submission(SubmissionRef(biology, cells, target.id))
    assert before.outcomes is not None and before.outcomes.points is not None and before.outcomes.feedback is not None
    assert grading_state(before) is GradingState.NEEDS_GRADING
    points_id, feedback_id = before.outcomes.points.id, before.outcomes.feedback.id

    ref = SubmissionRef(biology, cells, target.id)
    written, feedback = (
        item.unwrap()
        for item in await rosa.patch_outcomes_many(
            [PointsPatch(ref, points_id, 8.5), FeedbackPatch(ref, feedback_id, "Check your units.")]
        )
    )
    assert isinstance(written, PointsOutcome) and written.points is not None and written.points.points == 8.5
    assert written.last_modified_by is not None and written.last_modified_by.user_id == sandbox.user(ROSA).id
    assert isinstance(feedback, FeedbackOutcome)
    assert feedback.feedback is not None and feedback.feedback.text == "Check your units."

    outcomes = (await rosa.get_submission(SubmissionRef(biology, cells, target.id), expand=("outcomes",))).outcomes
    assert outcomes is not None and outcomes.points is not None and outcomes.points.points is not None
    assert outcomes.points.points.points == 8.5 and outcomes.points.published_points is None
    graded = await rosa.get_submission(SubmissionRef(biology, cells, target.id), expand=("outcomes",))
    assert grading_state(graded) is GradingState.GRADED_NOT_RETURNED

    returned = await rosa.act(SubmissionRef(biology, cells, target.id), "return")
    assert returned is not None and returned.status is SubmissionStatus.RETURNED
    after = (await rosa.get_submission(SubmissionRef(biology, cells, target.id), expand=("outcomes",))).outcomes
    assert after is not None
    assert after.points is not None and after.points.published_points is not None
    assert after.points.published_points.points == 8.5
    assert after.feedback is not None and after.feedback.published_feedback is not None
    assert after.feedback.published_feedback.text == "Check your units."


async def test_rubric_outcome_and_rubric(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    microscope = sandbox.assignment_id("BIO101", "bio-microscope")
    rubric = await rosa.get_rubric(biology, microscope)
    assert rubric is not None and rubric.display_name == "Lab report rubric"
    assert len(rubric.qualities) == 4
    assert await rosa.get_rubric(biology, sandbox.assignment_id("BIO101", "bio-cells")) is None
    with pytest.raises(GraphNotFoundError):
        await rosa.get_rubric(biology, "no-such-assignment")

    target = sandbox.first_with("BIO101", "bio-microscope", "submitted")
    current = await rosa.get_submission(SubmissionRef(biology, microscope, target.id))
    assert current.outcomes is not None and current.outcomes.rubric is not None
    choice = [RubricSelection(q.quality_id, rubric.levels[0].level_id) for q in rubric.qualities]
    ref = SubmissionRef(biology, microscope, target.id)
    (settled,) = await rosa.patch_outcomes_many([RubricPatch(ref, current.outcomes.rubric.id, choice)])
    outcome = settled.unwrap()
    assert isinstance(outcome, RubricOutcome) and set(outcome.selected_levels) == set(choice)


async def test_reassign_and_excuse_statuses(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    first, second = [s for s in sandbox.submissions("BIO101", "bio-cells") if s.state.status == "submitted"][:2]
    reassigned = await rosa.act(SubmissionRef(biology, cells, first.id), "reassign")
    assert reassigned is not None and reassigned.status is SubmissionStatus.REASSIGNED
    excused = await rosa.act(SubmissionRef(biology, cells, second.id), "excuse")
    assert excused is not None and excused.status is SubmissionStatus.EXCUSED
    assert sandbox.school.submission(biology, cells, second.id).state.status == "excused"


async def test_submitted_resources_expand(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    target = sandbox.first_with("BIO101", "bio-cells", "submitted")
    item = await rosa.get_submission(SubmissionRef(biology, cells, target.id))
    assert item.submitted_resources is not None
    assert len(item.submitted_resources) == len(target.submitted_resources)


async def test_error_mapping(sandbox: Sandbox) -> None:
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    target = sandbox.first_with("BIO101", "bio-cells", "submitted")
    rosa = sandbox.client()
    outcomes = (await rosa.get_submission(SubmissionRef(biology, cells, target.id), expand=("outcomes",))).outcomes
    assert outcomes is not None and outcomes.points is not None
    ref = SubmissionRef(biology, cells, target.id)

    student = sandbox.school.directory.users[sandbox.school_class("BIO101").student_ids[0]]
    as_student = EducationClient(sandbox.http, sandbox.token_of(student))
    (forbidden,) = await as_student.patch_outcomes_many([PointsPatch(ref, outcomes.points.id, 10)])
    assert isinstance(forbidden.error, GraphForbiddenError)

    missing, invalid = await rosa.patch_outcomes_many(
        [PointsPatch(ref, "05d0f76c-1dfa-4442-926c-1b094828b505", 5), PointsPatch(ref, outcomes.points.id, -1)]
    )
    assert isinstance(missing.error, GraphNotFoundError) and missing.error.code == "20241"
    assert type(invalid.error) is GraphError and invalid.error.status == 400
    assert (invalid.error.code, invalid.error.inner_code) == ("badRequest", "invalidGrading")

    history = sandbox.school_class("HIST9").id  # Rosa does not teach it
    with pytest.raises((GraphForbiddenError, GraphNotFoundError)):
        await rosa.list_assignments(history)


async def test_401_refreshes_the_token_once(sandbox: Sandbox) -> None:
    rosa_id = sandbox.user(ROSA).id
    calls: list[str] = []

    async def token(refresh: bool = False) -> str:
        calls.append("refresh" if refresh else "call")
        if len(calls) == 1:
            return sandbox.authority.mint({"aud": GRAPH_AUDIENCE, "scp": SCOPES, "oid": rosa_id}, lifetime_s=-60)
        return await sandbox.token_of(sandbox.user(ROSA))()

    taught = await EducationClient(sandbox.http, token).taught_classes()
    assert sorted(c.class_code or "" for c in taught) == ["BIO101", "CHEM201"]
    assert calls == ["call", "refresh"]

    async def always_bad(refresh: bool = False) -> str:
        return "not-a-token"

    with pytest.raises(GraphAuthError):
        await EducationClient(sandbox.http, always_bad).taught_classes()


async def test_scripted_throttle_is_retried_after_retry_after(sandbox: Sandbox, sleeps: RecordedSleeps) -> None:
    sandbox.faults.add_script(
        [ScriptedFault(status=429, retry_after_s=0.25, count=2, method="GET", path_regex="/submissions$")]
    )
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    submissions = await sandbox.client().list_submissions(biology, cells)
    assert len(submissions) == 25
    assert sleeps == [0.25, 0.25]
    assert sandbox.faults.stats.injected["status"] == 2


async def test_dropped_return_is_surfaced_not_repeated(sandbox: Sandbox) -> None:
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    target = sandbox.first_with("BIO101", "bio-cells", "submitted")
    sandbox.faults.add_script([ScriptedFault(kind="drop", method="POST", path_regex="/return$")])
    with pytest.raises(GraphUnavailableError) as caught:
        await sandbox.client().act(SubmissionRef(biology, cells, target.id), "return")
    assert caught.value.status is None
    # The caller re-reads: the sandbox dropped the request before running it.
    current = await sandbox.client().get_submission(SubmissionRef(biology, cells, target.id), expand=())
    assert current.status is SubmissionStatus.SUBMITTED


async def test_submissions_of_many_assignments_in_one_batch(sandbox: Sandbox, sleeps: RecordedSleeps) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    chemistry = sandbox.school_class("CHEM201").id
    biology_keys = ("bio-cells", "bio-microscope", "bio-ecosystem")
    pairs = [(biology, sandbox.assignment_id("BIO101", key)) for key in biology_keys]
    pairs += [(chemistry, sandbox.assignment_id("CHEM201", key)) for key in ("chem-stoich", "chem-safety")]
    pairs.append((biology, "no-such-assignment"))
    one_assignment = sandbox.assignment_id("BIO101", "bio-microscope")
    sandbox.faults.add_script([ScriptedFault(status=429, retry_after_s=0.5, method="GET", path_regex=one_assignment)])
    settled = await rosa.list_submissions_many(pairs)
    for (_, assignment_id), result in zip(pairs[:-1], settled[:-1], strict=True):
        expected = {s.id for s in sandbox.school.assignments[assignment_id].submissions.values()}
        assert {s.id for s in result.unwrap()} == expected
    assert isinstance(settled[-1].error, GraphNotFoundError)
    # One batch of first pages, one retry for the throttled item, then one batch per round of nextLinks — and no
    # request outside a batch: paging many assignments costs as many round trips as the longest one has pages.
    longest = max(len(sandbox.school.assignments[a].submissions) for _, a in pairs[:-1])
    rounds_of_next_pages = -(-longest // PAGE_SIZE) - 1
    assert sandbox.faults.stats.batches == 2 + rounds_of_next_pages
    stats = sandbox.faults.stats
    assert stats.requests + sum(stats.injected.values()) == stats.batch_items
    assert sleeps == [0.5]


async def test_bulk_grade_and_return(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    waiting = [s for s in sandbox.submissions("BIO101", "bio-cells") if s.state.status == "submitted"][:3]
    current = await rosa.list_submissions(biology, cells)
    by_id = {s.id: s for s in current}
    patches: list[PointsPatch | FeedbackPatch] = []
    for index, item in enumerate(waiting):
        outcomes = by_id[item.id].outcomes
        assert outcomes is not None and outcomes.points is not None and outcomes.feedback is not None
        ref = SubmissionRef(biology, cells, item.id)
        patches.append(PointsPatch(ref, outcomes.points.id, 7 + index))
        patches.append(FeedbackPatch(ref, outcomes.feedback.id, f"Note {index}"))
    settled = await rosa.patch_outcomes_many(patches)
    assert all(result.error is None for result in settled)
    returned = await rosa.return_many([SubmissionRef(biology, cells, item.id) for item in waiting])
    assert all(
        r.error is None and (s := r.unwrap()) is not None and s.status is SubmissionStatus.RETURNED for r in returned
    )
    for index, item in enumerate(waiting):
        outcomes = (await rosa.get_submission(SubmissionRef(biology, cells, item.id), expand=("outcomes",))).outcomes
        assert outcomes is not None and outcomes.points is not None and outcomes.points.published_points is not None
        assert outcomes.points.published_points.points == 7 + index


async def test_recently_modified_submissions_since_a_moment(sandbox: Sandbox) -> None:
    rosa = sandbox.client()
    biology = sandbox.school_class("BIO101").id
    cells = sandbox.assignment_id("BIO101", "bio-cells")
    window = await rosa.recently_modified_submissions(biology, sandbox.school.now() - timedelta(days=7))
    assert len({s.assignment_id for s in window}) > 1  # the whole class, every assignment: each names its own
    assert len(window) > PAGE_SIZE  # and every page was followed
    later = sandbox.school.now() + timedelta(hours=1)
    sandbox.school.clock = lambda: later
    target = sandbox.first_with("BIO101", "bio-cells", "submitted")
    graded = await rosa.get_submission(SubmissionRef(biology, cells, target.id), expand=("outcomes",))
    assert graded.outcomes is not None and graded.outcomes.points is not None
    ref = SubmissionRef(biology, cells, target.id)
    await rosa.patch_outcomes_many([PointsPatch(ref, graded.outcomes.points.id, 7.0)])
    [changed] = await rosa.recently_modified_submissions(biology, later)
    assert (changed.id, changed.assignment_id) == (target.id, cells)
    assert grading_state(changed) is GradingState.GRADED_NOT_RETURNED  # outcomes came expanded
