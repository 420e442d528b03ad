"""Steps that need the teacher's explicit decision: confirming return / return all / reassign / excuse, and
choosing between two grades when someone else changed it meanwhile.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from zoneinfo import ZoneInfo

from microsoft_teams.cards import CardElement

from cards.actions import (
    ConfirmableAction,
    ExcuseAction,
    GradeAction,
    OpenGradingAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
)
from cards.dates import moment_with_relative
from cards.grades import last_modified_by, outcomes_modified_at, score_text, working_values
from cards.render import Card, card, execute, heading, line, literal_text, plain
from graph.models import Assignment, EducationClass, Submission

_FEEDBACK_PREVIEW = 600


def _what_becomes_visible(assignment: Assignment, submission: Submission | None) -> str:
    working = working_values(submission.outcomes if submission else None)
    parts: list[str] = []
    if working.points is not None and assignment.max_points is not None:
        parts.append(score_text(working.points, assignment.max_points))
    if working.levels:
        parts.append("the rubric levels")
    if working.feedback:
        parts.append("your feedback")
    if not parts:
        return "the work goes back to the student with no grade or feedback."
    verb = "becomes" if len(parts) == 1 else "become"
    return f"{' and '.join(parts)} {verb} visible to the student."


def confirm_card(
    action: ConfirmableAction,
    assignment: Assignment,
    *,
    student_name: str | None = None,
    submission: Submission | None = None,
    warning: str | None = None,
) -> Card:
    """Say exactly what will happen, with "Yes, …" (same verb, confirmed) and "Cancel" (back to grading).

    `submission` (with outcomes) lets the card name the grade that becomes visible; `warning` adds a caution.
    """
    student = plain(student_name) or "the student"
    title = plain(assignment.display_name) or "this assignment"
    match action:
        case ReturnAllAction():
            count = action.expected_count
            noun = "submission" if count == 1 else "submissions"
            statement = (
                f"Return {count} graded {noun} of {title}: their points and feedback become visible to those students."
            )
            yes = "Yes, return all"
            back = OpenGradingAction(action.class_id, action.assignment_id)
        case ReturnAction():
            statement = f"Return to {student}: {_what_becomes_visible(assignment, submission)}"
            yes = "Yes, return"
            back = OpenGradingAction(action.class_id, action.assignment_id, action.submission_id)
        case ReassignAction():
            statement = (
                f"Return {title} to {student} for revision: the student gets the work back with your feedback, "
                "can change it and turn it in again."
            )
            yes = "Yes, return for revision"
            back = OpenGradingAction(action.class_id, action.assignment_id, action.submission_id)
        case ExcuseAction():
            statement = (
                f"Excuse {student} from {title}: they won't need to turn it in. "
                "Excusing deletes the feedback and rubric selections."
            )
            yes = "Yes, excuse"
            back = OpenGradingAction(action.class_id, action.assignment_id, action.submission_id)
    body: list[CardElement | None] = [heading("Please confirm"), line(statement)]
    if warning:
        body.append(line(plain(warning, 300), color="Attention"))
    return card(
        body,
        [execute(yes, dataclasses.replace(action, confirmed=True)), execute("Cancel", back)],
    )


def _values_block(label: str, points: str, feedback: str | None) -> list[CardElement]:
    block: list[CardElement] = [line(label, bold=True), line(points)]
    if feedback:
        preview = feedback if len(feedback) <= _FEEDBACK_PREVIEW else feedback[: _FEEDBACK_PREVIEW - 1] + "…"
        block.append(literal_text(preview, subtle=True))
    else:
        block.append(line("No feedback", subtle=True))
    return block


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
    changed_by = plain(last_modified_by(submission.outcomes)) or "Someone else"
    changed_at = outcomes_modified_at(submission.outcomes)
    when = f" on {moment_with_relative(changed_at, tz, now)}" if changed_at else ""
    mine_points = score_text(float(mine.points), assignment.max_points) if mine.points is not None else "no points"
    ids = (education_class.id, assignment.id, submission.id)
    keep_mine = ResolveConflictAction(*ids, "mine", mine.points, mine.feedback, nonce, mine.levels)
    keep_theirs = ResolveConflictAction(*ids, "theirs", None, None, nonce)
    return card(
        [
            heading("This grade changed meanwhile"),
            line(
                f"{changed_by} changed the grade for {plain(student_name) or 'the student'} "
                f"({plain(assignment.display_name)}){when}, after this card was shown."
            ),
            *_values_block("Yours (not saved)", mine_points, mine.feedback),
            *_values_block("Now saved", score_text(theirs.points, assignment.max_points), theirs.feedback),
        ],
        [execute("Keep mine", keep_mine), execute("Keep theirs", keep_theirs)],
        status=None,
    )
