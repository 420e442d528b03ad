"""The write journal: every grade write and submission action the Graph emulator applied, in order, so a test can
count how often one value reached one submission (a grade written twice, a submission returned twice).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

WriteKind = Literal["points", "feedback", "rubric", "submit", "unsubmit", "return", "reassign", "excuse"]
DEFAULT_CAPACITY = 100_000


@dataclass(frozen=True, slots=True)
class AppliedWrite:
    """One write Graph applied (answered 2xx), over HTTP or inside a `$batch`."""

    seq: int
    at: datetime
    kind: WriteKind
    class_id: str
    assignment_id: str
    submission_id: str
    by: str | None
    """The acting user's id, or the application's id for app-only calls."""
    value: Any = None
    """points: the number (or None when cleared); feedback: the text (or None); rubric: [[qualityId, levelId]]."""

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "kind": self.kind,
            "classId": self.class_id,
            "assignmentId": self.assignment_id,
            "submissionId": self.submission_id,
            "by": self.by,
            "value": self.value,
        }


class WriteJournal:
    """The last `capacity` applied writes (oldest dropped first); `seq` numbers them from 1 and never repeats."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._writes: deque[AppliedWrite] = deque(maxlen=capacity)
        self._seq = 0

    def record(
        self,
        kind: WriteKind,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        *,
        at: datetime,
        by: str | None,
        value: Any = None,
    ) -> AppliedWrite:
        self._seq += 1
        write = AppliedWrite(self._seq, at, kind, class_id, assignment_id, submission_id, by, value)
        self._writes.append(write)
        return write

    def __iter__(self) -> Iterator[AppliedWrite]:
        return iter(list(self._writes))

    def __len__(self) -> int:
        return len(self._writes)

    def since(self, after_seq: int = 0, submission_id: str | None = None) -> list[AppliedWrite]:
        """Writes numbered above `after_seq`, optionally of one submission (ids compare case-insensitively)."""
        wanted = submission_id.lower() if submission_id else None
        return [w for w in self._writes if w.seq > after_seq and (wanted is None or w.submission_id.lower() == wanted)]

    @property
    def last_seq(self) -> int:
        return self._seq

    def clear(self) -> None:
        """Forget the writes so far (numbering carries on)."""
        self._writes.clear()
