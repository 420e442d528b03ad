"""docs/cards/ shows the cards Gradebot sends today: the scripted session's cards equal the checked-in JSON, and
Microsoft's renderer draws that JSON, without a parse warning, into the checked-in pictures (in CI; locally it skips
where Chromium or the namespace is missing, and fails instead under GRADEBOT_REQUIRE_PLAYGROUND=1)."""

from __future__ import annotations

import copy

from PIL import Image

from tests.docs.pictures import (
    CARDS_DIR,
    REGENERATE,
    differing_pixels,
    missing_renderer,
    render,
    stored_cards,
)
from tests.docs.session import teacher_session
from tests.playground.run_in_namespace import NamespaceUnavailableError, cannot_run

SAME = 10
"""Visibly different pixels a picture may have against a fresh drawing (one letter changed makes ~40)."""


async def test_the_checked_in_cards_are_the_cards_gradebot_sends_today() -> None:
    cards = await teacher_session()
    stored = stored_cards()
    stale = sorted(name for name in cards.keys() | stored.keys() if cards.get(name) != stored.get(name))
    assert not stale, f"docs/cards/ is out of date for {stale}: run `{REGENERATE}` and commit docs/cards/"


def test_the_pictures_are_what_the_renderer_draws_from_the_checked_in_cards() -> None:
    reason = missing_renderer()
    if reason:
        cannot_run("Drawing docs/cards/", reason)
    cards = stored_cards()
    # Two cards that must not pass: one the renderer cannot parse, one with a letter changed.
    changed = copy.deepcopy(cards["welcome"])
    block = next(element for element in changed["body"] if element.get("type") == "TextBlock")
    block["text"] = block["text"][:-1] + ("x" if block["text"][-1] != "x" else "y")
    checks = {"zz-unknown-element": {**cards["sign-in"], "body": [{"type": "Input.Slider", "id": "x"}]}}
    try:
        rendered = render({**cards, **checks, "zz-changed": changed})
    except NamespaceUnavailableError as error:
        cannot_run("Drawing docs/cards/", str(error))
    assert rendered.warnings == {"zz-unknown-element": rendered.warnings.get("zz-unknown-element")}, rendered.warnings
    assert "Input.Slider" in str(rendered.warnings["zz-unknown-element"])
    stored = {name: Image.open(CARDS_DIR / f"{name}.png") for name in cards}
    assert differing_pixels(rendered.pictures["zz-changed"], stored["welcome"]) > SAME
    different = {
        name: count for name in cards if (count := differing_pixels(rendered.pictures[name], stored[name])) > SAME
    }
    assert not different, f"pictures in docs/cards/ differ from a fresh drawing {different}: run `{REGENERATE}`"
