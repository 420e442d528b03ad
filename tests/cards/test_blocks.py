"""Shared building blocks: safe text and links, time wording, size measurement, the schema check itself, and what
every payload shares (the verb registry, unknown verbs, nonces, data that is not an object)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from microsoft_teams.cards import AdaptiveCard, NumberInput, TextBlock

from cards.blocks import (
    MAX_CARD_BYTES,
    ActionDataError,
    card,
    card_size,
    due_text,
    format_moment,
    largest_fitting,
    late_text,
    line,
    new_nonce,
    open_url,
    plain,
    relative,
    serialize,
    turned_in_text,
)
from cards.grading import UndoAction
from tests.cards.fixtures import NOW, TZ
from tests.cards.schema import assert_valid_card, card_errors
from tests.cards.walk import parse_action, payload_types


def test_schema_check_rejects_what_teams_would_reject() -> None:
    missing_id = serialize(AdaptiveCard(version="1.5", body=[NumberInput(label="Points")]))
    assert any("'id' is a required property" in error for error in card_errors(missing_id))
    bad_schema_key = serialize(AdaptiveCard(version="1.5", body=[TextBlock(text="x")], schema="http://x"))
    assert card_errors(bad_schema_key)  # the library's `schema` key is not `$schema`
    unknown = {"type": "AdaptiveCard", "version": "1.5", "body": [{"type": "Input.Slider", "id": "s"}]}
    assert any("unknown element type" in error for error in card_errors(unknown))
    teams_extension = card([line("hello")], full_width=True)
    assert teams_extension["msteams"] == {"width": "full"}
    assert_valid_card(teams_extension)


def test_cards_are_version_1_5_without_nulls() -> None:
    built = card([line("hello")])
    assert built["version"] == "1.5" and built["type"] == "AdaptiveCard"
    assert "null" not in json.dumps(built)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ada Lovelace", "Ada Lovelace"),
        ("  Ada \n\t Lovelace\r\n", "Ada Lovelace"),
        ("[click me](https://evil.example)", "[click me]\u200b(https://evil.example)"),
        ("- not a list", "\u200b- not a list"),
        ("1. not a list", "\u200b1. not a list"),
        ("bell\x07 and nul\x00", "bell and nul"),
        ("", ""),
        (None, ""),
    ],
)
def test_plain_neutralizes_markdown_and_control_characters(raw: str | None, expected: str) -> None:
    assert plain(raw) == expected


def test_plain_truncates_long_text() -> None:
    text = plain("x" * 500, 120)
    assert len(text) == 120 and text.endswith("…")


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://contoso.sharepoint.com/file.docx", True),
        ("http://127.0.0.1:3978/x", True),
        ("javascript:alert(1)", False),
        ("data:text/html;base64,AAAA", False),
        ("/relative/path", False),
        ("https://x.example/a b", False),
        ("https://x.example/" + "a" * 3000, False),
        (None, False),
    ],
)
def test_only_http_links_reach_cards(url: str | None, allowed: bool) -> None:
    assert (open_url("Open", url) is not None) is allowed


def test_times_in_the_teachers_timezone() -> None:
    due = datetime(2025, 12, 4, 23, 59, tzinfo=UTC)
    assert format_moment(due, TZ, NOW) == "Thu 4 Dec, 23:59"
    assert format_moment(due, ZoneInfo("Asia/Tokyo"), NOW) == "Fri 5 Dec, 08:59"
    assert format_moment(datetime(2026, 1, 5, 9, 0, tzinfo=UTC), TZ, NOW) == "Mon 5 Jan 2026, 09:00"
    assert due_text(due, TZ, NOW) == "Due Thu 4 Dec, 23:59 (in 3 days)"
    assert due_text(NOW - timedelta(days=2, hours=1), TZ, NOW) == "Was due Sat 29 Nov, 09:00 (2 days ago)"
    assert due_text(None, TZ, NOW) == "No due date"
    assert relative(NOW + timedelta(hours=5), NOW) == "in 5 hours"
    assert relative(NOW - timedelta(minutes=1), NOW) == "1 minute ago"
    assert relative(NOW, NOW) == "just now"
    assert late_text(timedelta(days=1, hours=2)) == "late by 2 days"
    assert late_text(timedelta(hours=3)) == "late by 1 day"
    assert late_text(None) is None
    assert turned_in_text(NOW - timedelta(days=2), TZ, NOW) == "Turned in Sat 29 Nov, 10:00 (2 days ago)"


def test_naive_graph_times_are_read_as_utc() -> None:
    naive = datetime(2025, 12, 4, 23, 59)
    assert format_moment(naive, TZ, NOW) == "Thu 4 Dec, 23:59"
    assert due_text(naive, TZ, NOW) == "Due Thu 4 Dec, 23:59 (in 3 days)"


def test_summer_time_is_applied() -> None:
    summer = datetime(2025, 7, 1, 15, 0, tzinfo=UTC)
    assert format_moment(summer, TZ, NOW) == "Tue 1 Jul, 16:00"


def test_size_is_measured_in_utf16_and_fit_is_the_largest_that_fits() -> None:
    ascii_card = card([line("a" * 1000)])
    wide_card = card([line("😀" * 1000)])
    assert card_size(ascii_card) > 2000  # two bytes per ASCII character
    assert card_size(wide_card) > 4000  # surrogate pairs: four bytes each

    def build(count: int) -> dict[str, object]:
        return card([line("x" * 1000) for _ in range(count)])

    fitted = largest_fitting(build, 200)
    assert card_size(build(fitted)) <= MAX_CARD_BYTES < card_size(build(fitted + 1))
    assert largest_fitting(build, 3) == 3


def test_the_cards_define_exactly_the_contract_verbs() -> None:
    assert set(payload_types()) == {
        "pickClass",
        "showAssignments",
        "showUngraded",
        "showWaiting",
        "openUngraded",  # issue 12 (4): from the help card, the list opens below it
        "openAssignments",  # issue 12 (4): from the classes card, the assignments open below it
        "showGrading",  # issue 12 (4): back to grading in place (Cancel); `openGrading` opens below
        "refreshView",
        "openGrading",
        "grade",
        "skip",
        "return",
        "returnAll",
        "reassign",
        "excuse",
        "resolveConflict",
        "undo",
        "snooze",
        "saveReminders",
        "remindOff",
        "signIn",
    }
    assert all(verb == payload.VERB for verb, payload in payload_types().items())


BAD_DATA: dict[str, tuple[str, object]] = {
    "data is a list": ("skip", ["c1", "a1", "s1"]),
    "data is a string": ("showAssignments", "c1"),
    "data is null": ("remindOff", None),
    "too many keys": ("signIn", {f"k{index}": "v" for index in range(300)}),
}


@pytest.mark.parametrize(("verb", "data"), list(BAD_DATA.values()), ids=list(BAD_DATA))
def test_data_that_is_not_a_small_object_is_refused(verb: str, data: Any) -> None:
    with pytest.raises(ActionDataError) as caught:
        parse_action(verb, data)
    assert caught.value.field == "data" and "out of date" in caught.value.message


def test_nonces_are_fresh_and_valid() -> None:
    first, second = new_nonce(), new_nonce()
    assert first != second
    assert parse_action("undo", {"nonce": first}) == UndoAction(first)
