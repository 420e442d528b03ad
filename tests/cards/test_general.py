"""Cards that belong to no one feature: help, refusals, errors, sign-in and signed out; and the signIn payload."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cards.general import (
    DEFAULT_COMMANDS,
    OpenUngradedAction,
    SignInAction,
    error_card,
    help_card,
    refusal_card,
    sign_in_card,
    signed_out_card,
)
from cards.lists import ShowAssignmentsAction
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import card_data, of_type, parse_action, press_and_parse, texts, verbs


def test_help_card_lists_every_command_with_buttons() -> None:
    built = help_card(class_id=fx.CLASS_ID)
    assert_valid_card(built)
    facts = of_type(built, "FactSet")[0]["facts"]
    assert [fact["title"] for fact in facts] == [command for command, _ in DEFAULT_COMMANDS]
    assert {"help", "classes", "assignments", "ungraded", "grade [assignment]", "undo", "signout"} <= {
        fact["title"] for fact in facts
    }
    assert press_and_parse(built, "Ungraded work") == OpenUngradedAction(fx.CLASS_ID, 0)
    assert press_and_parse(built, "Assignments") == ShowAssignmentsAction(fx.CLASS_ID)
    assert verbs(help_card()) == ["openUngraded"]  # no class known: no Assignments shortcut; the list opens below


def test_help_card_says_first_what_it_did_not_understand() -> None:
    built = help_card(not_understood="I didn't understand 'grde essay'. Here is what I can do.")
    assert_valid_card(built)
    first = built["body"][0]
    assert first["text"] == "I didn't understand 'grde essay'. Here is what I can do." and first["color"] == "Attention"
    assert built["body"][1]["text"] == "Gradebot"
    assert "understand" not in texts(help_card())


@pytest.mark.parametrize(
    "built",
    [
        refusal_card("Only teachers of this class can see its grades."),
        error_card("Teams could not reach Microsoft Graph. Your grade is kept."),
        signed_out_card(),
        sign_in_card(),
    ],
)
def test_message_cards_are_valid(built: dict[str, Any]) -> None:
    assert_valid_card(built)
    assert texts(built).strip()
    assert "Traceback" not in json.dumps(built)


def test_message_card_content() -> None:
    assert "Only teachers" in texts(refusal_card("Only teachers of this class can see its grades."))
    error = error_card("Graph failed\x00 badly")
    assert "Graph failed badly" in texts(error) and verbs(error) == []
    assert press_and_parse(sign_in_card(), "Sign in") == SignInAction()


def test_sign_in_payload_round_trips() -> None:
    assert parse_action("signIn", card_data(SignInAction())) == SignInAction()
