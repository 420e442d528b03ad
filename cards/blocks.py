"""What every card shares: the 1.5 envelope, buttons, safe text, banners and the size budget; times in the teacher's
words; and the base of the Action.Execute payloads with the typed fields they share."""

from __future__ import annotations

import json
import math
import re
import secrets
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Final, Literal, Self, dataclass_transform
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from microsoft_teams import cards as ac
from pydantic import BeforeValidator, ConfigDict, Field, Strict, StringConstraints, TypeAdapter, ValidationError
from pydantic.alias_generators import to_camel

Card = dict[str, Any]
"""A JSON-ready Adaptive Card."""
Color = Literal["Attention", "Good"] | None
Style = Literal["positive", "destructive"] | None
CARD_VERSION: Final = "1.5"
"""Teams' highest Adaptive Card version for bot-sent cards."""
MAX_CARD_BYTES: Final = 72_000
"""Our budget per card, counted in UTF-16 as Teams counts messages: the activity around it (ids, conversation, the
reply's envelope) takes up to a few KB more, and the whole activity must stay under 80 KB."""

# --- payloads: the base, its errors and the fields every feature uses -------------------------------------------------

ID_PATTERN: Final = r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}"
TIMEZONE_PATTERN: Final = r"[A-Za-z][A-Za-z0-9_+\-]{0,31}(/[A-Za-z0-9_+\-]{1,32}){0,2}"
MAX_DATA_KEYS: Final = 200
STALE_CARD: Final = "This card is out of date or incomplete. Open it again from the list and retry."
_WHOLE_TEXT = re.compile(r"\d{1,9}(?:\.0*)?", re.ASCII)


class ActionDataError(ValueError):
    """Card data failed validation; `str(error)` is written for the teacher, `field` names the bad key for logs, and
    `refusals` holds every refused key with its message (a form shows each under its input)."""

    def __init__(self, message: str, field: str | None = None, refusals: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.refusals = refusals or {field or "": message}


def new_nonce() -> str:
    """A fresh per-card-render idempotency token (the caller renders it into the card)."""
    return secrets.token_urlsafe(16)


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def whole_number(value: object) -> int:
    """An int, or its text form ("3", " 3 ", "3.0" as Input.Number may send); bounds are the field's."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str) and len(value) <= 16 and _WHOLE_TEXT.fullmatch(value.strip()):
        return int(value.strip().split(".")[0])
    raise ValueError("not a whole number")


Id = Annotated[str, Strict(), StringConstraints(pattern=f"^{ID_PATTERN}$")]
"""A Graph id as cards carry it: no slashes, spaces, query characters or path tricks."""
BLANK_IS_NONE: Final = BeforeValidator(lambda value: None if is_blank(value) else value)
OptionalId = Annotated[Id | None, BLANK_IS_NONE, Field(default=None)]
Nonce = Annotated[str, Strict(), StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]
"""The card render's idempotency token (`new_nonce()`)."""
Flag = Annotated[bool, Strict()]
Page = Annotated[int, BeforeValidator(whole_number), Field(ge=0, le=10_000)]


_ADAPTERS: dict[type[Any], TypeAdapter[Any]] = {}


def _adapter(kind: type[Any]) -> TypeAdapter[Any]:
    """One validator per payload type, built on first use."""
    if kind not in _ADAPTERS:
        _ADAPTERS[kind] = TypeAdapter(kind)
    return _ADAPTERS[kind]


@dataclass_transform(frozen_default=True)
@dataclass(frozen=True)
class ActionPayload:
    """Base of every payload: `VERB`, `to_data()` for the card, `parse()` for the invoke. A subclass (`class
    GradeAction(ActionPayload, verb="grade")`) is a frozen dataclass that code builds directly; pydantic checks its
    Annotated field types once, in `parse`, where data comes back from the client under camelCase keys."""

    __pydantic_config__: ClassVar[ConfigDict] = ConfigDict(alias_generator=to_camel, hide_input_in_errors=True)
    VERB: ClassVar[str]
    MESSAGES: ClassVar[Mapping[str, str]] = {}
    """The teacher-facing message for any refusal of a data key; other refusals say the card is stale."""

    def __init_subclass__(cls, verb: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if verb is not None:
            cls.VERB = verb
        dataclass(frozen=True)(cls)

    def to_data(self) -> dict[str, object]:
        """The Action.Execute `data` the card carries (fields at their default are left out)."""
        return dict(_adapter(type(self)).dump_python(self, mode="json", by_alias=True, exclude_defaults=True))

    @classmethod
    def parse(cls, data: object) -> Self:
        """The payload from an invoke's `data`, every value re-validated (raises ActionDataError)."""
        if not isinstance(data, Mapping) or len(data) > MAX_DATA_KEYS:
            raise ActionDataError(STALE_CARD, "data")
        adapter: TypeAdapter[Self] = _adapter(cls)
        try:
            return adapter.validate_python(data)
        except ValidationError as exc:
            refusals: dict[str, str] = {}
            for error in exc.errors():
                key = str(error["loc"][0]) if error["loc"] else ""
                cause = error.get("ctx", {}).get("error")
                if isinstance(cause, ActionDataError):
                    refusals.setdefault(cause.field or key, cause.message)
                else:
                    refusals.setdefault(key, cls.MESSAGES.get(key, STALE_CARD))
            field, message = next(iter(refusals.items()))
            raise ActionDataError(message, field or None, refusals) from None


# --- times, in the teacher's own timezone; English names so the output never depends on the process locale ----------

_WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))


def time_zone(name: object) -> ZoneInfo | None:
    """The zone an IANA name from untrusted input (card data, Teams' `localTimezone`) names, or None: wrong shape,
    unknown, a folder of the time zone database such as `Europe` (zoneinfo raises OSError for those), or too long."""
    if not isinstance(name, str) or re.fullmatch(TIMEZONE_PATTERN, name) is None:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None


def as_utc(value: datetime) -> datetime:
    """Graph times are UTC; a naive value (e.g. from a lenient parser) is read as UTC rather than crash a card."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def plural(count: int, unit: str, units: str | None = None) -> str:
    return f"{count} {unit if count == 1 else units or unit + 's'}"


def format_moment(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "Fri 4 Dec, 23:59" in `tz`; the year is added when it differs from `now`'s."""
    local = as_utc(at).astimezone(tz)
    year = "" if local.year == as_utc(now).astimezone(tz).year else f" {local.year}"
    return f"{_WEEKDAY_NAMES[local.weekday()]} {local.day} {_MONTHS[local.month - 1]}{year}, {local:%H:%M}"


def relative(at: datetime, now: datetime) -> str:
    """ "in 3 days", "2 hours ago" or "just now", in the span's largest whole unit."""
    span = as_utc(at) - as_utc(now)
    seconds = int(abs(span).total_seconds())
    for unit, size in _UNITS:
        if seconds >= size:
            amount = plural(seconds // size, unit)
            return f"in {amount}" if span > timedelta(0) else f"{amount} ago"
    return "just now"


def moment_with_relative(at: datetime, tz: ZoneInfo, now: datetime) -> str:
    """ "Fri 4 Dec, 23:59 (in 3 days)"."""
    return f"{format_moment(at, tz, now)} ({relative(at, now)})"


def due_text(due: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    """ "Due Fri 4 Dec, 23:59 (in 3 days)", "Was due … (2 days ago)" or "No due date"."""
    return deadline_text("Due", "Was due", due, tz, now) or "No due date"


def deadline_text(future: str, past: str, at: datetime | None, tz: ZoneInfo, now: datetime) -> str | None:
    """ "Closes …" (`future`) / "Closed …" (`past`) and the moment, or None when there is no deadline."""
    if at is None:
        return None
    return f"{future if as_utc(at) >= as_utc(now) else past} {moment_with_relative(at, tz, now)}"


def late_text(late_by: timedelta | None) -> str | None:
    """ "late by 2 days" (any part of a day counts as one), or None when on time."""
    if late_by is None or late_by <= timedelta(0):
        return None
    return f"late by {plural(late_by.days + (1 if late_by % timedelta(days=1) else 0), 'day')}"


def turned_in_text(at: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    """ "Turned in Thu 3 Dec, 14:05 (2 days ago)"."""
    return f"Turned in {moment_with_relative(at, tz, now)}" if at is not None else "Turn-in time unknown"


# --- rendering: typed `microsoft-teams-cards` models, serialized in one place -----------------------------------------

_LINK_SYNTAX = re.compile(r"\]\s*\(")
_LIST_MARKER = re.compile(r"^(?:[-*+]|\d+[.)])\s")
_ZERO_WIDTH_SPACE = "\u200b"


@dataclass(frozen=True, slots=True)
class Banner:
    """A status line at the top of a card: results ("Saved 18/20 for Ada"), errors, warnings."""

    text: str
    tone: Literal["good", "attention", "warning"]

    @classmethod
    def good(cls, text: str) -> Banner:
        return cls(text, "good")

    @classmethod
    def error(cls, text: str) -> Banner:
        return cls(text, "attention")

    @classmethod
    def warning(cls, text: str) -> Banner:
        return cls(text, "warning")


def plain(text: str | None, limit: int = 120) -> str:
    """Untrusted text made safe for a markdown TextBlock: one line, no control characters or link syntax, bounded."""
    text = text or ""
    if not (text.isascii() and text.isprintable()):  # printable ASCII (most text) has nothing to drop
        kept = (" " if char in "\r\n\t" else char for char in text)
        text = "".join(char for char in kept if unicodedata.category(char) not in ("Cc", "Cs"))
    cleaned = " ".join(text.split())
    cleaned = _LINK_SYNTAX.sub(f"]{_ZERO_WIDTH_SPACE}(", cleaned)
    cleaned = _ZERO_WIDTH_SPACE + cleaned if _LIST_MARKER.match(cleaned) else cleaned
    return cleaned if len(cleaned) <= limit else cleaned[: max(1, limit - 1)].rstrip() + "…"


def heading(text: str) -> ac.TextBlock:
    return ac.TextBlock(text=text, size="Medium", weight="Bolder", wrap=True, style="heading")


def line(text: str, *, subtle: bool = False, bold: bool = False, color: Color = None) -> ac.TextBlock:
    return ac.TextBlock(
        text=text, wrap=True, spacing="Small", is_subtle=subtle or None, weight="Bolder" if bold else None, color=color
    )


def facts(pairs: Sequence[tuple[str, str]]) -> ac.FactSet:
    return ac.FactSet(facts=[ac.Fact(title=title, value=value) for title, value in pairs])


def execute(title: str, payload: ActionPayload, *, with_inputs: bool = False, style: Style = None) -> ac.ExecuteAction:
    """An Action.Execute button carrying `payload`; inputs are sent only when `with_inputs`."""
    inputs: Literal["auto", "none"] = "auto" if with_inputs else "none"
    return ac.ExecuteAction(
        title=plain(title, 60), verb=payload.VERB, data=payload.to_data(), associated_inputs=inputs, style=style
    )


def open_url(title: str, url: str | None) -> ac.OpenUrlAction | None:
    """A link button; only absolute http(s) links reach a card (no javascript:, data: or relative URLs): else None."""
    if not url or len(url) > 2048 or not url.lower().startswith(("https://", "http://")):
        return None
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in url):
        return None
    return ac.OpenUrlAction(title=plain(title, 60) or "Open", url=url)


def buttons(actions: Sequence[ac.Action | None]) -> ac.ActionSet | None:
    kept = [action for action in actions if action is not None]
    return ac.ActionSet(actions=kept) if kept else None


def section(items: Sequence[ac.CardElement | None], *, spacing: Literal["Medium"] | None = None) -> ac.Container:
    """A separated block of the card (None entries are skipped)."""
    return ac.Container(items=[item for item in items if item is not None], separator=True, spacing=spacing)


def card(
    body: Sequence[ac.CardElement | None],
    actions: Sequence[ac.Action | None] = (),
    *,
    status: Banner | None = None,
    full_width: bool = False,
    refresh: ac.RefreshDefinition | None = None,
    fallback_text: str | None = None,
) -> Card:
    """Assemble and serialize a version 1.5 card (None entries are skipped)."""
    banner = None
    if status is not None:
        text = ac.TextBlock(text=plain(status.text, 400), wrap=True, weight="Bolder")
        banner = ac.Container(style=status.tone, items=[text])
    model = ac.AdaptiveCard(
        version=CARD_VERSION,
        body=[element for element in (banner, *body) if element is not None],
        actions=[action for action in actions if action is not None] or None,
        msteams=ac.TeamsCardProperties(width="full") if full_width else None,
        refresh=refresh,
        fallback_text=fallback_text or None,
    )
    return serialize(model)


def fitted_card(
    head: Sequence[ac.CardElement | None],
    rows: Sequence[Sequence[ac.CardElement | None]],
    noun: str,
    actions: Sequence[ac.Action | None] = (),
    *,
    full_width: bool = False,
) -> Card:
    """`head`, then as many `rows` (a few elements each) as fit within MAX_CARD_BYTES, then "…and 12 more classes not
    shown here." for the rest."""

    def build(count: int) -> Card:
        hidden = len(rows) - count
        more = line(f"…and {hidden} more {noun} not shown here.", subtle=True) if hidden > 0 else None
        return card(
            [*head, *(element for row in rows[:count] for element in row), more], actions, full_width=full_width
        )

    return build(largest_fitting(build, len(rows)))


def serialize(model: ac.AdaptiveCard) -> Card:
    """The card's JSON (the library writes `schema`, not `$schema`, so we never set it; Nones are dropped)."""
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def card_size(card_json: Mapping[str, Any]) -> int:
    """Bytes the card takes in a Teams message, counted as Teams does: compact JSON in UTF-16."""
    return len(json.dumps(card_json, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))


def largest_fitting(build: Callable[[int], Card], count: int, budget: int = MAX_CARD_BYTES) -> int:
    """The largest n ≤ count for which `build(n)` stays within `budget` (measured, not guessed); at least 1. Size
    grows about linearly with n, so the search interpolates, bisecting whenever a step did not halve the interval."""
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
