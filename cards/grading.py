"""The grading card (one submission at a time: points, feedback, rubric levels) and its follow-ups: all graded,
confirm steps, grade and undo conflicts; the payloads they carry (grade, skip, return, returnAll, reassign, excuse,
resolveConflict, undo); and a submission's grade in the teacher's words."""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Final, Literal, Self
from zoneinfo import ZoneInfo

from microsoft_teams import cards as ac
from pydantic import AwareDatetime, BeforeValidator, Field, PlainSerializer, PlainValidator, model_validator

from cards.blocks import (
    BLANK_IS_NONE,
    CARD_VERSION,
    ID_PATTERN,
    STALE_CARD,
    ActionDataError,
    ActionPayload,
    Banner,
    Card,
    Flag,
    Id,
    Nonce,
    buttons,
    card,
    due_text,
    execute,
    facts,
    heading,
    is_blank,
    largest_fitting,
    late_text,
    line,
    moment_with_relative,
    open_url,
    plain,
    plural,
    section,
    turned_in_text,
    whole_number,
)
from cards.lists import OpenGradingAction, ShowUngradedAction
from graph.models import (
    Actor,
    Assignment,
    EducationClass,
    Outcomes,
    Rubric,
    RubricSelection,
    Submission,
    format_datetime,
)

FEEDBACK_MAX_LENGTH: Final = 4000
POINTS_LIMIT: Final = Decimal(10_000_000)
"""Graph rejects points of 9999999 and more (`invalidGrading`); we stop just below."""
LEVEL_INPUT_PREFIX: Final = "level_"
MAX_RUBRIC_LEVELS: Final = 50
MAX_RESOURCE_LINKS: Final = 10
"""Graph allows at most 10 resources per submission."""
FEEDBACK_PREVIEW: Final = 600
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,7})?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)


def format_points(points: Decimal | float) -> str:
    """18 → "18", 18.5 → "18.5", 18.25 → "18.25" (no trailing zeros, no exponent)."""
    text = f"{Decimal(str(points)) if isinstance(points, float) else points:f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) or "0"


def score_text(points: Decimal | float | None, max_points: float | None) -> str:
    """ "18/20", "18 points" (no maximum) or "no points"."""
    if points is None:
        return "no points"
    if max_points is None:
        return f"{format_points(points)} points"
    return f"{format_points(points)}/{format_points(max_points)}"


@dataclasses.dataclass(frozen=True, slots=True)
class GradeValues:
    """One side of a grade: the working values (what the teacher set) or the returned ones (what the student saw)."""

    points: float | None
    feedback: str | None
    levels: tuple[RubricSelection, ...] = ()

    @property
    def is_empty(self) -> bool:
        return self.points is None and not self.feedback and not self.levels


def working_values(outcomes: Outcomes | None) -> GradeValues:
    """The teacher's current (draft) grade: `points`, `feedback`, `rubricQualitySelectedLevels`."""
    if outcomes is None:
        return GradeValues(None, None)
    points = outcomes.points.points.points if outcomes.points and outcomes.points.points else None
    feedback = outcomes.feedback.feedback.text if outcomes.feedback and outcomes.feedback.feedback else None
    return GradeValues(points, feedback or None, outcomes.rubric.selected_levels if outcomes.rubric else ())


def returned_values(outcomes: Outcomes | None) -> GradeValues:
    """What the student was last shown: the `published*` copies made by Return."""
    if outcomes is None:
        return GradeValues(None, None)
    points = outcomes.points.published_points if outcomes.points else None
    feedback = outcomes.feedback.published_feedback if outcomes.feedback else None
    levels = outcomes.rubric.published_selected_levels if outcomes.rubric else ()
    return GradeValues(points.points if points else None, (feedback.text if feedback else None) or None, levels)


def last_change(outcomes: Outcomes | None) -> tuple[datetime | None, Actor | None]:
    """When the points, feedback or rubric outcome last changed — the grade action's `knownModified`, which the bot
    compares with Graph's to detect conflicts — and by whom (None when unknown)."""
    changes = [
        (outcome.last_modified_at, outcome.last_modified_by)
        for outcome in ((outcomes.points, outcomes.feedback, outcomes.rubric) if outcomes else ())
        if outcome is not None and outcome.last_modified_at is not None
    ]
    return max(changes, key=lambda change: change[0]) if changes else (None, None)


def parse_points(value: object) -> Decimal | None:
    """Points typed into a card: None when empty, else a finite decimal 0 ≤ p < 1e7 with at most 2 decimals."""
    if is_blank(value):
        return None
    number = Decimal("NaN")  # what is not a number (bool, list, non-ASCII digits, huge text…) reads as NaN
    with suppress(InvalidOperation):
        if isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, int) and not isinstance(value, bool):
            number = Decimal(value)
        elif isinstance(value, str) and len(value) <= 32 and value.isascii():
            number = Decimal(value.strip())
    if not number.is_finite():
        raise ActionDataError("Points must be a number, for example 7 or 7.5.")
    if number < 0:
        raise ActionDataError("Points can't be negative.")
    if number >= POINTS_LIMIT:
        raise ActionDataError("Points must be less than 10,000,000.")
    if number.quantize(Decimal("0.01")) != number:
        raise ActionDataError("Points can have at most 2 decimals.")
    if number == number.to_integral_value():
        return number.quantize(Decimal(1)).copy_abs()  # "18.0", "1e3" and "-0" read as 18, 1000 and 0
    return number


def parse_feedback(value: object) -> str | None:
    """Feedback typed into a card: None when empty; at most 4,000 characters, no control characters but \\n, \\t."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ActionDataError(STALE_CARD)
    if len(value) > FEEDBACK_MAX_LENGTH * 4:
        raise ActionDataError(f"Feedback is too long: the limit is {FEEDBACK_MAX_LENGTH} characters.")
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > FEEDBACK_MAX_LENGTH:
        raise ActionDataError(f"Feedback is too long ({len(text)} characters): the limit is {FEEDBACK_MAX_LENGTH}.")
    if any(char not in "\n\t" and unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise ActionDataError("Feedback contains characters that can't be saved. Please retype it.")
    return text or None


def _timestamp(value: object) -> object:
    """Graph's own form only (up to 7 decimals and an offset); pydantic then reads it as an aware datetime."""
    if is_blank(value):
        return None
    if isinstance(value, str) and len(value) <= 40 and _TIMESTAMP.fullmatch(value.strip()):
        return value.strip()
    raise ValueError("not a timestamp")


def _levels(value: object) -> tuple[RubricSelection, ...]:
    """Rubric levels as card data carries them: {qualityId: levelId}, in quality order."""
    if value is None:
        return ()
    if not isinstance(value, Mapping) or len(value) > MAX_RUBRIC_LEVELS:
        raise ValueError("not a mapping of levels")
    if not all(isinstance(text, str) and re.fullmatch(ID_PATTERN, text) for pair in value.items() for text in pair):
        raise ValueError("not a mapping of ids")
    return tuple(RubricSelection(quality, level) for quality, level in sorted(value.items()))


Points = Annotated[
    Decimal | None,
    PlainValidator(parse_points),
    PlainSerializer(lambda points: None if points is None else format_points(points)),
]
Feedback = Annotated[str | None, PlainValidator(parse_feedback)]
Levels = Annotated[
    tuple[RubricSelection, ...],
    PlainValidator(_levels),
    PlainSerializer(lambda levels: {level.quality_id: level.column_id for level in levels}),
]
Timestamp = Annotated[
    AwareDatetime | None,
    BeforeValidator(_timestamp),
    PlainSerializer(lambda at: format_datetime(at) if at else ""),
]
"""Sent as "" for no time, so that a card's key is there even when the grade was never set."""
WriteId = Annotated[int, BeforeValidator(whole_number), Field(ge=1, le=2**62)]


def _require_grade(points: Decimal | None, feedback: str | None, levels: tuple[RubricSelection, ...]) -> None:
    if points is None and feedback is None and not levels:
        raise ActionDataError("Enter points or feedback before saving.", "points")


class _OnSubmission(ActionPayload):
    """The ids every action on one submission carries first."""

    class_id: Id
    assignment_id: Id
    submission_id: Id


class GradeAction(_OnSubmission, verb="grade"):
    """Save a working grade (the student sees it once returned). The card's data carries the ids, `knownModified`
    (the latest outcome change the card showed; "" if never graded), `force` and `nonce`; points, feedback and
    `level_<qualityId>` arrive as inputs merged into it (None when empty)."""

    points: Annotated[Points, Field(default=None, exclude=True)]
    feedback: Annotated[Feedback, Field(default=None, exclude=True)]
    levels: Annotated[Levels, Field(exclude=True)]
    known_modified: Timestamp
    force: Flag
    nonce: Nonce

    @model_validator(mode="before")
    @classmethod
    def _level_inputs(cls, data: Any) -> Any:
        """The rubric's inputs (`level_<qualityId>`, empty when no level is picked) as one `levels` mapping."""
        picked = {
            key.removeprefix(LEVEL_INPUT_PREFIX): value
            for key, value in data.items()
            if isinstance(key, str) and key.startswith(LEVEL_INPUT_PREFIX) and not is_blank(value)
        }
        return {**data, "levels": picked}

    @model_validator(mode="after")
    def _something_to_save(self) -> Self:
        _require_grade(self.points, self.feedback, self.levels)
        return self


class ShowGradingAction(OpenGradingAction, verb="showGrading"):
    """Back to the grading card in place of this one (Cancel on a confirm step); `openGrading` opens it below."""


class SkipAction(_OnSubmission, verb="skip"):
    """On to the next submission waiting, leaving this one as it is."""


class _SubmissionStep(_OnSubmission):
    """Shared shape of return / reassign / excuse: a step on one submission, asked first and then `confirmed`."""

    VERB: ClassVar[Literal["return", "reassign", "excuse"]]  # Graph's action for it, too
    confirmed: Flag
    nonce: Nonce


class ReturnAction(_SubmissionStep, verb="return"):
    """Return one submission: its working grade becomes visible to the student."""


class ReassignAction(_SubmissionStep, verb="reassign"):
    """Return for revision: the student can change the work and turn it in again."""


class ExcuseAction(_SubmissionStep, verb="excuse"):
    """Excuse the student from the assignment (deletes feedback and rubric selections)."""


Step = ReturnAction | ReassignAction | ExcuseAction
"""A confirmed step on one submission; its VERB is the Graph action it takes."""


class ReturnAllAction(ActionPayload, verb="returnAll"):
    """Return every graded, not yet returned submission of an assignment; `expected_count` is what the card showed."""

    class_id: Id
    assignment_id: Id
    confirmed: Flag
    expected_count: Annotated[int, BeforeValidator(whole_number), Field(ge=0, le=100_000)]
    nonce: Nonce


class ResolveConflictAction(_OnSubmission, verb="resolveConflict"):
    """After a conflict: keep the teacher's values (`mine`) over the grade the conflict card showed — last changed at
    `known_modified`, so a change after that is a new conflict — or the newer ones (`theirs`)."""

    choice: Literal["mine", "theirs"]
    points: Annotated[Points, Field(default=None)]
    feedback: Annotated[Feedback, Field(default=None)]
    nonce: Nonce
    levels: Levels = ()
    known_modified: Timestamp = None

    @model_validator(mode="after")
    def _mine_has_values(self) -> Self:
        if self.choice == "mine":
            _require_grade(self.points, self.feedback, self.levels)
        return self


class UndoAction(ActionPayload, verb="undo"):
    """Undo the save `write_id` names (Gradebot's id for that write; without it, nothing), once. `anyway` is the
    teacher's choice on the undo conflict card to replace the grade shown there, last changed at `known_modified`."""

    nonce: Nonce
    write_id: Annotated[WriteId | None, BLANK_IS_NONE] = None
    anyway: Flag = False
    known_modified: Timestamp = None

    @model_validator(mode="after")
    def _anyway_names_a_save(self) -> Self:
        if self.anyway and self.write_id is None:
            raise ActionDataError(STALE_CARD, "writeId")
        return self


def _note(template: str, points: float | None) -> str:
    """`template` ("({} pts)") filled with the points, as "18"; "" when there are none."""
    return template.format(format_points(points)) if points is not None else ""


def _grade_inputs(assignment: Assignment, rubric: Rubric | None, values: GradeValues) -> list[ac.CardElement | None]:
    """Points (when the assignment has a maximum), a level per rubric quality and feedback, filled with `values`."""
    maximum = format_points(assignment.max_points) if assignment.max_points is not None else None
    inputs: list[ac.CardElement | None] = [
        # No min/max: a client that clamps would turn 150 into full marks without a word. The bound is in the
        # label, and the server checks what was typed.
        ac.NumberInput(
            id="points",
            label=f"Points (0–{maximum})",
            placeholder=f"0–{maximum}",
            error_message=f"Enter points from 0 to {maximum}.",
            value=values.points,
        )
        if maximum is not None
        else None
    ]
    if rubric is not None and rubric.qualities:
        level_ids = {level.level_id for level in rubric.levels}
        chosen = {level.quality_id: level.column_id for level in values.levels if level.column_id in level_ids}
        choices = [
            ac.Choice(title=plain(level.display_name, 60) + _note(" ({} pts)", level.points), value=level.level_id)
            for level in rubric.levels
        ]
        inputs.append(line(f"Rubric: {plain(rubric.display_name)}", bold=True))
        inputs.extend(
            ac.ChoiceSetInput(
                id=f"{LEVEL_INPUT_PREFIX}{quality.quality_id}",
                label=(plain(quality.display_name, 80) or "Quality") + _note(" (weight {}%)", quality.weight),
                choices=choices,
                style="compact",
                placeholder="Pick a level",
                value=chosen.get(quality.quality_id),
            )
            for quality in rubric.qualities
        )
    feedback = ac.TextInput(
        id="feedback",
        label="Feedback (the student sees it after you return the work)",
        is_multiline=True,
        max_length=FEEDBACK_MAX_LENGTH,
        placeholder="Write feedback for the student",
        error_message=f"Feedback can be at most {FEEDBACK_MAX_LENGTH} characters.",
        value=values.feedback or None,
    )
    return [*inputs, feedback]


def _grade_parts(grade: GradeValues, max_points: float | None, *, to_student: bool = False) -> list[str]:
    """What a grade holds, in words: "18/20", "rubric levels", "feedback" (to the student: "the…", "your…")."""
    parts = [score_text(grade.points, max_points)] if grade.points is not None and max_points is not None else []
    if grade.levels:
        parts.append("the rubric levels" if to_student else "rubric levels")
    if grade.feedback:
        parts.append("your feedback" if to_student else "feedback")
    return parts


def _grade_summary(assignment: Assignment, working: GradeValues, returned: GradeValues) -> str:
    """The working grade and whether the student has seen it (returned) or it differs from what they saw."""
    if working.is_empty:
        return "Not graded yet." if returned.is_empty else "No current grade; the student saw an earlier one."
    text = "Current grade: " + " + ".join(_grade_parts(working, assignment.max_points))
    if working == returned:
        return f"{text} (returned: the student sees this)."
    if returned.is_empty:
        return f"{text} (draft: the student hasn't seen it)."
    seen = "earlier feedback"
    if returned.points is not None and assignment.max_points is not None:
        seen = score_text(returned.points, assignment.max_points)
    return f"{text} (draft: the student still sees {seen} until you return it)."


def _undo_button(undo: UndoAction | None) -> ac.ActionSet | None:
    return buttons([execute("Undo this save", undo)]) if undo is not None else None


def _return_all_button(class_id: str, assignment_id: str, count: int, nonce: str) -> ac.ExecuteAction | None:
    """ "Return all graded (3)", when graded work is not yet returned."""
    action = ReturnAllAction(class_id, assignment_id, False, count, nonce)
    return execute(f"Return all graded ({count})", action, style="destructive") if count > 0 else None


def grading_card(
    education_class: EducationClass,
    assignment: Assignment,
    submission: Submission,
    student_name: str,
    *,
    tz: ZoneInfo,
    now: datetime,
    nonce: str,
    progress: tuple[int, int] | None = None,
    late_by: timedelta | None = None,
    rubric: Rubric | None = None,
    graded_not_returned: int = 0,
    status: Banner | None = None,
    entered: GradeAction | GradeValues | None = None,
    undo: UndoAction | None = None,
) -> Card:
    """Grade one submission (read with `$expand=outcomes,submittedResources`). `progress` (graded, to go) gives
    "3 graded · 8 to go", `late_by` "Late by 2 days"; `status` is a banner with the last result, `undo` an Undo
    button under it for the save it reports; `entered` re-shows what the teacher typed (after a refused save, or an
    undo) in the fields."""
    working = working_values(submission.outcomes)
    if isinstance(entered, GradeAction):
        shown = GradeValues(None if entered.points is None else float(entered.points), entered.feedback, entered.levels)
    else:
        shown = working if entered is None else entered
    ids = (education_class.id, assignment.id, submission.id)
    late = late_text(late_by)
    links = [open_url(item.display_name or "Turned-in work", item.url) for item in submission.submitted_resources or ()]
    work_links = [link for link in links if link is not None][:MAX_RESOURCE_LINKS]
    save = GradeAction(*ids, None, None, (), last_change(submission.outcomes)[0], False, nonce)
    more = [
        _return_all_button(education_class.id, assignment.id, graded_not_returned, nonce),
        execute("Return for revision", ReassignAction(*ids, False, nonce), style="destructive"),
        execute("Excuse", ExcuseAction(*ids, False, nonce), style="destructive"),
    ]
    more_card = ac.AdaptiveCard(version=CARD_VERSION, body=[ac.ActionSet(actions=[a for a in more if a is not None])])
    return card(
        [
            _undo_button(undo),
            heading(plain(student_name) or "A student"),
            line(f"{plain(assignment.display_name)} · {plain(education_class.display_name)}", subtle=True),
            line(
                f"{turned_in_text(submission.submitted_at, tz, now)} · {due_text(assignment.due, tz, now)}", subtle=True
            ),
            line(late.capitalize(), color="Attention") if late else None,
            line(_grade_summary(assignment, working, returned_values(submission.outcomes))),
            line(f"{progress[0]} graded · {progress[1]} to go", subtle=True) if progress is not None else None,
            line("Turned-in work", bold=True) if work_links else None,
            line("No files or links were turned in.", subtle=True)
            if not work_links and submission.submitted_resources is not None
            else None,
            buttons([*work_links, open_url("Open in Teams", submission.web_url)]),
            section(_grade_inputs(assignment, rubric, shown), spacing="Medium"),
        ],
        [
            execute("Save grade", save, with_inputs=True, style="positive"),
            execute("Skip", SkipAction(*ids)),
            execute("Return", ReturnAction(*ids, False, nonce)),
            ac.ShowCardAction(title="More", card=more_card),
        ],
        status=status,
        full_width=True,
    )


def all_graded_card(
    assignment: Assignment,
    education_class: EducationClass,
    returned_pending: int,
    *,
    nonce: str,
    status: Banner | None = None,
    undo: UndoAction | None = None,
) -> Card:
    """Nothing left to grade in the assignment; offers Return all when graded work is not yet returned, and Undo
    for the save the banner reports (`undo`)."""
    title = plain(assignment.display_name) or "this assignment"
    noun = "submission is" if returned_pending == 1 else "submissions are"
    return card(
        [
            _undo_button(undo),
            heading("All graded"),
            line(f"Everything turned in for {title} ({plain(education_class.display_name)}) has a grade."),
            line(f"{returned_pending} graded {noun} not returned yet: students can't see those grades.")
            if returned_pending > 0
            else None,
        ],
        [
            _return_all_button(education_class.id, assignment.id, returned_pending, nonce),
            execute("Other ungraded work", ShowUngradedAction(education_class.id, 0)),
        ],
        status=status,
    )


_CONFIRMATIONS: Final[dict[type[ActionPayload], tuple[str, str]]] = {
    ReturnAllAction: (
        "Yes, return all",
        "Return {count} of {title}: their points and feedback become visible to those students.",
    ),
    ReturnAction: ("Yes, return", "Return to {student}: {visible}"),
    ReassignAction: (
        "Yes, return for revision",
        "Return {title} to {student} for revision: the student gets the work back with your feedback, can change it "
        "and turn it in again.",
    ),
    ExcuseAction: (
        "Yes, excuse",
        "Excuse {student} from {title}: they won't need to turn it in. "
        "Excusing deletes the feedback and rubric selections.",
    ),
}
"""Each confirmed step's button and what it says will happen."""


def _what_becomes_visible(assignment: Assignment, submission: Submission | None) -> str:
    working = working_values(submission.outcomes if submission else None)
    parts = _grade_parts(working, assignment.max_points, to_student=True)
    if not parts:
        return "the work goes back to the student with no grade or feedback."
    return f"{' and '.join(parts)} {'becomes' if len(parts) == 1 else 'become'} visible to the student."


def confirm_card(
    action: Step | ReturnAllAction,
    assignment: Assignment,
    *,
    student_name: str | None = None,
    submission: Submission | None = None,
    warning: str | None = None,
    released: Sequence[tuple[str, GradeValues]] = (),
) -> Card:
    """Say exactly what will happen, with "Yes, …" (same verb, confirmed) and "Cancel" (back to grading);
    `submission` (with outcomes) lets the card name the grade that becomes visible, `warning` adds a caution, and
    `released` lists each student Return all releases a grade to, with that grade (as many as fit in a message)."""
    yes, template = _CONFIRMATIONS[type(action)]
    if isinstance(action, ReturnAllAction):
        count, submission_id = plural(action.expected_count, "graded submission"), None
    else:
        count, submission_id = "", action.submission_id
    statement = template.format(
        count=count,
        title=plain(assignment.display_name) or "this assignment",
        student=plain(student_name) or "the student",
        visible=_what_becomes_visible(assignment, submission),
    )
    back = ShowGradingAction(action.class_id, action.assignment_id, submission_id)
    style: Literal["destructive"] | None = None if isinstance(action, ReturnAction) else "destructive"
    rows = [
        (plain(name, 60) or "A student", " + ".join(_grade_parts(grade, assignment.max_points)) or "no grade")
        for name, grade in sorted(released, key=lambda row: row[0].casefold())
    ]

    def build(shown: int) -> Card:
        hidden = len(rows) - shown
        return card(
            [
                heading("Please confirm"),
                line(statement),
                facts(rows[:shown]) if shown else None,
                line(f"…and {plural(hidden, 'more student')}.", subtle=True) if hidden else None,
                line(plain(warning, 300), color="Attention") if warning else None,
            ],
            [execute(yes, dataclasses.replace(action, confirmed=True), style=style), execute("Cancel", back)],
        )

    return build(largest_fitting(build, len(rows)))


def _changed(
    who: str, student: str, assignment: Assignment, submission: Submission, tz: ZoneInfo, now: datetime
) -> str:
    """ "Alan changed the grade for Ada (Essay 1) on Mon 1 Dec, 09:55 (5 minutes ago)", from `submission` read fresh."""
    changed_at = last_change(submission.outcomes)[0]
    when = f" on {moment_with_relative(changed_at, tz, now)}" if changed_at else ""
    return f"{who} changed the grade for {plain(student) or 'the student'} ({plain(assignment.display_name)}){when}"


def _grade_block(label: str, points: str, feedback: str | None, *, subtle: bool = False) -> list[ac.CardElement]:
    """A labelled grade: its points, and its feedback exactly as typed (a TextRun has no markdown), cut to a preview, or
    "No feedback"."""
    if not feedback:
        return [line(label, bold=True), line(points), line("No feedback", subtle=True)]
    preview = feedback if len(feedback) <= FEEDBACK_PREVIEW else feedback[: FEEDBACK_PREVIEW - 1] + "…"
    run: list[ac.CardElement] = [ac.TextRun(text=preview, is_subtle=subtle or None)]
    return [line(label, bold=True), line(points), ac.RichTextBlock(inlines=run, spacing="Small")]


def conflict_card(
    education_class: EducationClass,
    assignment: Assignment,
    submission: Submission,
    student_name: str,
    mine: GradeAction,
    *,
    tz: ZoneInfo,
    now: datetime,
    nonce: str,
) -> Card:
    """Someone changed the grade after the card was shown: show theirs (from `submission`, read fresh with
    outcomes) next to the teacher's values, with "Keep mine" / "Keep theirs"."""
    theirs = working_values(submission.outcomes)
    shown, by = last_change(submission.outcomes)
    changed_by = plain(by.user_name if by else None) or "Someone else"
    ids = (education_class.id, assignment.id, submission.id)
    keep_mine = ResolveConflictAction(*ids, "mine", mine.points, mine.feedback, nonce, mine.levels, shown)
    keep_theirs = ResolveConflictAction(*ids, "theirs", None, None, nonce)
    yours, now_saved = (score_text(grade.points, assignment.max_points) for grade in (mine, theirs))
    return card(
        [
            heading("This grade changed meanwhile"),
            line(_changed(changed_by, student_name, assignment, submission, tz, now) + ", after this card was shown."),
            *_grade_block("Yours (not saved)", yours, mine.feedback, subtle=True),
            *_grade_block("Now saved", now_saved, theirs.feedback, subtle=True),
        ],
        [execute("Keep mine", keep_mine), execute("Keep theirs", keep_theirs)],
    )


def undo_conflict_card(
    education_class: EducationClass,
    assignment: Assignment,
    submission: Submission,
    student_name: str,
    *,
    yours: GradeValues,
    restores: GradeValues,
    changed_by: str,
    tz: ZoneInfo,
    now: datetime,
    undo_anyway: UndoAction | None,
) -> Card:
    """Undo would replace a grade that changed after the teacher's save: show what they saved, what Graph holds now
    (from `submission`, read fresh with outcomes) and who changed it, and what undo would put back; the teacher
    chooses "Undo anyway" or "Keep the current grade". For the teacher's own eyes only (names a co-teacher)."""
    who = plain(changed_by, 80) or "Someone else"
    changed = _changed(who, student_name, assignment, submission, tz, now)

    def block(label: str, grade: GradeValues) -> list[ac.CardElement]:
        """The grade's points and whether it has rubric levels ("18/20 + rubric levels"), then its feedback."""
        parts = [score_text(grade.points, assignment.max_points)] if grade.points is not None else []
        points = " + ".join([*parts, "rubric levels"] if grade.levels else parts) or "No points"
        return _grade_block(label, points, grade.feedback)

    return card(
        [
            heading("This grade changed after you saved it"),
            line(f"{changed}. Undo now would replace that grade, so nothing was undone."),
            *block("You saved", yours),
            *block(f"Now in Teams Assignments (changed by {who})", working_values(submission.outcomes)),
            *block("Undo would put back", restores),
        ],
        [
            execute("Undo anyway", undo_anyway, style="destructive") if undo_anyway is not None else None,
            execute("Keep the current grade", ShowGradingAction(education_class.id, assignment.id, submission.id)),
        ],
        status=Banner.warning("Not undone: this grade changed after your save."),
    )


def superseded_card(message: str, resume: ShowGradingAction | None = None) -> Card:
    """A grading card made out of date (a newer card shows the same student, or the save it reported was undone): it
    says so and keeps no button that acts on old data — only `resume`, which opens grading fresh in its place."""
    return card(
        [line(plain(message, 400))],
        [execute("Continue grading", resume) if resume is not None else None],
        status=Banner.warning("This card is out of date."),
    )
