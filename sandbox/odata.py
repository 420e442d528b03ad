"""OData query options as Graph's education endpoints take them: parse and validate `$top $select $expand $filter
$orderby $count $search $skiptoken $deltatoken` per endpoint, evaluate them on serialized items, and issue/read
the opaque, signed `$skiptoken` / `$deltatoken` values that nextLinks and deltaLinks carry.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import operator
import re
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

from sandbox.graph_http import GraphApiError, GraphRequest, bad_request

T = TypeVar("T")
Json = Mapping[str, Any]

SYSTEM_OPTIONS = frozenset(
    {
        "$top",
        "$skip",
        "$select",
        "$expand",
        "$filter",
        "$orderby",
        "$count",
        "$search",
        "$skiptoken",
        "$deltatoken",
        "$format",
        "$apply",
        "$compute",
        "$levels",
        "$index",
        "$schemaversion",
        "$id",
    }
)
PAGING = frozenset({"$skiptoken"})
LIST_OPTIONS = frozenset({"$top", "$select", "$filter", "$orderby", "$skiptoken"})
ENTITY_OPTIONS = frozenset({"$select", "$expand"})
ANY_PROPERTY: tuple[str, ...] = ()
"""`QueryRules.orderby` value meaning every property of the entity may be sorted on."""

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][+-]?\d+)?$")
_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<open>\()|(?P<close>\))|(?P<comma>,)|(?P<word>[^\s(),']+))")
_COMPARISONS = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})
_ORDERINGS: dict[str, Callable[[Any, Any], Any]] = {
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


@dataclass(frozen=True, slots=True)
class EntityShape:
    """What a query may name on one entity type."""

    type_name: str
    properties: tuple[str, ...]
    navigations: tuple[str, ...] = ()
    """Navigation properties the sandbox can `$expand`."""
    schema_navigations: tuple[str, ...] = ()
    """Navigation properties Graph's schema has but the sandbox does not expand."""

    def property_named(self, name: str) -> str | None:
        wanted = name.lower()
        return next((p for p in self.properties if p.lower() == wanted), None)

    def navigation_named(self, name: str) -> str | None:
        wanted = name.lower()
        return next((p for p in self.navigations if p.lower() == wanted), None)

    def not_found(self, name: str) -> GraphApiError:
        return bad_request(f"Could not find a property named '{name}' on type 'microsoft.graph.{self.type_name}'.")


@dataclass(frozen=True, slots=True)
class QueryRules:
    """What one endpoint accepts."""

    shape: EntityShape
    allowed: frozenset[str]
    orderby: tuple[str, ...] = ANY_PROPERTY
    orderby_error_code: str = "BadRequest"
    filter_eq_refused: frozenset[str] = frozenset()
    """Properties `$filter` may not compare with `eq` (getRecentlyModifiedSubmissions: lastModifiedDateTime)."""


@dataclass(frozen=True, slots=True)
class Prop:
    path: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Literal:
    value: object


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Prop | Literal
    right: Prop | Literal


@dataclass(frozen=True, slots=True)
class Logical:
    op: str
    left: FilterNode
    right: FilterNode


@dataclass(frozen=True, slots=True)
class Not:
    operand: FilterNode


@dataclass(frozen=True, slots=True)
class IsOf:
    type_name: str


FilterNode = Compare | Logical | Not | IsOf


@dataclass(frozen=True, slots=True)
class QueryOptions:
    top: int | None = None
    select: tuple[str, ...] = ()
    expand: tuple[str, ...] = ()
    filter: FilterNode | None = None
    orderby: tuple[tuple[str, bool], ...] = ()
    """(property, descending) pairs, first key first."""
    count: bool = False
    search: str | None = None
    skiptoken: str | None = None
    deltatoken: str | None = None
    carried: tuple[tuple[str, str], ...] = ()
    """The options as sent, minus `$skiptoken`: a nextLink repeats them."""


def not_allowed(name: str) -> GraphApiError:
    return bad_request(
        f"The query specified in the URI is not valid. Query option '{name[1:].capitalize()}' is not allowed. To"
        " allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or QueryValidationSettings."
    )


def parse_query(pairs: Sequence[tuple[str, str]], rules: QueryRules) -> QueryOptions:
    """Validate the query string against what the endpoint accepts (Graph's 400s for anything else)."""
    seen: dict[str, str] = {}
    carried: list[tuple[str, str]] = []
    for name, value in pairs:
        lowered = name.lower()
        if lowered.startswith("$"):
            if lowered not in SYSTEM_OPTIONS:
                raise bad_request(f"The query parameter '{name}' is not supported.")
            if lowered not in rules.allowed:
                raise not_allowed(lowered)
            if lowered in seen:
                raise bad_request(
                    f"Query option '{lowered}' was specified more than once, but it must be specified at most once."
                )
            seen[lowered] = value
        if lowered != "$skiptoken":
            carried.append((name, value))
    shape = rules.shape
    return QueryOptions(
        top=_top(seen["$top"]) if "$top" in seen else None,
        select=_select(seen["$select"], shape) if "$select" in seen else (),
        expand=_expand(seen["$expand"], shape) if "$expand" in seen else (),
        filter=parse_filter(seen["$filter"], shape, rules.filter_eq_refused) if "$filter" in seen else None,
        orderby=_orderby(seen["$orderby"], rules) if "$orderby" in seen else (),
        count=_count(seen["$count"]) if "$count" in seen else False,
        search=seen.get("$search"),
        skiptoken=seen.get("$skiptoken"),
        deltatoken=seen.get("$deltatoken"),
        carried=tuple(carried),
    )


def _top(value: str) -> int:
    text = value.strip()
    if not text.isdigit():
        raise bad_request(
            f"Invalid value '{value}' for $top query option found. The $top query option requires a non-negative"
            " integer value."
        )
    return int(text)


def _count(value: str) -> bool:
    text = value.strip().lower()
    if text not in ("true", "false"):
        raise bad_request(f"'{value}' is not a valid count option.")
    return text == "true"


def _split_list(value: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    items: list[str] = []
    depth = 0
    current: list[str] = []
    for char in value:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            items.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    items.append("".join(current).strip())
    return [item for item in items if item]


def _select(value: str, shape: EntityShape) -> tuple[str, ...]:
    names: list[str] = []
    for item in _split_list(value):
        if item == "*":
            return shape.properties
        canonical = shape.property_named(item) or shape.navigation_named(item)
        if canonical is None:
            raise shape.not_found(item)
        names.append(canonical)
    return tuple(names)


def _expand(value: str, shape: EntityShape) -> tuple[str, ...]:
    names: list[str] = []
    for item in _split_list(value):
        if "(" in item:
            raise bad_request(f"Nested query options in $expand ('{item}') are not supported here.")
        if item == "*":
            return shape.navigations
        canonical = shape.navigation_named(item)
        if canonical is None:
            if item.lower() in (n.lower() for n in shape.schema_navigations):
                raise bad_request(f"Expanding '{item}' on microsoft.graph.{shape.type_name} is not supported here.")
            raise shape.not_found(item)
        if canonical not in names:
            names.append(canonical)
    return tuple(names)


def _orderby(value: str, rules: QueryRules) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for item in _split_list(value):
        parts = item.split()
        if len(parts) > 2 or (len(parts) == 2 and parts[1].lower() not in ("asc", "desc")):
            raise bad_request(f"Syntax error in $orderby clause '{item}'.")
        name = parts[0]
        if rules.orderby:
            canonical = next((p for p in rules.orderby if p.lower() == name.lower()), None)
            if canonical is None:
                raise bad_request(
                    "The OData query is invalid. $orderby clause is only supported for these properties : "
                    f"({', '.join(rules.orderby)}).",
                    code=rules.orderby_error_code,
                )
        else:
            found = rules.shape.property_named(name)
            if found is None:
                raise rules.shape.not_found(name)
            canonical = found
        keys.append((canonical, len(parts) == 2 and parts[1].lower() == "desc"))
    return tuple(keys)


# -- $filter -------------------------------------------------------------------------------------------------------


def _invalid_filter(detail: str) -> GraphApiError:
    return bad_request(f"Invalid filter clause: {detail}")


class _FilterParser:
    def __init__(self, text: str, shape: EntityShape, eq_refused: frozenset[str]) -> None:
        self.tokens = self._tokenize(text)
        self.position = 0
        self.shape = shape
        self.eq_refused = eq_refused

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                raise _invalid_filter(f"Syntax error at position {position} in '{text}'.")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            position = match.end()
        return tokens

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise _invalid_filter("Unexpected end of expression.")
        self.position += 1
        return token

    def expect(self, kind: str) -> None:
        token = self.take()
        if token[0] != kind:
            raise _invalid_filter(f"Expected '{kind}' but found '{token[1]}'.")

    def is_word(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token[0] == "word" and token[1].lower() in words

    def parse(self) -> FilterNode:
        if not self.tokens:
            raise _invalid_filter("The $filter expression must evaluate to a single boolean value.")
        node = self.parse_or()
        if self.peek() is not None:
            raise _invalid_filter(f"Syntax error: unexpected '{self.take()[1]}'.")
        return node

    def parse_or(self) -> FilterNode:
        node = self.parse_and()
        while self.is_word("or"):
            self.take()
            node = Logical("or", node, self.parse_and())
        return node

    def parse_and(self) -> FilterNode:
        node = self.parse_unary()
        while self.is_word("and"):
            self.take()
            node = Logical("and", node, self.parse_unary())
        return node

    def parse_unary(self) -> FilterNode:
        if self.is_word("not"):
            self.take()
            return Not(self.parse_unary())
        token = self.peek()
        if token is not None and token[0] == "open":
            self.take()
            node = self.parse_or()
            self.expect("close")
            return node
        if self.is_word("isof"):
            self.take()
            self.expect("open")
            kind, value = self.take()
            if kind != "string":
                raise _invalid_filter("isof expects a quoted type name.")
            self.expect("close")
            return IsOf(value[1:-1].replace("''", "'").lstrip("#"))
        left = self.parse_operand()
        operator = self.peek()
        if operator is None or operator[0] != "word" or operator[1].lower() not in _COMPARISONS:
            raise _invalid_filter("The $filter expression must evaluate to a single boolean value.")
        op = self.take()[1].lower()
        right = self.parse_operand()
        for side in (left, right):
            if op == "eq" and isinstance(side, Prop) and side.path[0] in self.eq_refused:
                raise _invalid_filter(f"The 'eq' operator is not supported on '{side.path[0]}'.")
        return Compare(op, left, right)

    def parse_operand(self) -> Prop | Literal:
        kind, value = self.take()
        if kind == "string":
            return Literal(value[1:-1].replace("''", "'"))
        if kind != "word":
            raise _invalid_filter(f"Syntax error: unexpected '{value}'.")
        next_token = self.peek()
        if next_token is not None and next_token[0] == "open":
            raise _invalid_filter(f"The function '{value}' is not supported.")
        lowered = value.lower()
        if lowered in ("true", "false"):
            return Literal(lowered == "true")
        if lowered == "null":
            return Literal(None)
        if _NUMBER.match(value):
            return Literal(float(value))
        if _TIMESTAMP.match(value):
            return Literal(parse_timestamp(value))
        if _GUID.match(value):
            return Literal(value)
        path = value.split("/")
        canonical = self.shape.property_named(path[0])
        if canonical is None:
            raise self.shape.not_found(path[0])
        return Prop((canonical, *path[1:]))


def parse_filter(text: str, shape: EntityShape, eq_refused: frozenset[str] = frozenset()) -> FilterNode:
    return _FilterParser(text, shape, eq_refused).parse()


def _resolve(operand: Prop | Literal, item: Json) -> object:
    if isinstance(operand, Literal):
        return operand.value
    value: object = item
    for part in operand.path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _comparable(value: object, other: object) -> object:
    if isinstance(other, datetime) and isinstance(value, str) and _TIMESTAMP.match(value):
        return parse_timestamp(value)
    if isinstance(value, str) and isinstance(other, str):
        return value.lower() if _GUID.match(value) else value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return value


def matches(node: FilterNode, item: Json) -> bool:
    """Evaluate a parsed `$filter` on one serialized item."""
    if isinstance(node, Logical):
        if node.op == "and":
            return matches(node.left, item) and matches(node.right, item)
        return matches(node.left, item) or matches(node.right, item)
    if isinstance(node, Not):
        return not matches(node.operand, item)
    if isinstance(node, IsOf):
        return str(item.get("@odata.type", "")).lstrip("#").lower() == node.type_name.lower()
    left_raw, right_raw = _resolve(node.left, item), _resolve(node.right, item)
    left, right = _comparable(left_raw, right_raw), _comparable(right_raw, left_raw)
    if node.op == "eq":
        return left == right
    if node.op == "ne":
        return left != right
    if left is None or right is None:
        return False
    try:
        return bool(_ORDERINGS[node.op](left, right))
    except TypeError:
        return False


# -- $orderby, $search, $select ------------------------------------------------------------------------------------


def _sort_key(value: object) -> tuple[int, Any]:
    if value is None:
        return (0, 0)
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return (1, parse_timestamp(value))
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float | str):
        return (1, value)
    return (1, json.dumps(value, sort_keys=True))


def order(rows: list[T], as_json: Callable[[T], Json], orderby: Sequence[tuple[str, bool]]) -> list[T]:
    """Stable multi-key sort; nulls first ascending (OData)."""
    ordered = list(rows)
    for name, descending in reversed(orderby):
        ordered.sort(key=lambda row: _sort_key(as_json(row).get(name)), reverse=descending)
    return ordered


def search_matches(search: str, item: Json, fields: Sequence[str]) -> bool:
    """Graph's directory-style `$search="property:term"`: some word of the property starts with the term."""
    text = search.strip()
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        raise bad_request("Syntax error: the $search value must be enclosed in double quotes.")
    clause = text[1:-1]
    name, _, term = clause.rpartition(":")
    targets = [name] if name else list(fields)
    wanted = term.strip().lower()
    for target in targets:
        value = item.get(target)
        if isinstance(value, str) and any(word.startswith(wanted) for word in re.split(r"[\s._@-]+", value.lower())):
            return True
    return False


def select(item: Json, names: Sequence[str], keep: Sequence[str] = ()) -> dict[str, Any]:
    """Only the selected properties (plus `id`, `@odata.type` and `keep`), in the item's own order."""
    if not names:
        return dict(item)
    wanted = {"id", "@odata.type", *names, *keep}
    return {name: value for name, value in item.items() if name in wanted}


def projection(options: QueryOptions) -> str:
    """The `(a,b,nav())` part Graph adds to `@odata.context` for $select/$expand."""
    parts = [*options.select, *(f"{name}()" for name in options.expand)]
    return f"({','.join(parts)})" if parts else ""


# -- paging and tokens ---------------------------------------------------------------------------------------------


MAX_TOP = 999
"""The most items one page holds, whatever `$top` asks: Graph's largest documented page size (directory lists,
`$top` 1–999). Education documents none; Graph's paging guide says an API may clamp a larger `$top`, as here."""


def page_bounds(total: int, offset: int, top: int | None, page_size: int, max_top: int) -> tuple[int, int | None]:
    """(end, next offset or None) for a page starting at `offset`: `$top` items (at most `max_top`), else
    `page_size`."""
    size = page_size if top is None else min(top, max_top)
    end = min(total, offset + size)
    return end, (end if end < total and size > 0 else None)


def link(request: GraphRequest, carried: Sequence[tuple[str, str]], extra: Sequence[tuple[str, str]]) -> str:
    """An absolute URL to the same resource on the sandbox (clients follow nextLinks verbatim)."""
    pairs = [f"{quote(name, safe='$')}={quote_plus(value, safe='$,()/:')}" for name, value in carried]
    pairs += [f"{name}={quote(value, safe='')}" for name, value in extra]
    query = "&".join(pairs)
    return f"{request.base_url}/{request.version}/{request.raw_path}" + (f"?{query}" if query else "")


class TokenSigner:
    """Issues and checks opaque paging/delta tokens, bound by an HMAC to the exact resource and query they page."""

    def __init__(self, secret: bytes | None = None) -> None:
        self._secret = secret or secrets.token_bytes(32)

    @staticmethod
    def scope(request: GraphRequest, carried: Sequence[tuple[str, str]]) -> str:
        options = "&".join(f"{name.lower()}={value}" for name, value in sorted(carried, key=lambda p: p[0].lower()))
        return f"{request.version}|{request.path.lower()}|{options}"

    def _mac(self, kind: str, scope: str, payload: str) -> str:
        return hmac.new(self._secret, f"{kind}|{scope}|{payload}".encode(), hashlib.sha256).hexdigest()[:32]

    def _issue(self, kind: str, scope: str, payload: str) -> str:
        inner = json.dumps({"p": payload, "m": self._mac(kind, scope, payload)}, separators=(",", ":"))
        inner_b64 = base64.urlsafe_b64encode(inner.encode()).decode()
        outer = json.dumps({"InnerSkipToken": inner_b64}, separators=(",", ":"))
        return base64.b64encode(outer.encode()).decode()

    def _read(self, kind: str, token: str, scope: str) -> str:
        try:
            outer = json.loads(base64.b64decode(token.encode(), validate=True))
            inner = json.loads(base64.urlsafe_b64decode(str(outer["InnerSkipToken"]).encode()))
            payload, mac = str(inner["p"]), str(inner["m"])
        except (ValueError, KeyError, TypeError, binascii.Error) as exc:
            raise bad_request(f"The ${kind} value is not valid.") from exc
        if not hmac.compare_digest(mac, self._mac(kind, scope, payload)):
            raise bad_request(f"The ${kind} value is not valid for this request.")
        return payload

    def skiptoken(self, scope: str, offset: int) -> str:
        return self._issue("skiptoken", scope, str(offset))

    def read_skiptoken(self, token: str, scope: str) -> int:
        payload = self._read("skiptoken", token, scope)
        if not payload.isdigit():
            raise bad_request("The $skiptoken value is not valid.")
        return int(payload)

    def deltatoken(self, scope: str, since: datetime) -> str:
        return self._issue("deltatoken", scope, since.astimezone(UTC).isoformat())

    def read_deltatoken(self, token: str, scope: str) -> datetime:
        return datetime.fromisoformat(self._read("deltatoken", token, scope))


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp with up to 7 fractional digits (Graph's), as an aware datetime."""
    value = text.replace("Z", "+00:00").replace("z", "+00:00")
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(ch for ch in rest if ch.isdigit())
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def walk(node: FilterNode) -> Iterator[FilterNode]:
    yield node
    if isinstance(node, Logical):
        yield from walk(node.left)
        yield from walk(node.right)
    elif isinstance(node, Not):
        yield from walk(node.operand)
