"""Undo on cards: the Undo button names the save it undoes, and the conflict card shows what the teacher saved, what
Graph holds now and who changed it, and what undo would put back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cards.actions import ActionDataError, OpenGradingAction, UndoAction, parse_action
from cards.grades import GradeValues
from cards.grading import all_graded_card, grading_card, undo_conflict_card
from cards.render import Banner
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import press_and_parse, texts

CHANGED_AT = datetime(2025, 12, 1, 9, 55, tzinfo=UTC)


def test_undo_payloads_name_the_write_and_round_trip() -> None:
    plain_press = UndoAction(fx.NONCE, 42)
    assert plain_press.to_data() == {"nonce": fx.NONCE, "writeId": 42}
    assert parse_action("undo", plain_press.to_data()) == plain_press
    anyway = UndoAction(fx.NONCE, 42, anyway=True, known_modified=CHANGED_AT)
    assert parse_action("undo", anyway.to_data()) == anyway
    unknown_stamp = UndoAction(fx.NONCE, 7, anyway=True)
    assert parse_action("undo", unknown_stamp.to_data()) == unknown_stamp
    assert parse_action("undo", {"nonce": fx.NONCE, "writeId": "42"}) == plain_press


@pytest.mark.parametrize(
    "data",
    [
        {"nonce": fx.NONCE, "writeId": 0},
        {"nonce": fx.NONCE, "writeId": -3},
        {"nonce": fx.NONCE, "writeId": "42; drop"},
        {"nonce": fx.NONCE, "writeId": 1.5},
        {"nonce": fx.NONCE, "writeId": True},
        {"nonce": fx.NONCE, "anyway": True},
        {"nonce": fx.NONCE, "writeId": 4, "anyway": "yes"},
        {"nonce": fx.NONCE, "writeId": 4, "anyway": True, "knownModified": "yesterday"},
    ],
)
def test_forged_undo_data_is_refused(data: dict[str, object]) -> None:
    with pytest.raises(ActionDataError):
        parse_action("undo", data)


def test_the_undo_button_sits_under_the_banner_that_reports_the_save() -> None:
    undo = UndoAction(fx.NONCE, 42)
    built = grading_card(
        fx.education_class(),
        fx.assignment(),
        fx.submission(),
        "Ada Lovelace",
        tz=fx.TZ,
        now=fx.NOW,
        nonce=fx.NONCE,
        status=Banner.good("Saved 18/20 for Grace Lee as a draft."),
        undo=undo,
    )
    assert_valid_card(built)
    assert press_and_parse(built, "Undo this save") == undo
    last = all_graded_card(fx.assignment(), fx.education_class(), 1, nonce=fx.NONCE, undo=undo)
    assert_valid_card(last)
    assert press_and_parse(last, "Undo this save") == undo
    without = all_graded_card(fx.assignment(), fx.education_class(), 1, nonce=fx.NONCE)
    assert "Undo this save" not in texts(without)


def test_the_undo_conflict_card_shows_all_three_grades_and_who_changed_it() -> None:
    fresh = fx.submission(
        outcome_items=fx.outcomes(
            points=19, feedback="Their feedback", modified=CHANGED_AT, modified_by=fx.OTHER_TEACHER
        )
    )
    anyway = UndoAction("n2-abcdefgh", 42, anyway=True, known_modified=CHANGED_AT)
    built = undo_conflict_card(
        fx.education_class(),
        fx.assignment(),
        fresh,
        "Ada Lovelace",
        yours=GradeValues(14.0, "My feedback"),
        restores=GradeValues(None, None),
        changed_by="Alan Turing",
        tz=fx.TZ,
        now=fx.NOW,
        undo_anyway=anyway,
    )
    assert_valid_card(built)
    text = texts(built)
    assert "Alan Turing changed the grade for Ada Lovelace" in text and "(5 minutes ago)" in text
    assert "14/20" in text and "My feedback" in text and "19/20" in text and "Their feedback" in text
    assert "Undo would put back" in text and "No points" in text
    assert press_and_parse(built, "Undo anyway") == anyway
    assert press_and_parse(built, "Keep the current grade") == OpenGradingAction(
        fx.CLASS_ID, fx.ASSIGNMENT_ID, fresh.id
    )
