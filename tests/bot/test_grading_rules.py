"""Grading's domain rules, checked on the server against fresh Graph data (bot/grading/rules.py)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.grading.rules import InvalidGradeError, check_points
from bot.grading.writes import GradeChange
from graph.models import RubricSelection


def test_check_points_against_the_maximum() -> None:
    check_points(Decimal(20), 20.0)
    check_points(Decimal(0), 20.0)
    check_points(Decimal("12.5"), 12.5)
    with pytest.raises(InvalidGradeError) as caught:
        check_points(Decimal("20.01"), 20.0)
    assert caught.value.message == (
        "20.01 is more than this assignment's 20 points: nothing was saved. Points must be between 0 and 20."
    )
    with pytest.raises(InvalidGradeError) as caught:
        check_points(Decimal(11), 10.5)
    assert caught.value.message.endswith("Points must be between 0 and 10.5.")
    with pytest.raises(InvalidGradeError, match="no points"):
        check_points(Decimal(1), None)


def typed(points: Decimal | None, feedback: str | None, levels: tuple[RubricSelection, ...]) -> GradeChange:
    return GradeChange(points, feedback, levels, None, False)


def test_the_typed_digest_covers_every_value_typed() -> None:
    base = typed(Decimal(7), "Good", (RubricSelection("q", "c"),))
    assert base.digest() == typed(Decimal("7.0"), "Good", (RubricSelection("q", "c"),)).digest()
    others = [
        typed(Decimal(8), "Good", base.levels),
        typed(Decimal(7), "Better", base.levels),
        typed(Decimal(7), "Good", (RubricSelection("q", "d"),)),
        typed(None, "Good", base.levels),
    ]
    assert len({base.digest(), *(other.digest() for other in others)}) == 5
