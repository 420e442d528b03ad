"""The sandbox school's mutable education state (assignments, submissions, outcomes, rubrics, resources) and the
operations Graph offers on it: publish, submit, unsubmit, return, reassign, excuse, grade. HTTP-free; `wire.py`
serializes it and `education.py` serves it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar

from sandbox.directory import Directory, SchoolClass, stable_id

SubmissionStatus = Literal["working", "submitted", "released", "returned", "reassigned", "excused"]
SubmissionAction = Literal["submit", "unsubmit", "return", "reassign", "excuse"]
AssignmentState = Literal["draft", "assigned", "inactive"]
"""What is stored; the served status also has `published` (while publishing settles) and `scheduled`."""
ResourceKind = Literal["word", "excel", "powerPoint", "file", "media", "link", "external"]
FeedbackResourceStatus = Literal["notPublished", "pendingPublish", "published", "failedPublish"]
T = TypeVar("T")
OutcomeT = TypeVar("OutcomeT", bound="Outcome")

# Graph gives every submission's built-in outcomes these same ids (seen in every documented example, 2019–2024);
# clients must still pick outcomes by @odata.type.
FEEDBACK_OUTCOME_ID = "ca05367a-b292-42d5-aff7-5d279feeace8"
POINTS_OUTCOME_ID = "ea1351f6-ba33-4940-b2cb-6a7254af2dc8"
RUBRIC_OUTCOME_ID = "65a46d78-1a2b-4a7e-bcf8-78a22ac2611b"

MAX_POINTS_EXCLUSIVE = 9999999.0
RECENT_WINDOW = timedelta(days=7)
NO_DELAY = timedelta(0)

# Submission transitions (Graph's submissions-status-transition table): action → statuses it may start from.
ALLOWED_FROM: dict[SubmissionAction, frozenset[str]] = {
    "submit": frozenset({"working", "returned", "reassigned", "excused"}),
    "unsubmit": frozenset({"submitted"}),
    "return": frozenset({"working", "submitted", "returned", "reassigned", "excused"}),
    "reassign": frozenset({"working", "submitted", "returned", "reassigned", "excused"}),
    "excuse": frozenset({"working", "submitted", "returned", "reassigned"}),
}
STUDENT_SUBMIT_FROM = frozenset({"working", "reassigned"})


def utc_now() -> datetime:
    return datetime.now(UTC)


class SchoolError(Exception):
    """A school operation that Graph would refuse."""


class EntityNotFoundError(SchoolError):
    """No class, assignment, submission, outcome, rubric or resource with that id (where the caller looked)."""

    def __init__(self, kind: str, entity_id: str) -> None:
        super().__init__(f"{kind} {entity_id} not found")
        self.kind = kind
        self.entity_id = entity_id


class TransitionError(SchoolError):
    """A submission action the current status does not allow."""

    def __init__(self, action: str, status: str, reason: str = "") -> None:
        super().__init__(reason or f"A submission in status '{status}' cannot be {_past(action)}.")
        self.action = action
        self.status = status


class GradingError(SchoolError):
    """Points Graph rejects with `invalidGrading`: negative, not finite, or not below 9999999."""


class OutcomeWriteError(SchoolError):
    """An outcome write that does not fit the outcome (wrong kind, unknown rubric quality or level, ...)."""


class AssignmentStateError(SchoolError):
    """An assignment operation its state does not allow (publishing twice, submitting to a closed assignment, ...)."""


def _past(action: str) -> str:
    return {"submit": "submitted", "unsubmit": "unsubmitted", "return": "returned", "reassign": "reassigned"}.get(
        action, f"{action}d"
    )


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something: a user (delegated call) or an application (app-only call)."""

    user_id: str | None = None
    application_id: str | None = None

    @classmethod
    def user(cls, user_id: str) -> Actor:
        return cls(user_id=user_id)

    @classmethod
    def app(cls, app_id: str) -> Actor:
        return cls(application_id=app_id)


NOBODY = Actor()
"""Serialized as Graph's all-null identitySet."""


@dataclass(frozen=True, slots=True)
class ItemBody:
    content: str
    content_type: Literal["text", "html"] = "text"


@dataclass(frozen=True, slots=True)
class Resource:
    """An educationResource: a file (Word, Excel, ...) by fileUrl, a link, or an external web page."""

    kind: ResourceKind
    display_name: str
    url: str
    created_by: Actor
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SubmissionResource:
    id: str
    resource: Resource
    assignment_resource_url: str | None = None


@dataclass(frozen=True, slots=True)
class AssignmentResource:
    id: str
    resource: Resource
    distribute_for_student_work: bool = False


@dataclass(frozen=True, slots=True)
class RubricLevel:
    level_id: str
    display_name: str
    description: str
    points: float | None
    """None for a credit (no points) rubric."""


@dataclass(frozen=True, slots=True)
class RubricQuality:
    quality_id: str
    display_name: str
    description: str
    criteria: tuple[str, ...]
    """One criterion description per level, in level order."""
    weight: float | None = None


@dataclass(frozen=True, slots=True)
class Rubric:
    id: str
    display_name: str
    description: str
    levels: tuple[RubricLevel, ...]
    qualities: tuple[RubricQuality, ...]
    created_by: Actor
    created_at: datetime

    @property
    def max_points(self) -> float | None:
        """Total points of a points rubric (best level × every quality); None for a credit rubric."""
        best = [level.points for level in self.levels if level.points is not None]
        return max(best) * len(self.qualities) if best else None

    def quality(self, quality_id: str) -> RubricQuality | None:
        return next((q for q in self.qualities if q.quality_id == quality_id), None)

    def level(self, level_id: str) -> RubricLevel | None:
        return next((level for level in self.levels if level.level_id == level_id), None)


@dataclass(frozen=True, slots=True)
class PointsGrade:
    points: float
    graded_by: Actor
    graded_at: datetime


@dataclass(frozen=True, slots=True)
class Feedback:
    text: ItemBody
    feedback_by: Actor
    feedback_at: datetime


@dataclass(frozen=True, slots=True)
class QualityFeedback:
    quality_id: str
    feedback: ItemBody | None


@dataclass(frozen=True, slots=True)
class QualitySelection:
    quality_id: str
    column_id: str | None


@dataclass(slots=True, kw_only=True)
class Outcome:
    """educationOutcome: `last_modified_by` None serializes as null (never written), NOBODY as the all-null form."""

    id: str
    last_modified_by: Actor | None = None
    last_modified_at: datetime | None = None


@dataclass(slots=True, kw_only=True)
class PointsOutcome(Outcome):
    points: PointsGrade | None = None
    published_points: PointsGrade | None = None


@dataclass(slots=True, kw_only=True)
class FeedbackOutcome(Outcome):
    feedback: Feedback | None = None
    published_feedback: Feedback | None = None


@dataclass(slots=True, kw_only=True)
class RubricOutcome(Outcome):
    quality_feedback: tuple[QualityFeedback, ...] = ()
    selected_levels: tuple[QualitySelection, ...] = ()
    published_quality_feedback: tuple[QualityFeedback, ...] = ()
    published_selected_levels: tuple[QualitySelection, ...] = ()


@dataclass(slots=True, kw_only=True)
class FeedbackResourceOutcome(Outcome):
    resource: Resource
    resource_status: FeedbackResourceStatus = "notPublished"


@dataclass(frozen=True, slots=True)
class SubmissionState:
    """The part of a submission that actions change; kept whole so a settling action can show the previous one."""

    status: SubmissionStatus = "working"
    submitted_by: Actor = NOBODY
    submitted_at: datetime | None = None
    unsubmitted_by: Actor = NOBODY
    unsubmitted_at: datetime | None = None
    returned_by: Actor = NOBODY
    returned_at: datetime | None = None
    reassigned_by: Actor = NOBODY
    reassigned_at: datetime | None = None
    excused_by: Actor = NOBODY
    excused_at: datetime | None = None
    last_modified_by: Actor = NOBODY
    last_modified_at: datetime | None = None


@dataclass(slots=True)
class Submission:
    id: str
    class_id: str
    assignment_id: str
    student_id: str
    state: SubmissionState
    outcomes: list[Outcome] = field(default_factory=list)
    resources: list[SubmissionResource] = field(default_factory=list)
    submitted_resources: list[SubmissionResource] = field(default_factory=list)
    previous_state: SubmissionState | None = None
    """What reads still show while the last action settles (Graph runs actions asynchronously)."""
    settles_at: datetime | None = None

    def outcome(self, outcome_id: str) -> Outcome:
        wanted = outcome_id.lower()
        for outcome in self.outcomes:
            if outcome.id.lower() == wanted:
                return outcome
        raise EntityNotFoundError("outcome", outcome_id)

    def outcomes_of(self, kind: type[OutcomeT]) -> list[OutcomeT]:
        return [outcome for outcome in self.outcomes if isinstance(outcome, kind)]


@dataclass(slots=True)
class Assignment:
    id: str
    class_id: str
    display_name: str
    instructions: ItemBody
    max_points: float | None
    """None for a credit assignment (grading null)."""
    rubric_id: str | None
    created_by: Actor
    created_at: datetime
    last_modified_by: Actor
    last_modified_at: datetime
    due_at: datetime | None = None
    close_at: datetime | None = None
    assign_at: datetime | None = None
    """Requested publish time; in the future the assignment is `scheduled` and hidden from students."""
    assigned_at: datetime | None = None
    allow_late_submissions: bool = True
    allow_students_to_add_resources: bool = True
    state: AssignmentState = "draft"
    publish_settles_at: datetime | None = None
    resources: list[AssignmentResource] = field(default_factory=list)
    submissions: dict[str, Submission] = field(default_factory=dict)


class School:
    """All education state of one sandbox tenant, changed only through the operations below."""

    def __init__(self, directory: Directory, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = directory
        self.clock = clock
        self.assignments: dict[str, Assignment] = {}
        self.rubrics: dict[str, Rubric] = {}
        self.submissions: dict[str, Submission] = {}
        self._class_assignments: dict[str, list[str]] = {}

    # -- time -------------------------------------------------------------------------------------------------

    def now(self) -> datetime:
        moment = self.clock()
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    # -- reads ------------------------------------------------------------------------------------------------

    def school_class(self, class_id: str) -> SchoolClass:
        found = self.directory.classes.get(class_id) or _by_lower(self.directory.classes, class_id)
        if found is None:
            raise EntityNotFoundError("class", class_id)
        return found

    def assignments_of(self, class_id: str) -> list[Assignment]:
        return [self.assignments[a] for a in self._class_assignments.get(self.school_class(class_id).id, [])]

    def assignment(self, class_id: str, assignment_id: str) -> Assignment:
        school_class = self.school_class(class_id)
        found = self.assignments.get(assignment_id) or _by_lower(self.assignments, assignment_id)
        if found is None or found.class_id != school_class.id:
            raise EntityNotFoundError("assignment", assignment_id)
        return found

    def submission(self, class_id: str, assignment_id: str, submission_id: str) -> Submission:
        assignment = self.assignment(class_id, assignment_id)
        found = assignment.submissions.get(submission_id) or _by_lower(assignment.submissions, submission_id)
        if found is None:
            raise EntityNotFoundError("submission", submission_id)
        return found

    def outcome(self, class_id: str, assignment_id: str, submission_id: str, outcome_id: str) -> Outcome:
        return self.submission(class_id, assignment_id, submission_id).outcome(outcome_id)

    def rubric_of(self, assignment: Assignment) -> Rubric | None:
        return self.rubrics.get(assignment.rubric_id) if assignment.rubric_id else None

    def submissions_of(self, class_id: str) -> Iterator[Submission]:
        for assignment in self.assignments_of(class_id):
            yield from assignment.submissions.values()

    def assignment_status(self, assignment: Assignment) -> str:
        """The status Graph shows now: draft, published (still settling), scheduled, assigned or inactive."""
        now = self.now()
        if assignment.state != "assigned":
            return assignment.state
        if assignment.publish_settles_at is not None and now < assignment.publish_settles_at:
            return "published"
        if assignment.assign_at is not None and now < assignment.assign_at:
            return "scheduled"
        return "assigned"

    def visible_to_students(self, assignment: Assignment) -> bool:
        return self.assignment_status(assignment) in ("assigned", "inactive")

    def shown_state(self, submission: Submission) -> SubmissionState:
        """The state reads show: the previous one until the last action has settled."""
        if submission.previous_state is not None and submission.settles_at is not None:
            if self.now() < submission.settles_at:
                return submission.previous_state
            submission.previous_state = None
            submission.settles_at = None
        return submission.state

    def recently_modified(self, class_id: str) -> list[Submission]:
        """Submissions of the class changed within the last 7 days of the sandbox clock."""
        since = self.now() - RECENT_WINDOW
        found: list[Submission] = []
        for submission in self.submissions_of(class_id):
            modified = self.shown_state(submission).last_modified_at
            if modified is not None and modified >= since:
                found.append(submission)
        return found

    # -- building ---------------------------------------------------------------------------------------------

    def add_rubric(
        self,
        display_name: str,
        levels: Sequence[RubricLevel],
        qualities: Sequence[RubricQuality],
        *,
        by: Actor,
        description: str = "",
        rubric_id: str | None = None,
    ) -> Rubric:
        for quality in qualities:
            if len(quality.criteria) != len(levels):
                raise OutcomeWriteError(f"Quality {quality.quality_id} needs one criterion per level.")
        rubric = Rubric(
            id=rubric_id or stable_id("rubric", display_name),
            display_name=display_name,
            description=description,
            levels=tuple(levels),
            qualities=tuple(qualities),
            created_by=by,
            created_at=self.now(),
        )
        self.rubrics[rubric.id] = rubric
        return rubric

    def create_assignment(
        self,
        class_id: str,
        display_name: str,
        *,
        by: Actor,
        instructions: str = "",
        max_points: float | None = None,
        rubric_id: str | None = None,
        due_at: datetime | None = None,
        close_at: datetime | None = None,
        assign_at: datetime | None = None,
        allow_late_submissions: bool = True,
        resources: Iterable[AssignmentResource] = (),
        assignment_id: str | None = None,
    ) -> Assignment:
        """A new draft assignment for the whole class (assignTo: class recipient)."""
        school_class = self.school_class(class_id)
        if max_points is not None and not (math.isfinite(max_points) and 0 < max_points < MAX_POINTS_EXCLUSIVE):
            raise GradingError("maxPoints must be a positive number below 9999999.")
        if rubric_id is not None and rubric_id not in self.rubrics:
            raise EntityNotFoundError("rubric", rubric_id)
        if due_at is not None and close_at is not None and close_at < due_at:
            raise AssignmentStateError("closeDateTime must not be earlier than dueDateTime.")
        now = self.now()
        assignment = Assignment(
            id=assignment_id or stable_id("assignment", f"{school_class.id}:{display_name}"),
            class_id=school_class.id,
            display_name=display_name,
            instructions=ItemBody(instructions),
            max_points=max_points,
            rubric_id=rubric_id,
            created_by=by,
            created_at=now,
            last_modified_by=by,
            last_modified_at=now,
            due_at=due_at,
            close_at=close_at,
            assign_at=assign_at,
            allow_late_submissions=allow_late_submissions,
            resources=list(resources),
        )
        if assignment.id in self.assignments:
            raise AssignmentStateError(f"Assignment {assignment.id} already exists.")
        self.assignments[assignment.id] = assignment
        self._class_assignments.setdefault(school_class.id, []).append(assignment.id)
        return assignment

    # -- assignment operations --------------------------------------------------------------------------------

    def publish(self, class_id: str, assignment_id: str, *, by: Actor, settle: timedelta = NO_DELAY) -> Assignment:
        """Publish a draft: one working submission per student, each with empty outcomes."""
        assignment = self.assignment(class_id, assignment_id)
        if assignment.state != "draft":
            raise AssignmentStateError("Only a draft assignment can be published.")
        now = self.now()
        assignment.state = "assigned"
        assignment.assigned_at = assignment.assign_at if assignment.assign_at and assignment.assign_at > now else now
        assignment.publish_settles_at = now + settle if settle > NO_DELAY else None
        assignment.last_modified_by = by
        assignment.last_modified_at = now
        rubric = self.rubric_of(assignment)
        for student_id in self.school_class(class_id).student_ids:
            submission = Submission(
                id=stable_id("submission", f"{assignment.id}:{student_id}"),
                class_id=assignment.class_id,
                assignment_id=assignment.id,
                student_id=student_id,
                state=SubmissionState(last_modified_by=by, last_modified_at=now),
                outcomes=_empty_outcomes(assignment, rubric, now),
            )
            assignment.submissions[submission.id] = submission
            self.submissions[submission.id] = submission
        return assignment

    def deactivate(self, class_id: str, assignment_id: str, *, by: Actor) -> Assignment:
        assignment = self.assignment(class_id, assignment_id)
        if assignment.state != "assigned":
            raise AssignmentStateError("Only an assigned assignment can be deactivated.")
        return self._set_assignment_state(assignment, "inactive", by)

    def activate(self, class_id: str, assignment_id: str, *, by: Actor) -> Assignment:
        assignment = self.assignment(class_id, assignment_id)
        if assignment.state != "inactive":
            raise AssignmentStateError("Only an inactive assignment can be activated.")
        return self._set_assignment_state(assignment, "assigned", by)

    def _set_assignment_state(self, assignment: Assignment, state: AssignmentState, by: Actor) -> Assignment:
        assignment.state = state
        assignment.last_modified_by = by
        assignment.last_modified_at = self.now()
        return assignment

    # -- submission work (students) ---------------------------------------------------------------------------

    def add_submission_resource(
        self, class_id: str, assignment_id: str, submission_id: str, resource: Resource
    ) -> SubmissionResource:
        """A student attaches work (a file or link) to their submission before turning it in."""
        submission = self.submission(class_id, assignment_id, submission_id)
        item = SubmissionResource(
            id=stable_id("submission-resource", f"{submission.id}:{len(submission.resources)}:{resource.url}"),
            resource=resource,
        )
        submission.resources.append(item)
        self._touch(submission, Actor.user(submission.student_id))
        return item

    # -- submission actions -----------------------------------------------------------------------------------

    def submit(
        self, class_id: str, assignment_id: str, submission_id: str, *, by: Actor, settle: timedelta = NO_DELAY
    ) -> Submission:
        """Turn in (a teacher may turn in on a student's behalf); copies resources → submittedResources."""
        assignment = self.assignment(class_id, assignment_id)
        submission = self.submission(class_id, assignment_id, submission_id)
        status = submission.state.status
        self._check_allowed(submission, "submit")
        if by.user_id == submission.student_id:
            if status not in STUDENT_SUBMIT_FROM:
                reason = f"A student can turn in only from 'working' or 'reassigned', not from '{status}'."
                raise TransitionError("submit", status, reason)
            self._check_open(assignment)
        submission.submitted_resources = list(submission.resources)
        changed = replace(submission.state, status="submitted", submitted_by=by, submitted_at=self.now())
        return self._transition(submission, "submit", by, settle, changed)

    def unsubmit(
        self, class_id: str, assignment_id: str, submission_id: str, *, by: Actor, settle: timedelta = NO_DELAY
    ) -> Submission:
        submission = self.submission(class_id, assignment_id, submission_id)
        changed = replace(submission.state, status="working", unsubmitted_by=by, unsubmitted_at=self.now())
        return self._transition(submission, "unsubmit", by, settle, changed)

    def return_submission(
        self, class_id: str, assignment_id: str, submission_id: str, *, by: Actor, settle: timedelta = NO_DELAY
    ) -> Submission:
        """Return: status returned and the working grade, feedback and rubric copied into the published ones."""
        submission = self.submission(class_id, assignment_id, submission_id)
        self._check_allowed(submission, "return")
        self._publish_outcomes(submission)
        changed = replace(submission.state, status="returned", returned_by=by, returned_at=self.now())
        return self._transition(submission, "return", by, settle, changed)

    def reassign(
        self, class_id: str, assignment_id: str, submission_id: str, *, by: Actor, settle: timedelta = NO_DELAY
    ) -> Submission:
        """Return for revision: status reassigned; the feedback is published with it like a return."""
        submission = self.submission(class_id, assignment_id, submission_id)
        self._check_allowed(submission, "reassign")
        self._publish_outcomes(submission)
        changed = replace(submission.state, status="reassigned", reassigned_by=by, reassigned_at=self.now())
        return self._transition(submission, "reassign", by, settle, changed)

    def excuse(
        self, class_id: str, assignment_id: str, submission_id: str, *, by: Actor, settle: timedelta = NO_DELAY
    ) -> Submission:
        """Excuse: status excused; feedback, feedback resources and rubric selections are deleted."""
        submission = self.submission(class_id, assignment_id, submission_id)
        self._check_allowed(submission, "excuse")
        now = self.now()
        kept: list[Outcome] = []
        for outcome in submission.outcomes:
            if isinstance(outcome, FeedbackResourceOutcome):
                continue
            if isinstance(outcome, FeedbackOutcome) and outcome.feedback is not None:
                outcome.feedback = None
                _stamp(outcome, by, now)
            if isinstance(outcome, RubricOutcome):
                outcome.quality_feedback = tuple(QualityFeedback(q.quality_id, None) for q in outcome.quality_feedback)
                outcome.selected_levels = tuple(QualitySelection(s.quality_id, None) for s in outcome.selected_levels)
                _stamp(outcome, by, now)
            kept.append(outcome)
        submission.outcomes = kept
        changed = replace(submission.state, status="excused", excused_by=by, excused_at=now)
        return self._transition(submission, "excuse", by, settle, changed)

    def act(
        self,
        action: SubmissionAction,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        *,
        by: Actor,
        settle: timedelta = NO_DELAY,
    ) -> Submission:
        """Run a submission action by name."""
        operations = {
            "submit": self.submit,
            "unsubmit": self.unsubmit,
            "return": self.return_submission,
            "reassign": self.reassign,
            "excuse": self.excuse,
        }
        return operations[action](class_id, assignment_id, submission_id, by=by, settle=settle)

    def _check_open(self, assignment: Assignment) -> None:
        now = self.now()
        if assignment.state == "inactive":
            raise AssignmentStateError("The assignment is inactive and takes no more submissions.")
        if assignment.close_at is not None and now > assignment.close_at:
            raise AssignmentStateError("The assignment is closed.")
        if not assignment.allow_late_submissions and assignment.due_at is not None and now > assignment.due_at:
            raise AssignmentStateError("The assignment does not accept late submissions.")

    @staticmethod
    def _check_allowed(submission: Submission, action: SubmissionAction) -> None:
        if submission.state.status not in ALLOWED_FROM[action]:
            raise TransitionError(action, submission.state.status)

    def _transition(
        self,
        submission: Submission,
        action: SubmissionAction,
        by: Actor,
        settle: timedelta,
        changed: SubmissionState,
    ) -> Submission:
        self._check_allowed(submission, action)
        now = self.now()
        previous = self.shown_state(submission)
        submission.state = replace(changed, last_modified_by=by, last_modified_at=now)
        if settle > NO_DELAY:
            submission.previous_state = previous
            submission.settles_at = now + settle
        return submission

    def _publish_outcomes(self, submission: Submission) -> None:
        for outcome in submission.outcomes:
            if isinstance(outcome, PointsOutcome):
                outcome.published_points = outcome.points
            elif isinstance(outcome, FeedbackOutcome):
                outcome.published_feedback = outcome.feedback
            elif isinstance(outcome, RubricOutcome):
                outcome.published_quality_feedback = outcome.quality_feedback
                outcome.published_selected_levels = outcome.selected_levels
            elif isinstance(outcome, FeedbackResourceOutcome):
                outcome.resource_status = "published"

    def _touch(self, submission: Submission, by: Actor) -> None:
        submission.state = replace(submission.state, last_modified_by=by, last_modified_at=self.now())

    # -- grading ----------------------------------------------------------------------------------------------

    def set_points(
        self, class_id: str, assignment_id: str, submission_id: str, outcome_id: str, points: float | None, *, by: Actor
    ) -> PointsOutcome:
        """Set (or clear, with None) the working points; fills gradedBy/gradedDateTime."""
        submission = self.submission(class_id, assignment_id, submission_id)
        outcome = _expect(submission.outcome(outcome_id), PointsOutcome)
        if points is not None:
            check_points(points)
        now = self.now()
        outcome.points = PointsGrade(float(points), by, now) if points is not None else None
        _stamp(outcome, by, now)
        self._touch(submission, by)
        return outcome

    def set_feedback(
        self,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        outcome_id: str,
        text: ItemBody | None,
        *,
        by: Actor,
    ) -> FeedbackOutcome:
        """Set (or clear) the working feedback; fills feedbackBy/feedbackDateTime."""
        submission = self.submission(class_id, assignment_id, submission_id)
        outcome = _expect(submission.outcome(outcome_id), FeedbackOutcome)
        now = self.now()
        outcome.feedback = Feedback(text, by, now) if text is not None else None
        _stamp(outcome, by, now)
        self._touch(submission, by)
        return outcome

    def set_rubric(
        self,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        outcome_id: str,
        *,
        quality_feedback: Sequence[QualityFeedback] | None,
        selected_levels: Sequence[QualitySelection] | None,
        by: Actor,
    ) -> RubricOutcome:
        """Replace the feedback and/or selected level of the named rubric qualities; others keep theirs."""
        assignment = self.assignment(class_id, assignment_id)
        submission = self.submission(class_id, assignment_id, submission_id)
        outcome = _expect(submission.outcome(outcome_id), RubricOutcome)
        rubric = self.rubric_of(assignment)
        if rubric is None:
            raise OutcomeWriteError("The assignment has no rubric.")
        named = [item.quality_id for item in quality_feedback or ()] + [
            item.quality_id for item in selected_levels or ()
        ]
        for quality_id in named:
            if rubric.quality(quality_id) is None:
                raise OutcomeWriteError(f"The rubric has no quality {quality_id}.")
        for selection in selected_levels or ():
            if selection.column_id is not None and rubric.level(selection.column_id) is None:
                raise OutcomeWriteError(f"The rubric has no level {selection.column_id}.")
        if quality_feedback is not None:
            updates = {item.quality_id: item for item in quality_feedback}
            outcome.quality_feedback = tuple(updates.get(q.quality_id, q) for q in outcome.quality_feedback)
        if selected_levels is not None:
            chosen = {item.quality_id: item for item in selected_levels}
            outcome.selected_levels = tuple(chosen.get(s.quality_id, s) for s in outcome.selected_levels)
        now = self.now()
        _stamp(outcome, by, now)
        self._touch(submission, by)
        return outcome

    def add_feedback_resource(
        self, class_id: str, assignment_id: str, submission_id: str, resource: Resource, *, by: Actor
    ) -> FeedbackResourceOutcome:
        submission = self.submission(class_id, assignment_id, submission_id)
        now = self.now()
        count = len(submission.outcomes_of(FeedbackResourceOutcome))
        outcome = FeedbackResourceOutcome(
            id=stable_id("feedback-resource", f"{submission.id}:{count}:{resource.url}:{now.isoformat()}"),
            resource=resource,
            last_modified_by=by,
            last_modified_at=now,
        )
        submission.outcomes.append(outcome)
        self._touch(submission, by)
        return outcome

    def delete_outcome(
        self, class_id: str, assignment_id: str, submission_id: str, outcome_id: str, *, by: Actor
    ) -> None:
        """Only feedback-resource outcomes can be deleted; the built-in ones always exist."""
        submission = self.submission(class_id, assignment_id, submission_id)
        outcome = submission.outcome(outcome_id)
        if not isinstance(outcome, FeedbackResourceOutcome):
            raise OutcomeWriteError("Only feedback resource outcomes can be deleted.")
        submission.outcomes.remove(outcome)
        self._touch(submission, by)


def check_points(points: float) -> None:
    """Graph's rule for points under PointsGradeType."""
    if not math.isfinite(points):
        raise GradingError("Points must be a finite number when using PointsGradeType.")
    if points < 0:
        raise GradingError("Points must be greater than or equal to 0 when using PointsGradeType.")
    if points >= MAX_POINTS_EXCLUSIVE:
        raise GradingError("Points must be less than 9999999 when using PointsGradeType.")


def _expect(outcome: Outcome, kind: type[OutcomeT]) -> OutcomeT:
    if not isinstance(outcome, kind):
        raise OutcomeWriteError(f"Outcome {outcome.id} is not an {kind.__name__}.")
    return outcome


def _stamp(outcome: Outcome, by: Actor, now: datetime) -> None:
    outcome.last_modified_by = by
    outcome.last_modified_at = now


def _by_lower(items: dict[str, T], key: str) -> T | None:
    """Graph ids are GUIDs and compare case-insensitively."""
    wanted = key.lower()
    return next((value for k, value in items.items() if k.lower() == wanted), None)


def _empty_outcomes(assignment: Assignment, rubric: Rubric | None, now: datetime) -> list[Outcome]:
    outcomes: list[Outcome] = [FeedbackOutcome(id=FEEDBACK_OUTCOME_ID)]
    if assignment.max_points is not None:
        outcomes.append(PointsOutcome(id=POINTS_OUTCOME_ID))
    if rubric is not None:
        blank_feedback = tuple(QualityFeedback(q.quality_id, None) for q in rubric.qualities)
        blank_levels = tuple(QualitySelection(q.quality_id, None) for q in rubric.qualities)
        outcomes.append(
            RubricOutcome(
                id=RUBRIC_OUTCOME_ID,
                last_modified_by=NOBODY,
                last_modified_at=now,
                quality_feedback=blank_feedback,
                selected_levels=blank_levels,
                published_quality_feedback=blank_feedback,
                published_selected_levels=blank_levels,
            )
        )
    return outcomes
