"""Seeded schools: `default_school()` (Contoso High, deterministic) and `generate_school()` (big benchmark schools).

Every timestamp is relative to `now` (default: the current UTC hour); every id comes from `stable_id`, so runs agree.
The default school is built on `default_directory()`. Per-student scenario letters, cycled over the class roster:
w working · u turned in then undone · s submitted on time · l submitted late · g graded, not returned · r returned ·
a returned for revision (reassigned) · b reassigned then resubmitted · x excused. Dates are days from `now`.

Biology 101 (Rosa Martinez)
  bio-cells       Cell structure worksheet  points 10                  assigned −12, due −5  sslsglrgwrbaxsuslgrwsslrw
  bio-microscope  Microscope lab report     points 20 + points rubric  assigned −4, due +3, close +10  sgsswsgwsswgssw
  bio-ecosystem   Ecosystem reflection      credit (grading null)      assigned −9, due −2, close +5   slrwsrlwax
  bio-quiz        Photosynthesis quiz       points 100, draft          due +7
  bio-genetics    Genetics project          points 100, scheduled      assign +2, due +16          (all working)
  bio-unit1       Unit 1 review             points 10, inactive        assigned −40, due −33       rrrrxrrgrr
Chemistry 201 (Rosa Martinez, David Okafor)
  chem-stoich     Stoichiometry problem set points 100                 assigned −6, no due date    ssswsgsrssws
  chem-safety     Lab safety essay          credit + credit rubric     assigned −10, due −3, close −1  sslgrwlsx
  chem-titration  Titration lab             points 20, no late work    assigned −2, due +1         wswsw
  chem-periodic   Periodic trends notes     credit, draft              no dates
World History 9 (David Okafor)
  hist-sources    Primary source analysis   points 100                 assigned −14, due −7, close +3  llslbgarxswl
  hist-timeline   Timeline project          points 20                  assigned −3, due +4         swssgw
  hist-reading    Weekly reading log        credit                     assigned −20, no due date   wswrwr
  hist-essay      Revolution essay          points 100, draft          due +10

Turned-in work carries a Word file and/or a link where the plan says so (worksheet, lab report, reflection, timeline).
Rubrics: "Lab report rubric" (points: Excellent 5 / Proficient 3 / Developing 1 over four qualities = 20) and
"Essay rubric" (credit: Exceeds / Meets / Approaching over three qualities).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sandbox.directory import (
    DOMAIN,
    LAST_NAMES,
    TENANT_ID,
    Directory,
    EducationSchool,
    SchoolClass,
    User,
    default_apps,
    default_directory,
    stable_id,
    student_name,
)
from sandbox.school import (
    Actor,
    Assignment,
    FeedbackOutcome,
    ItemBody,
    PointsOutcome,
    QualitySelection,
    Resource,
    ResourceKind,
    Rubric,
    RubricLevel,
    RubricOutcome,
    RubricQuality,
    School,
    Submission,
)

PlanState = Literal["draft", "scheduled", "assigned", "inactive"]
SCENARIOS = "wuslgrabx"
FEEDBACK_LINES = (
    "Clear reasoning throughout. Check your units in the last part.",
    "Good start. Add evidence for your second claim.",
    "Well organised and complete. Nice work.",
    "Re-read the instructions for part two and expand your answer.",
    "Strong analysis. Your conclusion could be more precise.",
    "Neat and accurate. Show your working next time.",
)
INACTIVE_SINCE_DAYS = 25
LAB_RUBRIC = "lab"
ESSAY_RUBRIC = "essay"


@dataclass(frozen=True, slots=True)
class AssignmentPlan:
    """One seeded assignment: what it is, when things happen (days from now) and what each student did."""

    key: str
    display_name: str
    instructions: str
    max_points: float | None
    state: PlanState
    created_days: float
    """Days from now the draft was created (negative = in the past)."""
    assigned_days: float | None = None
    """Days from now it was published; for a scheduled assignment, when it will be assigned (positive)."""
    due_days: float | None = None
    close_days: float | None = None
    rubric: str | None = None
    allow_late: bool = True
    profile: str = ""
    """Scenario letters (see the module docstring), cycled over the class's students."""
    attachments: tuple[ResourceKind, ...] = ()


DEFAULT_PLANS: dict[str, tuple[AssignmentPlan, ...]] = {
    "BIO101": (
        AssignmentPlan(
            "bio-cells",
            "Cell structure worksheet",
            "Label the organelles of a plant and an animal cell and describe what each one does.",
            10,
            "assigned",
            -13,
            -12,
            -5,
            profile="sslsglrgwrbaxsuslgrwsslrw",
            attachments=("word",),
        ),
        AssignmentPlan(
            "bio-microscope",
            "Microscope lab report",
            "Write up the onion-skin microscope lab using the lab report template.",
            20,
            "assigned",
            -5,
            -4,
            3,
            10,
            rubric=LAB_RUBRIC,
            profile="sgsswsgwsswgssw",
            attachments=("word", "link"),
        ),
        AssignmentPlan(
            "bio-ecosystem",
            "Ecosystem reflection",
            "Reflect on the food web we built in class (one page).",
            None,
            "assigned",
            -10,
            -9,
            -2,
            5,
            profile="slrwsrlwax",
            attachments=("link",),
        ),
        AssignmentPlan(
            "bio-quiz", "Photosynthesis quiz", "Ten questions on light reactions.", 100, "draft", -1, due_days=7
        ),
        AssignmentPlan(
            "bio-genetics",
            "Genetics project",
            "Build a Punnett-square poster for a trait of your choice.",
            100,
            "scheduled",
            -2,
            2,
            16,
        ),
        AssignmentPlan(
            "bio-unit1",
            "Unit 1 review",
            "Review questions for unit 1.",
            10,
            "inactive",
            -41,
            -40,
            -33,
            profile="rrrrxrrgrr",
        ),
    ),
    "CHEM201": (
        AssignmentPlan(
            "chem-stoich",
            "Stoichiometry problem set",
            "Problems 1–12 from chapter 4.",
            100,
            "assigned",
            -7,
            -6,
            profile="ssswsgsrssws",
        ),
        AssignmentPlan(
            "chem-safety",
            "Lab safety essay",
            "Explain three lab safety rules and why they matter.",
            None,
            "assigned",
            -11,
            -10,
            -3,
            -1,
            rubric=ESSAY_RUBRIC,
            profile="sslgrwlsx",
        ),
        AssignmentPlan(
            "chem-titration",
            "Titration lab",
            "Record your titration results in the data sheet.",
            20,
            "assigned",
            -3,
            -2,
            1,
            allow_late=False,
            profile="wswsw",
        ),
        AssignmentPlan("chem-periodic", "Periodic trends notes", "Summarise the periodic trends.", None, "draft", -1),
    ),
    "HIST9": (
        AssignmentPlan(
            "hist-sources",
            "Primary source analysis",
            "Analyse the two letters in the resources folder.",
            100,
            "assigned",
            -15,
            -14,
            -7,
            3,
            profile="llslbgarxswl",
        ),
        AssignmentPlan(
            "hist-timeline",
            "Timeline project",
            "Build a timeline of the French Revolution with at least ten events.",
            20,
            "assigned",
            -4,
            -3,
            4,
            profile="swssgw",
            attachments=("link",),
        ),
        AssignmentPlan(
            "hist-reading",
            "Weekly reading log",
            "Log what you read each week.",
            None,
            "assigned",
            -21,
            -20,
            profile="wswrwr",
        ),
        AssignmentPlan("hist-essay", "Revolution essay", "1000 words on causes.", 100, "draft", -2, due_days=10),
    ),
}


def current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


class _SeedClock:
    """The clock a school is built with: the seed moves it to each event's time."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _running_clock(start: datetime) -> Callable[[], datetime]:
    """`start`, then advancing with real time (so later changes are newer than the seed)."""
    origin = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - origin)


def _fraction(index: int, salt: int) -> float:
    """A deterministic pseudo-random number in [0, 1) for student `index`."""
    return ((index * 7919 + salt * 104729 + 17) % 1009) / 1009


def _between(start: datetime, end: datetime, fraction: float) -> datetime:
    return start + (end - start) * fraction


def add_rubrics(school: School, at: datetime, by: Actor) -> dict[str, Rubric]:
    """The lab (points) and essay (credit) rubrics every seeded school has."""
    lab_levels = [
        RubricLevel(stable_id("rubric-level", "lab:excellent"), "Excellent", "Meets every expectation.", 5),
        RubricLevel(stable_id("rubric-level", "lab:proficient"), "Proficient", "Meets most expectations.", 3),
        RubricLevel(stable_id("rubric-level", "lab:developing"), "Developing", "Meets few expectations.", 1),
    ]
    lab_qualities = [
        RubricQuality(
            stable_id("rubric-quality", f"lab:{name.lower()}"),
            name,
            f"{name} of the lab report.",
            (f"{name} is complete and precise.", f"{name} is mostly complete.", f"{name} is missing or unclear."),
            25,
        )
        for name in ("Hypothesis", "Method", "Results", "Analysis")
    ]
    essay_levels = [
        RubricLevel(stable_id("rubric-level", "essay:exceeds"), "Exceeds", "Goes beyond the brief.", None),
        RubricLevel(stable_id("rubric-level", "essay:meets"), "Meets", "Does what the brief asks.", None),
        RubricLevel(stable_id("rubric-level", "essay:approaching"), "Approaching", "Partly there.", None),
    ]
    essay_qualities = [
        RubricQuality(
            stable_id("rubric-quality", f"essay:{name.lower()}"),
            name,
            f"{name} of the essay.",
            (f"Excellent {name.lower()}.", f"Adequate {name.lower()}.", f"Weak {name.lower()}."),
        )
        for name in ("Argument", "Evidence", "Clarity")
    ]
    clock = school.clock
    school.clock = lambda: at
    try:
        return {
            LAB_RUBRIC: school.add_rubric(
                "Lab report rubric", lab_levels, lab_qualities, by=by, rubric_id=stable_id("rubric", "lab-report")
            ),
            ESSAY_RUBRIC: school.add_rubric(
                "Essay rubric", essay_levels, essay_qualities, by=by, rubric_id=stable_id("rubric", "essay")
            ),
        }
    finally:
        school.clock = clock


class _SchoolBuilder:
    """Replays each plan through the School's own operations at the planned times."""

    def __init__(self, directory: Directory, now: datetime) -> None:
        self.now = now
        self.clock = _SeedClock(now - timedelta(days=60))
        self.school = School(directory, clock=self.clock)
        any_teacher = next((u for u in directory.users.values() if u.role == "teacher"), None)
        author = Actor.user(any_teacher.id) if any_teacher else Actor()
        self.rubrics = add_rubrics(self.school, now - timedelta(days=60), author)

    def days(self, offset: float | None) -> datetime | None:
        return None if offset is None else self.now + timedelta(days=offset)

    def build(self, school_class: SchoolClass, plan: AssignmentPlan) -> Assignment:
        school = self.school
        teacher = Actor.user(school_class.teacher_ids[0])
        created = self.now + timedelta(days=plan.created_days)
        self.clock.at = created
        assign_at = self.days(plan.assigned_days) if plan.state == "scheduled" else None
        assignment = school.create_assignment(
            school_class.id,
            plan.display_name,
            by=teacher,
            instructions=plan.instructions,
            max_points=plan.max_points,
            rubric_id=self.rubrics[plan.rubric].id if plan.rubric else None,
            due_at=self.days(plan.due_days),
            close_at=self.days(plan.close_days),
            assign_at=assign_at,
            allow_late_submissions=plan.allow_late,
            assignment_id=stable_id("assignment", f"{school_class.id}:{plan.key}"),
        )
        if plan.state == "draft":
            return assignment
        published = created + timedelta(hours=2) if plan.state == "scheduled" else self.days(plan.assigned_days)
        self.clock.at = published or created
        school.publish(school_class.id, assignment.id, by=teacher)
        if plan.profile:
            for index, submission in enumerate(assignment.submissions.values()):
                scenario = plan.profile[index % len(plan.profile)]
                self.play(assignment, submission, scenario, index, teacher, plan)
        if plan.state == "inactive":
            self.clock.at = self.now - timedelta(days=INACTIVE_SINCE_DAYS)
            school.deactivate(school_class.id, assignment.id, by=teacher)
        return assignment

    def play(
        self,
        assignment: Assignment,
        submission: Submission,
        scenario: str,
        index: int,
        teacher: Actor,
        plan: AssignmentPlan,
    ) -> None:
        """Act out one student's scenario through the school's operations."""
        if scenario == "w":
            return
        school, ids = self.school, (assignment.class_id, assignment.id, submission.id)
        start = assignment.assigned_at or self.now
        end = self.now - timedelta(minutes=30)
        if plan.state == "inactive":
            end = self.now - timedelta(days=INACTIVE_SINCE_DAYS, minutes=30)
        if assignment.close_at is not None:
            end = min(end, assignment.close_at)
        student = Actor.user(submission.student_id)
        if scenario == "x":
            self.clock.at = _between(start, end, 0.4 + 0.4 * _fraction(index, 1))
            school.excuse(*ids, by=teacher)
            return
        due = assignment.due_at
        late = scenario == "l" and due is not None and due < end
        on_time_end = min(due, end) if due is not None else end
        first = (
            _between(due, end, 0.15 + 0.6 * _fraction(index, 2))
            if late and due is not None
            else _between(start, on_time_end, 0.2 + 0.5 * _fraction(index, 3))
        )
        self.attach(submission, plan, first - timedelta(minutes=20), index)
        self.clock.at = first
        school.submit(*ids, by=student)
        if scenario == "u":
            self.clock.at = _between(first, end, 0.5)
            school.unsubmit(*ids, by=student)
            return
        if scenario in ("s", "l"):
            return
        graded = _between(first, end, 0.3 + 0.3 * _fraction(index, 4))
        self.clock.at = graded
        self.grade(assignment, submission, index, teacher)
        if scenario == "g":
            return
        self.clock.at = _between(graded, end, 0.4)
        if scenario == "r":
            school.return_submission(*ids, by=teacher)
            return
        school.reassign(*ids, by=teacher)
        if scenario == "b":
            self.clock.at = _between(self.clock.at, end, 0.5)
            school.submit(*ids, by=student)

    def attach(self, submission: Submission, plan: AssignmentPlan, at: datetime, index: int) -> None:
        if submission.resources:
            return
        student = Actor.user(submission.student_id)
        self.clock.at = at
        for number, kind in enumerate(plan.attachments):
            item = stable_id("work", f"{submission.id}:{number}")
            if kind == "link":
                resource = Resource("link", "Research notes", f"https://{DOMAIN}/notes/{item}", student, at)
            else:
                name = f"{plan.display_name}.docx" if kind == "word" else f"{plan.display_name} ({kind})"
                resource = Resource(kind, name, f"https://{DOMAIN}/drive/items/{item}", student, at)
            self.school.add_submission_resource(submission.class_id, submission.assignment_id, submission.id, resource)

    def grade(self, assignment: Assignment, submission: Submission, index: int, teacher: Actor) -> None:
        school, ids = self.school, (assignment.class_id, assignment.id, submission.id)
        rubric = school.rubric_of(assignment)
        rubric_points = 0.0
        for outcome in submission.outcomes:
            if isinstance(outcome, RubricOutcome) and rubric is not None:
                selections = []
                for number, quality in enumerate(rubric.qualities):
                    level = rubric.levels[int(_fraction(index, 10 + number) * len(rubric.levels))]
                    rubric_points += level.points or 0.0
                    selections.append(QualitySelection(quality.quality_id, level.level_id))
                school.set_rubric(*ids, outcome.id, quality_feedback=None, selected_levels=selections, by=teacher)
        for outcome in submission.outcomes:
            if isinstance(outcome, PointsOutcome) and assignment.max_points is not None:
                if rubric is not None and rubric.max_points is not None:
                    points = rubric_points
                else:
                    points = round(assignment.max_points * (0.5 + 0.5 * _fraction(index, 5)) * 2) / 2
                school.set_points(*ids, outcome.id, points, by=teacher)
            elif isinstance(outcome, FeedbackOutcome):
                line = FEEDBACK_LINES[index % len(FEEDBACK_LINES)]
                school.set_feedback(*ids, outcome.id, ItemBody(line), by=teacher)

    def finish(self, clock: Callable[[], datetime]) -> School:
        self.school.clock = clock
        return self.school


def _build(directory: Directory, plans: Mapping[str, Sequence[AssignmentPlan]], now: datetime | None) -> School:
    start = now if now is not None else current_hour()
    builder = _SchoolBuilder(directory, start)
    for school_class in directory.classes.values():
        for plan in plans.get(school_class.id, ()):
            builder.build(school_class, plan)
    return builder.finish(_running_clock(start) if now is not None else _real_clock)


def _real_clock() -> datetime:
    return datetime.now(UTC)


def default_school(now: datetime | None = None) -> School:
    """Contoso High (see the module docstring): deterministic ids; times relative to `now` (default: this UTC hour).

    With `now` given, the school's clock starts at `now` and advances with real time; otherwise it is the real clock.
    """
    directory = default_directory()
    by_code = {c.class_code: c.id for c in directory.classes.values()}
    plans = {by_code[code]: list(class_plans) for code, class_plans in DEFAULT_PLANS.items()}
    return _build(directory, plans, now)


# -- generated schools -----------------------------------------------------------------------------------------

SUBJECTS = (
    "Biology",
    "Chemistry",
    "Physics",
    "History",
    "Geography",
    "Literature",
    "Algebra",
    "Art",
    "Music",
    "Civics",
)


def _template(slot: int, rng: random.Random, roster: int, waiting_first: bool) -> AssignmentPlan:
    """The slot-th assignment of a generated class: a cycle over every kind (most of them assigned)."""
    kinds: list[tuple[str, float | None, PlanState, str | None]] = [
        ("Problem set", 100, "assigned", None),
        ("Worksheet", 10, "assigned", None),
        ("Reflection", None, "assigned", None),
        ("Lab report", 20, "assigned", LAB_RUBRIC),
        ("Essay", None, "assigned", ESSAY_RUBRIC),
        ("Practice", 20, "assigned", None),
        ("Quiz", 100, "assigned", None),
        ("Project", 100, "draft", None),
        ("Presentation", 100, "scheduled", None),
        ("Old review", 10, "inactive", None),
    ]
    name, max_points, state, rubric = kinds[slot % len(kinds)]
    assigned = -float(rng.randint(2, 25))
    due: float | None = assigned + rng.randint(3, 10)
    close: float | None = None
    if name == "Practice":
        due = None
    elif name == "Worksheet" and due is not None:
        due = abs(due) + 1  # due in the future
    elif name == "Quiz" and due is not None:
        close = due + 4
    if state == "scheduled":
        assigned = float(rng.randint(1, 5))
        due = assigned + 7
    past_due = due is not None and due < 0
    letters = "wuslgrabx" if past_due else "wusgrabx"
    weights = [3, 1, 5, 3, 2, 2, 1, 1, 1] if past_due else [3, 1, 6, 2, 2, 1, 1, 1]
    profile = "".join(rng.choices(letters, weights=weights, k=roster))
    if waiting_first:
        profile = "sss" + profile[3:]
    return AssignmentPlan(
        f"gen-{slot}",
        f"{name} {slot // len(kinds) + 1}",
        f"{name} instructions.",
        max_points,
        state,
        min(assigned, 0) - 1 if state != "scheduled" else -1,
        assigned,
        due,
        close,
        rubric=rubric,
        profile=profile if state in ("assigned", "inactive") else "",
    )


def generate_school(
    classes: int,
    assignments_per_class: int,
    students_per_class: int,
    now: datetime | None = None,
    seed: int = 0,
) -> School:
    """A big school with the default school's invariants (every kind and status; each class has work to grade).

    Each class has its own students; one teacher per two classes; ids are stable for the same arguments.
    """
    if classes < 1 or assignments_per_class < 1 or students_per_class < 3:
        raise ValueError("A generated school needs ≥1 class, ≥1 assignment per class and ≥3 students per class.")
    rng = random.Random(seed)
    directory = Directory(tenant_id=TENANT_ID, apps=default_apps())
    school_record = EducationSchool(stable_id("school", f"generated-{seed}"), "Generated High School")
    directory.schools[school_record.id] = school_record
    teachers: list[User] = []
    for number in range((classes + 1) // 2):
        surname = LAST_NAMES[number % len(LAST_NAMES)]
        upn = f"teacher{number + 1}@{DOMAIN}"
        teacher = User(
            stable_id("user", upn), upn, f"Teacher {surname}", "Teacher", surname, "teacher", None, f"T{number + 1:04d}"
        )
        teachers.append(teacher)
        directory.users[teacher.id] = teacher
    plans: dict[str, list[AssignmentPlan]] = {}
    for class_number in range(classes):
        code = f"GEN{class_number + 1:03d}"
        student_ids: list[str] = []
        for seat in range(students_per_class):
            index = class_number * students_per_class + seat
            given, surname = student_name(index)
            upn = f"{given}.{surname}.{index + 1}@{DOMAIN}".lower()
            student = User(
                stable_id("user", upn), upn, f"{given} {surname}", given, surname, "student", f"S{index + 1:05d}"
            )
            directory.users[student.id] = student
            student_ids.append(student.id)
        subject = SUBJECTS[class_number % len(SUBJECTS)]
        school_class = SchoolClass(
            id=stable_id("class", f"{seed}:{code}"),
            display_name=f"{subject} {class_number + 1:03d}",
            mail_nickname=code.lower(),
            class_code=code,
            description=f"{subject} at Generated High School",
            school_id=school_record.id,
            teacher_ids=[teachers[class_number // 2].id],
            student_ids=student_ids,
        )
        directory.classes[school_class.id] = school_class
        plans[school_class.id] = [
            _template(slot, rng, students_per_class, waiting_first=slot == 0) for slot in range(assignments_per_class)
        ]
    return _build(directory, plans, now)
