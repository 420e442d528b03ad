"""The School's operations without HTTP: transitions, publishing, grading rules, settling, modification times."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import pytest

from sandbox.directory import default_directory
from sandbox.school import (
    ALLOWED_FROM,
    FEEDBACK_OUTCOME_ID,
    POINTS_OUTCOME_ID,
    RUBRIC_OUTCOME_ID,
    Actor,
    AssignmentStateError,
    EntityNotFoundError,
    FeedbackOutcome,
    FeedbackResourceOutcome,
    GradingError,
    ItemBody,
    OutcomeWriteError,
    PointsOutcome,
    QualityFeedback,
    QualitySelection,
    Resource,
    RubricOutcome,
    School,
    SubmissionAction,
    TransitionError,
    check_points,
)
from sandbox.seed import add_rubrics
from tests.sandbox.conftest import NOW

ACTIONS: tuple[SubmissionAction, ...] = ("submit", "unsubmit", "return", "reassign", "excuse")
STATUSES = ("working", "submitted", "returned", "reassigned", "excused")
# Graph's submissions-status-transition table: (from, action) → to; anything missing is not allowed.
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
REACH: dict[str, tuple[SubmissionAction, ...]] = {
    "working": (),
    "submitted": ("submit",),
    "returned": ("return",),
    "reassigned": ("reassign",),
    "excused": ("excuse",),
}


class SteppingClock:
    """A clock that moves only when told."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock(NOW)


@pytest.fixture
def school(clock: SteppingClock) -> School:
    """A bare school: the default directory and one published points+rubric assignment in Biology."""
    school = School(default_directory(), clock=clock)
    rubrics = add_rubrics(school, NOW - timedelta(days=1), teacher_of(school))
    biology = biology_id(school)
    school.create_assignment(
        biology,
        "Lab",
        by=teacher_of(school),
        max_points=20,
        rubric_id=rubrics["lab"].id,
        due_at=NOW + timedelta(days=2),
        close_at=NOW + timedelta(days=4),
        assignment_id="lab",
    )
    school.publish(biology, "lab", by=teacher_of(school))
    return school


def biology_id(school: School) -> str:
    return next(c.id for c in school.directory.classes.values() if c.class_code == "BIO101")


def teacher_of(school: School) -> Actor:
    return Actor.user(school.directory.classes[biology_id(school)].teacher_ids[0])


def seat(school: School, index: int) -> tuple[str, str, str]:
    assignment = school.assignments["lab"]
    return assignment.class_id, assignment.id, list(assignment.submissions)[index]


def test_the_transition_table_matches_graphs() -> None:
    assert {(s, a) for a, froms in ALLOWED_FROM.items() for s in froms} == set(TRANSITIONS)


@pytest.mark.parametrize("start", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition_as_a_teacher(school: School, start: str, action: SubmissionAction) -> None:
    teacher = teacher_of(school)
    ids = seat(school, 0)
    for step in REACH[start]:
        school.act(step, *ids, by=teacher)
    assert school.submission(*ids).state.status == start
    expected = TRANSITIONS.get((start, action))
    if expected is None:
        with pytest.raises(TransitionError):
            school.act(action, *ids, by=teacher)
        assert school.submission(*ids).state.status == start
    else:
        assert school.act(action, *ids, by=teacher).state.status == expected


@pytest.mark.parametrize(("start", "allowed"), [("working", True), ("reassigned", True), ("returned", False)])
def test_a_student_turns_in_only_from_working_or_reassigned(school: School, start: str, allowed: bool) -> None:
    ids = seat(school, 1)
    student = Actor.user(school.submission(*ids).student_id)
    for step in REACH[start]:
        school.act(step, *ids, by=teacher_of(school))
    if allowed:
        assert school.submit(*ids, by=student).state.submitted_by == student
    else:
        with pytest.raises(TransitionError):
            school.submit(*ids, by=student)


def test_students_cannot_turn_in_after_close_or_late_when_not_allowed(school: School, clock: SteppingClock) -> None:
    ids = seat(school, 2)
    student = Actor.user(school.submission(*ids).student_id)
    clock.advance(days=5)  # past closeDateTime
    with pytest.raises(AssignmentStateError):
        school.submit(*ids, by=student)
    assert school.submit(*ids, by=teacher_of(school)).state.status == "submitted"  # a teacher may, on their behalf
    assignment = school.assignments["lab"]
    assignment.close_at, assignment.allow_late_submissions = None, False
    other = seat(school, 3)
    with pytest.raises(AssignmentStateError):
        school.submit(*other, by=Actor.user(school.submission(*other).student_id))


def test_publish_creates_one_working_submission_per_student_with_empty_outcomes(school: School) -> None:
    assignment = school.assignments["lab"]
    school_class = school.directory.classes[assignment.class_id]
    assert len(assignment.submissions) == len(school_class.student_ids)
    for submission in assignment.submissions.values():
        assert submission.state.status == "working" and submission.state.last_modified_at == NOW
        points = submission.outcome(POINTS_OUTCOME_ID)
        feedback = submission.outcome(FEEDBACK_OUTCOME_ID)
        rubric = submission.outcome(RUBRIC_OUTCOME_ID)
        assert isinstance(points, PointsOutcome) and points.points is None and points.published_points is None
        assert isinstance(feedback, FeedbackOutcome) and feedback.feedback is None and feedback.last_modified_by is None
        assert isinstance(rubric, RubricOutcome) and all(s.column_id is None for s in rubric.selected_levels)
        assert len(rubric.selected_levels) == 4
    with pytest.raises(AssignmentStateError):
        school.publish(assignment.class_id, assignment.id, by=teacher_of(school))


def test_credit_assignments_get_only_a_feedback_outcome(school: School) -> None:
    biology = biology_id(school)
    school.create_assignment(biology, "Reflection", by=teacher_of(school), assignment_id="credit")
    school.publish(biology, "credit", by=teacher_of(school))
    for submission in school.assignments["credit"].submissions.values():
        assert [o.id for o in submission.outcomes] == [FEEDBACK_OUTCOME_ID]


def test_return_publishes_points_feedback_rubric_and_resources(school: School, clock: SteppingClock) -> None:
    teacher, ids = teacher_of(school), seat(school, 4)
    rubric = school.rubrics[school.assignments["lab"].rubric_id or ""]
    choice = QualitySelection(rubric.qualities[0].quality_id, rubric.levels[0].level_id)
    school.set_points(*ids, POINTS_OUTCOME_ID, 17.5, by=teacher)
    school.set_feedback(*ids, FEEDBACK_OUTCOME_ID, ItemBody("Good work"), by=teacher)
    school.set_rubric(*ids, RUBRIC_OUTCOME_ID, quality_feedback=None, selected_levels=[choice], by=teacher)
    link = Resource("link", "Worked example", "https://contoso-high.example/x", teacher, NOW)
    resource = school.add_feedback_resource(*ids, link, by=teacher)
    clock.advance(hours=1)
    returned = school.return_submission(*ids, by=teacher)
    assert returned.state.status == "returned" and returned.state.returned_at == NOW + timedelta(hours=1)
    points = returned.outcome(POINTS_OUTCOME_ID)
    assert isinstance(points, PointsOutcome) and points.published_points == points.points
    assert points.published_points is not None and points.published_points.graded_at == NOW
    feedback = returned.outcome(FEEDBACK_OUTCOME_ID)
    assert isinstance(feedback, FeedbackOutcome) and feedback.published_feedback == feedback.feedback
    rubric_outcome = returned.outcome(RUBRIC_OUTCOME_ID)
    assert isinstance(rubric_outcome, RubricOutcome)
    assert rubric_outcome.published_selected_levels[0] == choice
    assert resource.resource_status == "published"


def test_excuse_deletes_feedback_rubric_selections_and_feedback_resources(school: School) -> None:
    teacher, ids = teacher_of(school), seat(school, 5)
    rubric = school.rubrics[school.assignments["lab"].rubric_id or ""]
    quality = rubric.qualities[1].quality_id
    school.set_points(*ids, POINTS_OUTCOME_ID, 12, by=teacher)
    school.set_feedback(*ids, FEEDBACK_OUTCOME_ID, ItemBody("Redo part 2"), by=teacher)
    school.set_rubric(
        *ids,
        RUBRIC_OUTCOME_ID,
        quality_feedback=[QualityFeedback(quality, ItemBody("Method unclear"))],
        selected_levels=[QualitySelection(quality, rubric.levels[2].level_id)],
        by=teacher,
    )
    school.add_feedback_resource(*ids, Resource("word", "Notes.docx", "https://x.example/n", teacher, NOW), by=teacher)
    excused = school.excuse(*ids, by=teacher)
    assert excused.state.status == "excused"
    feedback = excused.outcome(FEEDBACK_OUTCOME_ID)
    assert isinstance(feedback, FeedbackOutcome) and feedback.feedback is None
    rubric_outcome = excused.outcome(RUBRIC_OUTCOME_ID)
    assert isinstance(rubric_outcome, RubricOutcome)
    assert all(s.column_id is None for s in rubric_outcome.selected_levels)
    assert all(f.feedback is None for f in rubric_outcome.quality_feedback)
    assert excused.outcomes_of(FeedbackResourceOutcome) == []
    points = excused.outcome(POINTS_OUTCOME_ID)
    assert isinstance(points, PointsOutcome) and points.points is not None  # the grade itself is not feedback


@pytest.mark.parametrize("points", [-1.0, -0.01, math.nan, math.inf, -math.inf, 9999999.0, 1e12])
def test_points_graph_refuses(points: float) -> None:
    with pytest.raises(GradingError):
        check_points(points)


@pytest.mark.parametrize("points", [0.0, 0.5, 100.0, 9999998.99])
def test_points_graph_accepts(points: float) -> None:
    check_points(points)


def test_outcome_writes_must_fit_the_outcome(school: School) -> None:
    teacher, ids = teacher_of(school), seat(school, 6)
    with pytest.raises(OutcomeWriteError):
        school.set_points(*ids, FEEDBACK_OUTCOME_ID, 3, by=teacher)
    with pytest.raises(OutcomeWriteError):
        school.set_rubric(
            *ids, RUBRIC_OUTCOME_ID, quality_feedback=None, selected_levels=[QualitySelection("nope", None)], by=teacher
        )
    rubric = school.rubrics[school.assignments["lab"].rubric_id or ""]
    with pytest.raises(OutcomeWriteError):
        school.set_rubric(
            *ids,
            RUBRIC_OUTCOME_ID,
            quality_feedback=None,
            selected_levels=[QualitySelection(rubric.qualities[0].quality_id, "no-such-level")],
            by=teacher,
        )
    with pytest.raises(OutcomeWriteError):
        school.delete_outcome(*ids, POINTS_OUTCOME_ID, by=teacher)
    with pytest.raises(EntityNotFoundError) as raised:
        school.set_points(*ids, "00000000-0000-0000-0000-000000000000", 3, by=teacher)
    assert raised.value.kind == "outcome"


def test_a_settling_action_shows_the_previous_state_until_it_settles(school: School, clock: SteppingClock) -> None:
    teacher, ids = teacher_of(school), seat(school, 7)
    school.submit(*ids, by=teacher)
    returned = school.return_submission(*ids, by=teacher, settle=timedelta(seconds=5))
    assert returned.state.status == "returned"
    assert school.shown_state(returned).status == "submitted"
    clock.advance(seconds=4.9)
    assert school.shown_state(returned).status == "submitted"
    clock.advance(seconds=0.2)
    assert school.shown_state(returned).status == "returned"


def test_publishing_with_a_settle_delay_shows_published_first(school: School, clock: SteppingClock) -> None:
    biology = biology_id(school)
    school.create_assignment(biology, "Later", by=teacher_of(school), assignment_id="later")
    school.publish(biology, "later", by=teacher_of(school), settle=timedelta(seconds=3))
    assert school.assignment_status(school.assignments["later"]) == "published"
    clock.advance(seconds=3)
    assert school.assignment_status(school.assignments["later"]) == "assigned"


def test_every_change_moves_last_modified_and_feeds_recent_submissions(school: School, clock: SteppingClock) -> None:
    teacher, ids = teacher_of(school), seat(school, 8)
    moments = []
    for change in (
        lambda: school.submit(*ids, by=teacher),
        lambda: school.set_points(*ids, POINTS_OUTCOME_ID, 10, by=teacher),
        lambda: school.set_feedback(*ids, FEEDBACK_OUTCOME_ID, ItemBody("ok"), by=teacher),
        lambda: school.return_submission(*ids, by=teacher),
    ):
        clock.advance(minutes=1)
        change()
        moments.append(school.submission(*ids).state.last_modified_at)
    assert moments == [NOW + timedelta(minutes=m) for m in (1, 2, 3, 4)]
    assert school.submission(*ids).state.last_modified_by == teacher
    clock.advance(days=7, minutes=-3)
    recent = {s.id for s in school.recently_modified(ids[0])}
    assert ids[2] in recent and seat(school, 9)[2] not in recent
