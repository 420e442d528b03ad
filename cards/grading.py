"""The grading card (one submission at a time, with points, feedback and rubric inputs) and its follow-ups:
"Saving…" while Graph is slow, "All graded" with the offer to return the graded work, and the choice to make when
an undo would replace a grade that changed after the save.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from microsoft_teams.cards import (
    ActionSet,
    AdaptiveCard,
    CardElement,
    Choice,
    ChoiceSetInput,
    Container,
    NumberInput,
    ShowCardAction,
    TextInput,
)

from cards.actions import (
    FEEDBACK_MAX_LENGTH,
    LEVEL_INPUT_PREFIX,
    ExcuseAction,
    GradeAction,
    OpenGradingAction,
    ReassignAction,
    ReturnAction,
    ReturnAllAction,
    ShowUngradedAction,
    SkipAction,
    UndoAction,
    format_points,
)
from cards.dates import due_text, late_text, moment_with_relative, turned_in_text
from cards.grades import GradeValues, outcomes_modified_at, returned_values, score_text, working_values
from cards.render import (
    CARD_VERSION,
    Banner,
    Card,
    buttons,
    card,
    execute,
    heading,
    line,
    literal_text,
    open_url,
    plain,
)
from graph.models import Assignment, EducationClass, Rubric, RubricSelection, Submission
from graph.progress import lateness

MAX_RESOURCE_LINKS = 10
"""Graph allows at most 10 resources per submission."""
FEEDBACK_PREVIEW = 600
UNDO_TITLE = "Undo this save"


def _levels_by_quality(levels: tuple[RubricSelection, ...]) -> dict[str, str]:
    return {level.quality_id: level.column_id for level in levels}


def _rubric_inputs(rubric: Rubric, selected: dict[str, str]) -> list[CardElement]:
    inputs: list[CardElement] = [line(f"Rubric: {plain(rubric.display_name)}", bold=True)]
    for quality in rubric.qualities:
        choices = []
        for level in rubric.levels:
            points = f" ({format_points(level.points)} pts)" if level.points is not None else ""
            choices.append(Choice(title=f"{plain(level.display_name, 60)}{points}", value=level.level_id))
        label = plain(quality.display_name, 80) or "Quality"
        if quality.weight is not None:
            label += f" (weight {format_points(quality.weight)}%)"
        choice_set = ChoiceSetInput(
            id=f"{LEVEL_INPUT_PREFIX}{quality.quality_id}",
            label=label,
            choices=choices,
            style="compact",
            placeholder="Pick a level",
        )
        current = selected.get(quality.quality_id)
        if current and any(level.level_id == current for level in rubric.levels):
            choice_set.value = current
        inputs.append(choice_set)
    return inputs


def _grade_summary(assignment: Assignment, working: GradeValues, returned: GradeValues) -> str:
    """The working grade and whether the student has seen it (returned) or it differs from what they saw."""
    if working.is_empty:
        return "Not graded yet." if returned.is_empty else "No current grade; the student saw an earlier one."
    parts: list[str] = []
    if working.points is not None and assignment.max_points is not None:
        parts.append(score_text(working.points, assignment.max_points))
    if working.levels:
        parts.append("rubric levels")
    if working.feedback:
        parts.append("feedback")
    text = "Current grade: " + " + ".join(parts)
    if working == returned:
        return f"{text} (returned: the student sees this)."
    if returned.is_empty:
        return f"{text} (draft: the student hasn't seen it)."
    if returned.points is not None and assignment.max_points is not None:
        seen = score_text(returned.points, assignment.max_points)
    else:
        seen = "earlier feedback"
    return f"{text} (draft: the student still sees {seen} until you return it)."


def grading_card(
    education_class: EducationClass,
    assignment: Assignment,
    submission: Submission,
    student_name: str,
    *,
    tz: ZoneInfo,
    now: datetime,
    nonce: str,
    position: int | None = None,
    waiting: int | None = None,
    rubric: Rubric | None = None,
    graded_not_returned: int = 0,
    status: Banner | None = None,
    entered: GradeAction | None = None,
    undo: UndoAction | None = None,
) -> Card:
    """Grade one submission (needs `$expand=outcomes,submittedResources` for values and links).

    `position`/`waiting` give "3 of 12 waiting"; `graded_not_returned` feeds "Return all graded (N)";
    `status` is a banner with the last result; `entered` re-shows what the teacher typed after a failed save;
    `undo` puts an Undo button for the save the banner reports right under it.
    """
    working = working_values(submission.outcomes)
    returned = returned_values(submission.outcomes)
    ids = (education_class.id, assignment.id, submission.id)
    student = plain(student_name) or "A student"

    facts_lines: list[CardElement] = [
        line(f"{plain(assignment.display_name)} · {plain(education_class.display_name)}", subtle=True),
        line(turned_in_text(submission.submitted_at, tz, now) + f" · {due_text(assignment.due, tz, now)}", subtle=True),
    ]
    late = late_text(lateness(submission, assignment))
    if late:
        facts_lines.append(line(late.capitalize(), color="Attention"))
    facts_lines.append(line(_grade_summary(assignment, working, returned)))
    if position is not None and waiting is not None:
        facts_lines.append(line(f"{position} of {waiting} waiting", subtle=True))

    links = [
        open_url(resource.display_name or "Turned-in work", resource.url)
        for resource in submission.submitted_resources or ()
    ]
    work_links = [link for link in links if link is not None][:MAX_RESOURCE_LINKS]
    work: list[CardElement | None] = []
    if work_links:
        work.append(line("Turned-in work", bold=True))
    elif submission.submitted_resources is not None:
        work.append(line("No files or links were turned in.", subtle=True))

    points_value = (
        working.points if entered is None else (float(entered.points) if entered.points is not None else None)
    )
    feedback_value = working.feedback if entered is None else entered.feedback
    levels = working.levels if entered is None else entered.levels

    inputs: list[CardElement] = []
    if assignment.max_points is not None:
        maximum = format_points(assignment.max_points)
        points_input = NumberInput(
            id="points",
            label=f"Points (out of {maximum})",
            min=0,
            max=assignment.max_points,
            placeholder=f"0–{maximum}",
            error_message=f"Enter points from 0 to {maximum}.",
        )
        if points_value is not None:
            points_input.value = points_value
        inputs.append(points_input)
    if rubric is not None and rubric.qualities:
        inputs.extend(_rubric_inputs(rubric, _levels_by_quality(levels)))
    feedback_input = TextInput(
        id="feedback",
        label="Feedback (the student sees it after you return the work)",
        is_multiline=True,
        max_length=FEEDBACK_MAX_LENGTH,
        placeholder="Write feedback for the student",
        error_message=f"Feedback can be at most {FEEDBACK_MAX_LENGTH} characters.",
    )
    if feedback_value:
        feedback_input.value = feedback_value
    inputs.append(feedback_input)

    save = GradeAction(
        *ids,
        points=None,
        feedback=None,
        levels=(),
        known_modified=outcomes_modified_at(submission.outcomes),
        force=False,
        nonce=nonce,
    )
    more = [
        execute(
            f"Return all graded ({graded_not_returned})",
            ReturnAllAction(education_class.id, assignment.id, False, graded_not_returned, nonce),
        )
        if graded_not_returned > 0
        else None,
        execute("Return for revision", ReassignAction(*ids, False, nonce)),
        execute("Excuse", ExcuseAction(*ids, False, nonce)),
    ]
    more_card = AdaptiveCard(version=CARD_VERSION, body=[ActionSet(actions=[a for a in more if a is not None])])
    return card(
        [
            buttons([execute(UNDO_TITLE, undo)]) if undo is not None else None,
            heading(student),
            *facts_lines,
            *work,
            buttons([*work_links, open_url("Open in Teams", submission.web_url)]),
            Container(items=inputs, separator=True, spacing="Medium"),
        ],
        [
            execute("Save grade", save, with_inputs=True),
            execute("Skip", SkipAction(*ids)),
            execute("Return", ReturnAction(*ids, False, nonce)),
            ShowCardAction(title="More", card=more_card),
        ],
        status=status,
        full_width=True,
    )


def saving_card(
    education_class: EducationClass,
    assignment: Assignment,
    student_name: str,
    *,
    saving: GradeAction | None = None,
    check_again: OpenGradingAction | None = None,
) -> Card:
    """ "Saving…": Graph is slow; the grade is safe in Gradebot's outbox and this card updates when it lands."""
    what = "the grade"
    if saving is not None and saving.points is not None:
        what = score_text(float(saving.points), assignment.max_points)
    elif saving is not None and saving.feedback:
        what = "the feedback"
    return card(
        [
            line(f"Saving {what} for {plain(student_name) or 'the student'}…", bold=True),
            line(f"{plain(assignment.display_name)} · {plain(education_class.display_name)}", subtle=True),
            line("Microsoft Graph is slow right now. Your grade is stored and this card updates when it lands."),
        ],
        [execute("Check again", check_again) if check_again is not None else None],
        status=Banner("Saving…"),
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
    body: list[CardElement | None] = [
        buttons([execute(UNDO_TITLE, undo)]) if undo is not None else None,
        heading("All graded"),
        line(f"Everything turned in for {title} ({plain(education_class.display_name)}) has a grade."),
    ]
    if returned_pending > 0:
        noun = "submission is" if returned_pending == 1 else "submissions are"
        body.append(line(f"{returned_pending} graded {noun} not returned yet: students can't see those grades."))
    return card(
        body,
        [
            execute(
                f"Return all graded ({returned_pending})",
                ReturnAllAction(education_class.id, assignment.id, False, returned_pending, nonce),
            )
            if returned_pending > 0
            else None,
            execute("Other ungraded work", ShowUngradedAction(education_class.id, 0)),
        ],
        status=status,
    )


def _grade_block(label: str, grade: GradeValues, assignment: Assignment) -> list[CardElement]:
    parts = [score_text(grade.points, assignment.max_points)] if grade.points is not None else []
    if grade.levels:
        parts.append("rubric levels")
    block: list[CardElement] = [line(label, bold=True), line(" + ".join(parts) if parts else "No points")]
    if grade.feedback:
        text = grade.feedback
        block.append(literal_text(text if len(text) <= FEEDBACK_PREVIEW else text[: FEEDBACK_PREVIEW - 1] + "…"))
    else:
        block.append(line("No feedback", subtle=True))
    return block


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
    now_saved = working_values(submission.outcomes)
    changed_at = outcomes_modified_at(submission.outcomes)
    when = f" on {moment_with_relative(changed_at, tz, now)}" if changed_at else ""
    who = plain(changed_by, 80) or "Someone else"
    student = plain(student_name) or "the student"
    keep = OpenGradingAction(education_class.id, assignment.id, submission.id)
    return card(
        [
            heading("This grade changed after you saved it"),
            line(
                f"{who} changed the grade for {student} ({plain(assignment.display_name)}){when}. "
                "Undo now would replace that grade, so nothing was undone."
            ),
            *_grade_block("You saved", yours, assignment),
            *_grade_block(f"Now in Teams Assignments (changed by {who})", now_saved, assignment),
            *_grade_block("Undo would put back", restores, assignment),
        ],
        [
            execute("Undo anyway", undo_anyway, style="destructive") if undo_anyway is not None else None,
            execute("Keep the current grade", keep),
        ],
        status=Banner.warning("Not undone: this grade changed after your save."),
    )
