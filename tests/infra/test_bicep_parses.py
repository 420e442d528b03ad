"""infra/main.bicep parses with the Bicep tree-sitter grammar (no Bicep CLI can run offline): no ERROR or MISSING
node, the declarations it finds are the template's, and a broken copy does not pass (so the check is real)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import tree_sitter_bicep
from tree_sitter import Language, Node, Parser

BICEP = Path(__file__).resolve().parents[2] / "infra" / "main.bicep"
SOURCE = BICEP.read_text(encoding="utf-8")
PARSER = Parser(Language(tree_sitter_bicep.language()))


def syntax_errors(source: str) -> list[str]:
    """Where the grammar found an error (ERROR) or had to assume a missing token (MISSING), as line:column."""

    def walk(node: Node) -> Iterator[str]:
        if node.type == "ERROR" or node.is_missing:
            line, column = node.start_point
            yield f"{line + 1}:{column + 1} {'MISSING ' + node.type if node.is_missing else 'ERROR'}"
        for child in node.children:
            yield from walk(child)

    return list(walk(PARSER.parse(source.encode("utf-8")).root_node))


def declared(kind: str) -> set[str]:
    """Names of the top-level declarations of a kind (parameter, variable, resource, output), from the syntax tree."""
    root = PARSER.parse(SOURCE.encode("utf-8")).root_node
    return {
        (name.text or b"").decode()
        for node in root.children
        if node.type == f"{kind}_declaration"
        for name in node.children[1:2]
    }


def test_main_bicep_parses_without_errors() -> None:
    assert syntax_errors(SOURCE) == []


def test_the_parse_finds_every_declaration_of_the_template() -> None:
    for kind, keyword in (("parameter", "param"), ("variable", "var"), ("resource", "resource"), ("output", "output")):
        assert declared(kind) == set(re.findall(rf"^{keyword} (\w+)", SOURCE, re.MULTILINE)), kind
    assert {"app", "bot", "postgres", "vault"} <= declared("resource")


@pytest.mark.parametrize(
    ("breakage", "broken"),
    [
        ("the last closing brace dropped", SOURCE[: SOURCE.rstrip().rfind("}")]),
        ("a parameter without a type", SOURCE.replace("param location string", "param location =", 1)),
        ("a misspelt keyword", SOURCE.replace("\nresource ", "\nresorce ", 1)),
        ("a variable without =", SOURCE.replace("\nvar ", "\nvar x y ", 1)),
    ],
)
def test_a_broken_copy_is_reported(breakage: str, broken: str) -> None:
    assert broken != SOURCE
    assert syntax_errors(broken), f"{breakage} was not reported"
