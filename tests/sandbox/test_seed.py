"""The seeded schools: deterministic, relative to `now`, and covering every assignment kind and submission status."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from sandbox.directory import default_directory
from sandbox.school import (
    FEEDBACK_OUTCOME_ID,
    POINTS_OUTCOME_ID,
    RUBRIC_OUTCOME_ID,
    FeedbackOutcome,
    Outcome,
    PointsOutcome,
    RubricOutcome,
    School,
    Submission,
)
from sandbox.seed import current_hour, default_school, generate_school
from tests.sandbox.conftest import NOW


def waiting(submission: Submission) -> bool:
    """Turned in and not yet graded (the teacher's to-do)."""
    points = submission.outcomes_of(PointsOutcome)
    return submission.state.status == "submitted" and all(p.points is None for p in points)


def kinds_of(school: School) -> Counter[str]:
    """How many submissions show each situation a teacher meets."""
    seen: Counter[str] = Counter()
    for submission in school.submissions.values():
        assignment = school.assignments[submission.assignment_id]
        state = submission.state
        points = next(iter(submission.outcomes_of(PointsOutcome)), None)
        seen[state.status] += 1
        if state.status == "submitted" and state.submitted_at is not None:
            late = assignment.due_at is not None and state.submitted_at > assignment.due_at
            seen["submitted late" if late else "submitted on time"] += 1
            if points is not None and points.points is not None and points.published_points is None:
                seen["graded, not returned"] += 1
            if state.reassigned_at is not None:
                seen["reassigned then resubmitted"] += 1
        if state.status == "returned" and points is not None and points.published_points is not None:
            seen["returned with published points"] += 1
        if state.status == "working" and state.unsubmitted_at is not None:
            seen["unsubmitted"] += 1
        kinds = {r.resource.kind for r in submission.submitted_resources}
        seen.update(f"turned in a {kind}" for kind in kinds)
    return seen


SITUATIONS = [
    "working",
    "submitted",
    "returned",
    "reassigned",
    "excused",
    "submitted on time",
    "submitted late",
    "graded, not returned",
    "reassigned then resubmitted",
    "returned with published points",
    "unsubmitted",
    "turned in a word",
    "turned in a link",
]


@pytest.mark.parametrize("situation", SITUATIONS)
def test_default_school_has_every_submission_situation(situation: str) -> None:
    assert kinds_of(default_school(now=NOW))[situation] >= 1


def test_default_school_has_every_assignment_kind() -> None:
    school = default_school(now=NOW)
    assignments = list(school.assignments.values())
    statuses = Counter(school.assignment_status(a) for a in assignments)
    assert statuses["draft"] >= 3 and statuses["scheduled"] == 1 and statuses["inactive"] == 1
    assert statuses["assigned"] >= 8
    assert {a.max_points for a in assignments} >= {10.0, 20.0, 100.0, None}
    rubric_grading = {school.rubrics[a.rubric_id].max_points for a in assignments if a.rubric_id}
    assert rubric_grading == {20.0, None}  # a points rubric and a credit rubric
    assert any(a.due_at is None for a in assignments if a.state == "assigned")
    assert any(a.due_at is not None and a.close_at is None for a in assignments)
    assert any(a.close_at is not None and a.close_at < NOW for a in assignments)  # closed already
    assert any(not a.allow_late_submissions for a in assignments)
    scheduled = next(a for a in assignments if school.assignment_status(a) == "scheduled")
    assert scheduled.assign_at is not None and scheduled.assign_at > NOW


def test_default_school_is_built_on_the_default_directory() -> None:
    school = default_school(now=NOW)
    directory = default_directory()
    assert set(school.directory.users) == set(directory.users)
    assert set(school.directory.classes) == set(directory.classes)
    for assignment in school.assignments.values():
        school_class = school.directory.classes[assignment.class_id]
        if assignment.state == "draft":
            assert assignment.submissions == {}
        else:
            assert sorted(s.student_id for s in assignment.submissions.values()) == sorted(school_class.student_ids)


def test_each_published_submission_has_the_outcomes_its_grading_needs() -> None:
    school = default_school(now=NOW)
    for submission in school.submissions.values():
        assignment = school.assignments[submission.assignment_id]
        expected: dict[str, type[Outcome]] = {FEEDBACK_OUTCOME_ID: FeedbackOutcome}
        if assignment.max_points is not None:
            expected[POINTS_OUTCOME_ID] = PointsOutcome
        if assignment.rubric_id is not None:
            expected[RUBRIC_OUTCOME_ID] = RubricOutcome
        assert {o.id: type(o) for o in submission.outcomes} == expected


def test_every_class_has_an_assignment_with_several_submissions_to_grade() -> None:
    school = default_school(now=NOW)
    for school_class in school.directory.classes.values():
        most = max(sum(waiting(s) for s in a.submissions.values()) for a in school.assignments_of(school_class.id))
        assert most >= 3, school_class.display_name


def test_ids_and_timestamps_are_stable_across_builds() -> None:
    first, second = default_school(now=NOW), default_school(now=NOW)
    assert list(first.assignments) == list(second.assignments)
    assert list(first.submissions) == list(second.submissions)
    for submission_id, submission in first.submissions.items():
        other = second.submissions[submission_id]
        assert submission.state == other.state
        assert [o.id for o in submission.outcomes] == [o.id for o in other.outcomes]
        assert [r.id for r in submission.submitted_resources] == [r.id for r in other.submitted_resources]


def test_timestamps_are_relative_to_now() -> None:
    later = NOW + timedelta(days=30)
    school, shifted = default_school(now=NOW), default_school(now=later)
    for assignment_id, assignment in school.assignments.items():
        assert shifted.assignments[assignment_id].created_at - assignment.created_at == timedelta(days=30)
    for submission in school.submissions.values():
        modified = submission.state.last_modified_at
        assert modified is not None and modified <= NOW
    # Late means late by days, and the 7-day window of recently modified submissions holds some but not all.
    lateness = [
        s.state.submitted_at - school.assignments[s.assignment_id].due_at  # type: ignore[operator]
        for s in school.submissions.values()
        if s.state.status == "submitted" and s.state.submitted_at and school.assignments[s.assignment_id].due_at
    ]
    assert max(lateness) > timedelta(days=1)
    for school_class in school.directory.classes.values():
        recent = school.recently_modified(school_class.id)
        assert 0 < len(recent) < sum(1 for _ in school.submissions_of(school_class.id))


def test_default_now_is_the_current_utc_hour() -> None:
    before = current_hour()
    school = default_school()
    cells = next(a for a in school.assignments.values() if a.display_name == "Cell structure worksheet")
    assert (cells.created_at.minute, cells.created_at.second, cells.created_at.microsecond) == (0, 0, 0)
    assert cells.created_at in (before - timedelta(days=13), current_hour() - timedelta(days=13))
    assert school.now() <= datetime.now(UTC)


def test_generated_school_has_the_requested_size_and_the_same_invariants() -> None:
    school = generate_school(10, 20, 30, now=NOW)
    assert len(school.directory.classes) == 10
    assert all(len(c.student_ids) == 30 for c in school.directory.classes.values())
    assert len({s for c in school.directory.classes.values() for s in c.student_ids}) == 300
    assert len(school.assignments) == 200
    seen = kinds_of(school)
    for situation in SITUATIONS:
        if not situation.startswith("turned in"):
            assert seen[situation] >= 1, situation
    statuses = Counter(school.assignment_status(a) for a in school.assignments.values())
    assert set(statuses) == {"draft", "scheduled", "assigned", "inactive"}
    for school_class in school.directory.classes.values():
        most = max(sum(waiting(s) for s in a.submissions.values()) for a in school.assignments_of(school_class.id))
        assert most >= 3
        assert school_class.teacher_ids and school_class.teacher_ids[0] in school.directory.users


def test_generated_school_is_deterministic_per_seed() -> None:
    first, second = generate_school(3, 5, 6, now=NOW, seed=4), generate_school(3, 5, 6, now=NOW, seed=4)
    assert list(first.submissions) == list(second.submissions)
    assert [s.state for s in first.submissions.values()] == [s.state for s in second.submissions.values()]
    other = generate_school(3, 5, 6, now=NOW, seed=5)
    assert [s.state.status for s in other.submissions.values()] != [s.state.status for s in first.submissions.values()]


@pytest.mark.parametrize("shape", [(0, 1, 3), (1, 0, 3), (1, 1, 2)])
def test_generated_school_refuses_degenerate_shapes(shape: tuple[int, int, int]) -> None:
    with pytest.raises(ValueError):
        generate_school(*shape)
