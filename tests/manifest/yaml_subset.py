"""A small parser for the block-style YAML our config files use (PyYAML is not a dependency).

Handles nested mappings and sequences by indentation, `- key: value` items, comments, and plain, single- or
double-quoted scalars (all kept as strings). Anything else (flow collections, block scalars, anchors, tabs) is refused
with YamlSubsetError, so a file that parses here is also plain YAML for every other reader.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


class YamlSubsetError(ValueError):
    """The text uses YAML this parser does not accept, or is malformed."""


@dataclass(frozen=True, slots=True)
class _Line:
    number: int
    indent: int
    text: str


def _strip_comment(text: str) -> str:
    quote: str | None = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'" and (index == 0 or text[index - 1] in " :-"):
            quote = char
        elif char == "#" and (index == 0 or text[index - 1] == " "):
            return text[:index].rstrip()
    return text.rstrip()


def _lines(source: str) -> list[_Line]:
    lines: list[_Line] = []
    for number, raw in enumerate(source.splitlines(), start=1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlSubsetError(f"line {number}: tab in indentation")
        text = _strip_comment(raw.strip())
        if text:
            lines.append(_Line(number, len(raw) - len(raw.lstrip(" ")), text))
    return lines


def _scalar(text: str, number: int) -> str:
    if not text:
        return ""
    if text[0] in "[{|>&*!":
        raise YamlSubsetError(f"line {number}: unsupported YAML syntax {text[:20]!r}")
    if text[0] == '"':
        if len(text) < 2 or not text.endswith('"'):
            raise YamlSubsetError(f"line {number}: unterminated double-quoted string")
        try:
            value: str = json.loads(text)
        except json.JSONDecodeError as error:
            raise YamlSubsetError(f"line {number}: bad double-quoted string ({error.msg})") from error
        return value
    if text[0] == "'":
        if len(text) < 2 or not text.endswith("'"):
            raise YamlSubsetError(f"line {number}: unterminated single-quoted string")
        return text[1:-1].replace("''", "'")
    return text


def _split_key(text: str) -> tuple[str, str] | None:
    """(key, rest) when the text starts a mapping entry `key: rest` / `key:`, else None."""
    if text[0] in "\"'":
        end = text.find(text[0], 1)
        if end > 0 and text[end + 1 : end + 2] == ":" and text[end + 2 : end + 3] in ("", " "):
            return text[1:end], text[end + 2 :].strip()
        return None
    for index, char in enumerate(text):
        if char == ":" and (index + 1 == len(text) or text[index + 1] == " "):
            return text[:index].strip(), text[index + 1 :].strip()
    return None


def _is_item(line: _Line) -> bool:
    return line.text == "-" or line.text.startswith("- ")


class _Parser:
    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines
        self.position = 0

    def block(self, indent: int) -> Any:
        line = self.lines[self.position]
        return self.sequence(indent) if _is_item(line) else self.mapping(indent)

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while self.position < len(self.lines):
            line = self.lines[self.position]
            if line.indent < indent:
                break
            if line.indent > indent:
                raise YamlSubsetError(f"line {line.number}: unexpected indentation")
            if _is_item(line):
                break
            entry = _split_key(line.text)
            if entry is None:
                raise YamlSubsetError(f"line {line.number}: expected `key: value`, got {line.text!r}")
            key, rest = entry
            if key in result:
                raise YamlSubsetError(f"line {line.number}: duplicate key {key!r}")
            self.position += 1
            result[key] = _scalar(rest, line.number) if rest else self.nested(indent, line.number)
        return result

    def nested(self, parent_indent: int, number: int) -> Any:
        if self.position >= len(self.lines):
            return None
        following = self.lines[self.position]
        if following.indent > parent_indent or (following.indent == parent_indent and _is_item(following)):
            return self.block(following.indent)
        return None

    def sequence(self, indent: int) -> list[Any]:
        result: list[Any] = []
        while self.position < len(self.lines):
            line = self.lines[self.position]
            if line.indent != indent or not _is_item(line):
                if line.indent > indent:
                    raise YamlSubsetError(f"line {line.number}: unexpected indentation")
                break
            rest = line.text[1:].strip()
            if not rest:
                self.position += 1
                result.append(self.nested(indent, line.number))
                continue
            item_indent = indent + (len(line.text) - len(line.text[1:].lstrip()))
            if _split_key(rest) is not None:
                # `- key: value` opens a mapping whose keys line up with `key`.
                self.lines[self.position] = _Line(line.number, item_indent, rest)
                result.append(self.mapping(item_indent))
            else:
                self.position += 1
                result.append(_scalar(rest, line.number))
        return result


def parse_yaml(source: str) -> Any:
    """The document as dicts, lists and strings (None for an empty document or an empty value)."""
    lines = _lines(source)
    if not lines:
        return None
    if lines[0].indent != 0:
        raise YamlSubsetError(f"line {lines[0].number}: the document must start at column 0")
    parser = _Parser(lines)
    document = parser.block(0)
    if parser.position != len(lines):
        raise YamlSubsetError(f"line {lines[parser.position].number}: unexpected content")
    return document
