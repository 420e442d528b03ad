"""How Gradebot spells Graph education URLs: id-encoded paths under /education/classes and OData query strings.

Paths are relative to the version root (`/v1.0` or `/beta`), the form `$batch` items need as well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple
from urllib.parse import quote

# Characters OData query values may keep as they are ($select lists, quotes in $filter); the rest is escaped.
_QUERY_SAFE = "$,'()*:/"


class AssignmentRef(NamedTuple):
    """Which assignment: its class and its own id."""

    class_id: str
    assignment_id: str


class SubmissionRef(NamedTuple):
    """Which submission: class, assignment and submission ids."""

    class_id: str
    assignment_id: str
    submission_id: str


def segment(value: str) -> str:
    """One path segment from an id, percent-encoded so no id can change the path."""
    if not value:
        raise ValueError("Graph ids must not be empty")
    return quote(value, safe="")


def with_query(path: str, query: Mapping[str, str | Iterable[str] | None] | None = None) -> str:
    """`path?$k=v&…`; iterable values are joined with commas, None values are left out."""
    if not query:
        return path
    parts: list[str] = []
    for key, value in query.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else ",".join(value)
        if text:
            parts.append(f"{quote(key, safe='$')}={quote(text, safe=_QUERY_SAFE)}")
    return f"{path}?{'&'.join(parts)}" if parts else path


def class_path(class_id: str) -> str:
    return f"/education/classes/{segment(class_id)}"


def user_path(user_id: str) -> str:
    return f"/education/users/{segment(user_id)}"


def assignment_path(class_id: str, assignment_id: str) -> str:
    return f"{class_path(class_id)}/assignments/{segment(assignment_id)}"


def submissions_path(class_id: str, assignment_id: str) -> str:
    return f"{assignment_path(class_id, assignment_id)}/submissions"


def submission_path(ref: SubmissionRef) -> str:
    return f"{submissions_path(ref.class_id, ref.assignment_id)}/{segment(ref.submission_id)}"


def outcome_path(ref: SubmissionRef, outcome_id: str) -> str:
    return f"{submission_path(ref)}/outcomes/{segment(outcome_id)}"


def action_path(ref: SubmissionRef, action: str) -> str:
    """A submission action (`return`, `reassign`, `excuse`, `submit`); always under /education/classes."""
    return f"{submission_path(ref)}/{action}"


def status_filter(status: str | None) -> str | None:
    """`status eq '…'` for a documented server-side status filter, or None."""
    return None if status is None else f"status eq '{status}'"
