"""Helpers to read card JSON in tests, and to play the Teams client: press a button, merge inputs into its data."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from cards.blocks import ActionDataError, ActionPayload
from cards.grading import LEVEL_INPUT_PREFIX, GradeAction, format_points
from cards.reminders import SaveRemindersAction


def nodes(card: object) -> Iterator[dict[str, Any]]:
    """Every JSON object in the card, depth first (including nested ShowCard cards and refresh)."""
    if isinstance(card, dict):
        yield card
        for value in card.values():
            yield from nodes(value)
    elif isinstance(card, list):
        for value in card:
            yield from nodes(value)


def of_type(card: object, kind: str) -> list[dict[str, Any]]:
    return [node for node in nodes(card) if node.get("type") == kind]


def texts(card: object) -> str:
    """All text a person can see: TextBlock/TextRun text, fact titles and values, labels, button titles, choices."""
    parts: list[str] = []
    for node in nodes(card):
        for key in ("text", "title", "value", "label", "placeholder"):
            value = node.get(key)
            if isinstance(value, str):
                parts.append(value)
    return "\n".join(parts)


def executes(card: object) -> list[dict[str, Any]]:
    """Every Action.Execute outside the refresh definition."""
    found: list[dict[str, Any]] = []
    if isinstance(card, dict):
        for key, value in card.items():
            if key == "refresh":
                continue
            if key == "type" and value == "Action.Execute":
                found.append(card)
            else:
                found.extend(executes(value))
    elif isinstance(card, list):
        for value in card:
            found.extend(executes(value))
    return found


def button(card: object, title: str) -> dict[str, Any]:
    matches = [action for action in executes(card) if action.get("title") == title]
    assert len(matches) == 1, f"expected one button {title!r}, found {[a.get('title') for a in executes(card)]}"
    return matches[0]


def verbs(card: object) -> list[str]:
    return [str(action["verb"]) for action in executes(card)]


def input_values(card: object) -> dict[str, str]:
    """Each input's initial value as the client would send it: a string (Input.Number too)."""
    values: dict[str, str] = {}
    for node in nodes(card):
        kind = node.get("type")
        if isinstance(kind, str) and kind.startswith("Input.") and "id" in node:
            value = node.get("value", "")
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            values[node["id"]] = value if isinstance(value, str) else str(value)
    return values


def press(card: dict[str, Any], title: str, typed: Mapping[str, str] | None = None) -> tuple[str, dict[str, object]]:
    """(verb, data) as Teams would send them when `title` is pressed after typing `typed` into inputs."""
    action = button(card, title)
    data: dict[str, object] = dict(action.get("data") or {})
    if action.get("associatedInputs", "auto").lower() != "none":
        data.update(input_values(card))
        data.update(typed or {})
    wire = json.loads(json.dumps({"verb": action["verb"], "data": data}))
    return wire["verb"], wire["data"]


def press_and_parse(card: dict[str, Any], title: str, typed: Mapping[str, str] | None = None) -> ActionPayload:
    verb, data = press(card, title, typed)
    return parse_action(verb, data)


def typed_inputs(payload: ActionPayload) -> dict[str, object]:
    """What a client merges into the data of a payload whose values live in the card's inputs (grade,
    saveReminders), as the card's inputs would send them: strings, "" for empty."""
    if isinstance(payload, GradeAction):
        inputs: dict[str, object] = {
            "points": format_points(payload.points) if payload.points is not None else "",
            "feedback": payload.feedback or "",
        }
        inputs.update({f"{LEVEL_INPUT_PREFIX}{level.quality_id}": level.column_id for level in payload.levels})
        return inputs
    if isinstance(payload, SaveRemindersAction):
        return {
            "days": ",".join(payload.days),
            "time": payload.at.strftime("%H:%M"),
            "timezone": payload.timezone,
            "quietStart": payload.quiet_start.strftime("%H:%M") if payload.quiet_start else "",
            "quietEnd": payload.quiet_end.strftime("%H:%M") if payload.quiet_end else "",
            "classIds": ",".join(payload.class_ids),
            "minWaiting": str(payload.min_waiting),
            "minAgeDays": str(payload.min_age_days),
            "enabled": "true" if payload.enabled else "false",
        }
    return {}


def card_data(payload: ActionPayload) -> dict[str, object]:
    """The `data` of an invoke for `payload`: its card data with its typed inputs merged, through JSON."""
    wire: dict[str, object] = json.loads(json.dumps({**payload.to_data(), **typed_inputs(payload)}))
    return wire


def payload_types() -> dict[str, type[ActionPayload]]:
    """Every payload class the cards define, by verb (found, not listed: a new payload is covered at once)."""
    found: dict[str, type[ActionPayload]] = {}
    pending = list(ActionPayload.__subclasses__())
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        verb = getattr(kind, "VERB", None)
        # Only the class its module names is the payload type (a slotted dataclass would leave a copy behind).
        if isinstance(verb, str) and getattr(sys.modules[kind.__module__], kind.__name__, None) is kind:
            found[verb] = kind
    return found


def parse_action(verb: object, data: object) -> ActionPayload:
    """What the router does with an invoke's verb and data: the payload type's own validation."""
    kind = payload_types().get(verb) if isinstance(verb, str) else None
    if kind is None:
        raise ActionDataError("That button belongs to an older version of Gradebot.", "verb")
    return kind.parse(data)
