"""Fuzzing the card payload parsers with hypothesis: whatever comes back from a client, `parse_action` either returns
a payload or raises ActionDataError with a teacher-facing message — nothing else — and a parsed payload survives
its own round trip through card data. Pure functions, so thousands of examples cost a few seconds."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cards.blocks import ActionDataError, ActionPayload
from cards.general import SignInAction
from tests.cards import test_grading, test_lists, test_reminders
from tests.cards.walk import card_data, parse_action, payload_types

_HOSTILE = st.sampled_from(
    [
        *("", " ", "1e999", "NaN", "-0", "٣", "７", "\x00", "\ud800", "0x10", "1" * 20, "true ", "TRUE"),
        *("Europe", "America/Argentina", "x" * 300, "24:00", "23:59:60", "mon,,tue", "9999999.99", "0.001"),
    ]
)
_BY_KEY: dict[str, list[Any]] = {
    "timezone": ["Europe", "America", "America/Argentina", "Etc", "leapseconds", "Europe/" + "y" * 32, "UTC "],
    "points": ["1e999", "NaN", "-0", "9999999.99", "10000000", "0.001", "٣", 1e308, -1, True],
    "time": ["24:00", "23:59:60", "7:30", "07:30:00", " 07:30 ", "٠٧:٣٠"],
    "days": ["mon,,tue", "MON", "monday", ",", "sun,sun"],
    "page": [-1, 10_001, "1e3", 1.5, True],
    "expectedCount": [-1, 100_001, "1e3", 2.5, "3.0"],
    "knownModified": ["2026-13-45T25:61:61Z", "2026-01-01T00:00:00.12345678Z", "2026-01-01T00:00:00+24:00"],
}
_TEXT = st.text(max_size=200) | _HOSTILE
_SCALAR = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | _TEXT
)
_JSON = st.recursive(
    _SCALAR, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4), max_leaves=15
)
_KEYS = st.sampled_from(
    [
        "classId",
        "assignmentId",
        "submissionId",
        "points",
        "feedback",
        "knownModified",
        "force",
        "nonce",
        "confirmed",
        "expectedCount",
        "choice",
        "levels",
        "level_q1",
        "next",
        "query",
        "view",
        "page",
        "days",
        "time",
        "timezone",
        "quietStart",
        "quietEnd",
        "classIds",
        "minWaiting",
        "minAgeDays",
        "enabled",
    ]
)
_SAMPLES: list[ActionPayload] = [
    *test_lists.ROUND_TRIPS,
    *test_grading.ROUND_TRIPS,
    *test_reminders.ROUND_TRIPS,
    SignInAction(),
]
assert {sample.VERB for sample in _SAMPLES} == set(payload_types())  # every verb is a fuzzing target

_TARGETS = [(sample, key) for sample in _SAMPLES for key in sorted(card_data(sample)) or ["classId"]]


@st.composite
def near_valid(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A real payload's card data (inputs merged) with one key (every key of every verb is a target) dropped or
    replaced — by a value known to be awkward for that key, or by anything — and sometimes another one too."""
    payload, key = draw(st.sampled_from(_TARGETS))
    data = card_data(payload)
    keys = [key, *draw(st.lists(_KEYS, max_size=2))]
    for target in keys:
        if draw(st.integers(0, 5)) == 0:
            data.pop(target, None)
            continue
        special = _BY_KEY.get(target)
        data[target] = draw(st.sampled_from(special)) if special and draw(st.integers(0, 3)) else draw(_HOSTILE | _JSON)
    return payload.VERB, data


_DATA = st.dictionaries(_KEYS | _TEXT, _JSON, max_size=12) | _JSON

EXAMPLES = 1000


def test_any_card_data_parses_or_is_refused_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    ran = 0

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(st.tuples(st.sampled_from(sorted(payload_types())) | _TEXT | _SCALAR, _DATA) | near_valid() | near_valid())
    def parses_or_refuses(example: tuple[Any, Any]) -> None:
        nonlocal ran
        verb, data = example
        ran += 1
        try:
            payload = parse_action(verb, data)
        except ActionDataError as exc:
            assert exc.message and len(exc.message) < 300
            return
        assert isinstance(payload, ActionPayload)
        assert parse_action(payload.VERB, card_data(payload)) == payload

    parses_or_refuses()
    with capsys.disabled():
        print(f"\nfuzz card data parsers: {ran} examples")
    assert ran >= EXAMPLES
