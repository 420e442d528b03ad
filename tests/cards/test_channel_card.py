"""The neutral card for channels and group chats: nothing about students, refresh for the teachers."""

from __future__ import annotations

import json

from cards.actions import RefreshViewAction, parse_action
from cards.channel import MAX_REFRESH_USERS, neutral_channel_card
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import executes, nodes, texts

TEACHERS = ["29:1aBcDeFgHiJkLmNoPqRsTuVwXyZ", "29:2aBcDeFgHiJkLmNoPqRsTuVwXyZ"]


def test_neutral_card_carries_no_student_data_and_refreshes_for_teachers() -> None:
    items = fx.ungraded_items(5)
    refresh = RefreshViewAction("ungraded", fx.CLASS_ID, 0)
    built = neutral_channel_card(refresh, "Biology 9A", TEACHERS)
    assert_valid_card(built)
    wire = json.dumps(built)
    for item in items:  # the teacher's view would show these; the shared card must not
        assert item.student_name not in wire
        assert item.submission.id not in wire
        assert item.assignment.display_name not in wire
    kinds = {node.get("type") for node in nodes(built)}
    assert not {kind for kind in kinds if isinstance(kind, str) and kind.startswith("Input.")}
    assert "Action.OpenUrl" not in kinds and "FactSet" not in kinds
    assert built["refresh"]["userIds"] == TEACHERS
    action = built["refresh"]["action"]
    assert action["type"] == "Action.Execute" and action["verb"] == "refreshView"
    assert parse_action(action["verb"], json.loads(json.dumps(action["data"]))) == refresh
    assert "Biology 9A" in texts(built)
    assert "Teachers of this class see their own details here" in texts(built)
    assert executes(built) == []  # ≤ 60 teachers: automatic refresh, no button needed


def test_more_than_sixty_teachers_get_a_show_my_view_button() -> None:
    teachers = [f"29:teacher{index:03d}" for index in range(75)] + ["29:teacher000"]
    refresh = RefreshViewAction("assignments", fx.CLASS_ID, 0)
    built = neutral_channel_card(refresh, "Biology 9A", teachers)
    assert_valid_card(built)
    assert built["refresh"]["userIds"] == teachers[:MAX_REFRESH_USERS]
    (show,) = executes(built)
    assert show["title"] == "Show my view"
    assert parse_action(show["verb"], show["data"]) == refresh


def test_no_known_teachers_still_offers_a_manual_view() -> None:
    built = neutral_channel_card(RefreshViewAction("ungraded", None, 0), None, [])
    assert_valid_card(built)
    assert built["refresh"]["userIds"] == []
    assert [action["verb"] for action in executes(built)] == ["refreshView"]
