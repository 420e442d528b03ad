"""The teacher's classes: the list with shortcuts to each class's views, and the "Which class?" picker."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from microsoft_teams.cards import CardElement, Container

from cards.actions import NextView, PickClassAction, ShowAssignmentsAction, ShowUngradedAction
from cards.render import Card, buttons, card, execute, heading, largest_fitting, line, plain
from graph.models import EducationClass

_PICKER_PROMPT: dict[NextView, str] = {
    "assignments": "Which class's assignments?",
    "ungraded": "Which class's ungraded work?",
    "grade": "Which class do you want to grade?",
}


def _class_details(education_class: EducationClass) -> str:
    parts = [plain(part, 60) for part in (education_class.class_code, education_class.term_name) if part]
    return " · ".join(parts)


def _more_line(hidden: int, noun: str) -> CardElement | None:
    return line(f"…and {hidden} more {noun} not shown here.", subtle=True) if hidden else None


def classes_card(classes: Sequence[EducationClass], *, waiting: Mapping[str, int] | None = None) -> Card:
    """Each class (name, code, term, optionally how many submissions wait) with Assignments / Ungraded buttons."""
    if not classes:
        return card([heading("Your classes"), line("You don't teach any classes in Teams yet.")])

    def build(count: int) -> Card:
        rows: list[CardElement | None] = [heading("Your classes")]
        for education_class in classes[:count]:
            details = _class_details(education_class)
            waiting_count = (waiting or {}).get(education_class.id)
            if waiting_count is not None:
                details = " · ".join(part for part in (details, f"{waiting_count} to grade") if part)
            items: list[CardElement] = [line(plain(education_class.display_name) or "Unnamed class", bold=True)]
            if details:
                items.append(line(details, subtle=True))
            actions = buttons(
                [
                    execute("Assignments", ShowAssignmentsAction(education_class.id)),
                    execute("Ungraded", ShowUngradedAction(education_class.id, 0)),
                ]
            )
            if actions is not None:
                items.append(actions)
            rows.append(Container(items=items, separator=True))
        rows.append(_more_line(len(classes) - count, "classes"))
        return card(rows, [execute("Ungraded in all classes", ShowUngradedAction(None, 0))])

    return build(largest_fitting(build, len(classes)))


def class_picker_card(classes: Sequence[EducationClass], next_view: NextView, *, query: str | None = None) -> Card:
    """ "Which class?": one button per class (verb pickClass); `query` carries a `grade <assignment>` search."""
    if not classes:
        return card([line("You don't teach any classes in Teams yet.")])

    def build(count: int) -> Card:
        rows: list[CardElement | None] = [heading(_PICKER_PROMPT[next_view])]
        for education_class in classes[:count]:
            title = plain(education_class.display_name, 60) or "Unnamed class"
            details = _class_details(education_class)
            label = f"{title} ({details})" if details else title
            rows.append(buttons([execute(label, PickClassAction(education_class.id, next_view, query))]))
        rows.append(_more_line(len(classes) - count, "classes"))
        return card(rows)

    return build(largest_fitting(build, len(classes)))
