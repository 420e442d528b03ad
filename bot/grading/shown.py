"""Which grading card in a teacher's 1:1 chat shows which submission, so a newer card for the same submission can
mark the older one out of date. Kept in memory for a day: a restart (or another instance) forgets it."""

from __future__ import annotations

from cachetools import TTLCache

REMEMBERED_S = 86_400.0
CARDS = 4096
Key = tuple[str, str]
"""(teacher id, submission id)."""


class ShownCards:
    def __init__(self) -> None:
        self._by_submission: TTLCache[Key, str] = TTLCache(CARDS, REMEMBERED_S)
        self._by_card: TTLCache[str, Key] = TTLCache(CARDS, REMEMBERED_S)

    def current(self, teacher_id: str, submission_id: str | None) -> str | None:
        """The card (activity id) showing this submission to this teacher now, if known."""
        return self._by_submission.get((teacher_id, submission_id)) if submission_id else None

    def show(self, teacher_id: str, submission_id: str | None, activity_id: str | None) -> str | None:
        """Note that card `activity_id` now shows `submission_id` (None: no submission); returns the other card that
        showed it until now, which is out of date."""
        if activity_id is None:
            return None
        before = self._by_card.pop(activity_id, None)
        if before is not None and self._by_submission.get(before) == activity_id:
            del self._by_submission[before]
        if submission_id is None:
            return None
        key = (teacher_id, submission_id)
        older = self._by_submission.get(key)
        self._by_submission[key] = activity_id
        self._by_card[activity_id] = key
        return older if older != activity_id else None
