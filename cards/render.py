"""Building blocks every card shares: the 1.5 card envelope, buttons, safe text, status banners and the size budget.

Cards are built with the typed models of `microsoft-teams-cards` and serialized here, in one place.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from microsoft_teams.cards import (
    Action,
    ActionSet,
    AdaptiveCard,
    CardElement,
    Container,
    ExecuteAction,
    Fact,
    FactSet,
    OpenUrlAction,
    RefreshDefinition,
    RichTextBlock,
    TeamsCardProperties,
    TextBlock,
    TextRun,
)

from cards.actions import ActionPayload

Card = dict[str, Any]
"""A JSON-ready Adaptive Card."""

CARD_VERSION: Final = "1.5"
"""Teams' highest Adaptive Card version for bot-sent cards."""
MAX_CARD_BYTES: Final = 80_000
"""Our budget per card; Teams rejects messages over ~100 KB counted in UTF-16."""
NAME_LENGTH: Final = 120
TITLE_LENGTH: Final = 60

Tone = Literal["info", "good", "attention", "warning"]
_TONE_STYLE: Final[dict[Tone, Literal["emphasis", "good", "attention", "warning"]]] = {
    "info": "emphasis",
    "good": "good",
    "attention": "attention",
    "warning": "warning",
}
_LINK_SYNTAX = re.compile(r"\]\s*\(")
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])\s")
_ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True, slots=True)
class Banner:
    """A status line at the top of a card: results ("Saved 18/20 for Ada"), errors, "Saving…"."""

    text: str
    tone: Tone = "info"

    @classmethod
    def good(cls, text: str) -> Banner:
        return cls(text, "good")

    @classmethod
    def error(cls, text: str) -> Banner:
        return cls(text, "attention")

    @classmethod
    def warning(cls, text: str) -> Banner:
        return cls(text, "warning")


def plain(text: str | None, limit: int = NAME_LENGTH, *, multiline: bool = False) -> str:
    """Untrusted text made safe for a markdown TextBlock: no control characters, no link syntax, bounded length."""
    if not text:
        return ""
    kept: list[str] = []
    for char in text:
        if char in "\r\n\t":
            kept.append("\n" if multiline and char != "\t" else " ")
        elif unicodedata.category(char) not in ("Cc", "Cs"):
            kept.append(char)
    cleaned = "".join(kept)
    if not multiline:
        cleaned = " ".join(cleaned.split())
    cleaned = _LINK_SYNTAX.sub(lambda match: f"]{_ZERO_WIDTH_SPACE}(", cleaned)
    lines = [_ZERO_WIDTH_SPACE + line if _LIST_MARKER.match(line) else line for line in cleaned.split("\n")]
    cleaned = "\n".join(lines).strip()
    if len(cleaned) > limit:
        cleaned = cleaned[: max(1, limit - 1)].rstrip() + "…"
    return cleaned


def heading(text: str) -> TextBlock:
    return TextBlock(text=text, size="Medium", weight="Bolder", wrap=True, style="heading")


def line(
    text: str, *, subtle: bool = False, bold: bool = False, color: Literal["Attention", "Good"] | None = None
) -> TextBlock:
    block = TextBlock(text=text, wrap=True, spacing="Small")
    if subtle:
        block.is_subtle = True
    if bold:
        block.weight = "Bolder"
    if color is not None:
        block.color = color
    return block


def literal_text(text: str, *, subtle: bool = False) -> RichTextBlock:
    """Free text shown exactly as typed (TextRun has no markdown), e.g. feedback."""
    run = TextRun(text=text)
    if subtle:
        run.is_subtle = True
    inlines: list[CardElement] = [run]
    return RichTextBlock(inlines=inlines, spacing="Small")


def facts(pairs: Sequence[tuple[str, str]]) -> FactSet:
    return FactSet(facts=[Fact(title=title, value=value) for title, value in pairs])


def banner(status: Banner) -> Container:
    return Container(
        style=_TONE_STYLE[status.tone],
        items=[TextBlock(text=plain(status.text, 400), wrap=True, weight="Bolder" if status.tone != "info" else None)],
    )


def execute(
    title: str,
    payload: ActionPayload,
    *,
    with_inputs: bool = False,
    style: Literal["positive", "destructive"] | None = None,
) -> ExecuteAction:
    """An Action.Execute button carrying `payload`; inputs are sent only when `with_inputs`."""
    action = ExecuteAction(
        title=plain(title, TITLE_LENGTH),
        verb=payload.VERB,
        data=payload.to_data(),
        associated_inputs="auto" if with_inputs else "none",
    )
    if style is not None:
        action.style = style
    return action


def safe_url(url: str | None) -> str | None:
    """Only absolute http(s) links reach a card (no javascript:, data: or relative URLs)."""
    if not url or len(url) > 2048 or not url.lower().startswith(("https://", "http://")):
        return None
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        return None
    return url


def open_url(title: str, url: str | None) -> OpenUrlAction | None:
    link = safe_url(url)
    return OpenUrlAction(title=plain(title, TITLE_LENGTH) or "Open", url=link) if link else None


def buttons(actions: Sequence[Action | None]) -> ActionSet | None:
    kept = [action for action in actions if action is not None]
    return ActionSet(actions=kept) if kept else None


def card(
    body: Sequence[CardElement | None],
    actions: Sequence[Action | None] = (),
    *,
    status: Banner | None = None,
    full_width: bool = False,
    refresh: RefreshDefinition | None = None,
    fallback_text: str | None = None,
) -> Card:
    """Assemble and serialize a version 1.5 card (None entries are skipped)."""
    elements: list[CardElement] = [banner(status)] if status is not None else []
    elements.extend(element for element in body if element is not None)
    model = AdaptiveCard(version=CARD_VERSION, body=elements)
    kept_actions = [action for action in actions if action is not None]
    if kept_actions:
        model.actions = kept_actions
    if full_width:
        model.msteams = TeamsCardProperties(width="full")
    if refresh is not None:
        model.refresh = refresh
    if fallback_text:
        model.fallback_text = fallback_text
    return serialize(model)


def serialize(model: AdaptiveCard) -> Card:
    data: Card = model.model_dump(mode="json", exclude_none=True, by_alias=True)
    return data


def card_size(card_json: Mapping[str, Any]) -> int:
    """Bytes the card takes in a Teams message, counted as Teams does: compact JSON in UTF-16."""
    text = json.dumps(card_json, ensure_ascii=False, separators=(",", ":"))
    return len(text.encode("utf-16-le"))


def largest_fitting(build: Callable[[int], Card], count: int, budget: int = MAX_CARD_BYTES) -> int:
    """The largest n ≤ count for which `build(n)` stays within `budget` (measured, not guessed); at least 1.

    Card size grows about linearly with n, so the search interpolates, with a bisection step whenever an
    interpolation step did not halve the interval (a few builds in practice, O(log n) at worst).
    """
    if count <= 1:
        return count
    high, high_size = count, card_size(build(count))
    if high_size <= budget:
        return count
    low, low_size = 1, card_size(build(1))
    if low_size > budget:
        return 1
    bisect = False
    while high - low > 1:
        width = high - low
        if bisect:
            guess = (low + high) // 2
        else:
            guess = low + (budget - low_size) * width // max(1, high_size - low_size)
            guess = min(max(guess, low + 1), high - 1)
        size = card_size(build(guess))
        if size <= budget:
            low, low_size = guess, size
        else:
            high, high_size = guess, size
        bisect = not bisect and (high - low) * 2 > width
    return low
