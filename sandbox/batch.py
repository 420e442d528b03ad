"""JSON batching as Graph documents it (`POST /{version}/$batch`): the envelope checks (≤ 20 requests, unique ids,
relative urls, headers with a body, known dependsOn), parallel runs — or dependency order with 424 for dependents of a
failed request — and the `{"responses": [{id, status, headers, body}]}` answer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from sandbox.graph_http import GraphRequest, GraphResponse, bad_request, encode_json, make_headers

MAX_BATCH_REQUESTS = 20
BATCH_METHODS = frozenset({"GET", "POST", "PATCH", "PUT", "DELETE"})


class ConnectionDroppedError(Exception):
    """A fault inside a batch that takes the whole HTTP exchange down (the connection closes with no answer)."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    id: str
    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    depends_on: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return self.url.partition("?")[0].lstrip("/")

    def request(self, version: str, base_url: str) -> GraphRequest:
        """The item as a request of its own (the caller authenticates it with the batch's bearer)."""
        raw_path, _, query = self.url.partition("?")
        return GraphRequest(
            method=self.method,
            version=version,
            path=unquote(raw_path.lstrip("/")),
            raw_path=raw_path.lstrip("/"),
            query=tuple(parse_qsl(query, keep_blank_values=True)),
            headers=make_headers(self.headers),
            body=self.body,
            base_url=base_url,
        )


def parse_batch(raw: bytes) -> list[BatchItem]:
    """The batch's requests, or Graph's 400 for a malformed envelope."""
    try:
        envelope = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise bad_request("Invalid batch payload format.") from exc
    if not isinstance(envelope, dict) or not isinstance(envelope.get("requests"), list):
        raise bad_request("Invalid batch payload format: a 'requests' array is required.")
    requests: list[Any] = envelope["requests"]
    if not requests:
        raise bad_request("Invalid batch payload format: the batch has no requests.")
    if len(requests) > MAX_BATCH_REQUESTS:
        raise bad_request(f"The batch has {len(requests)} requests; at most {MAX_BATCH_REQUESTS} are allowed.")
    items = [_item(entry) for entry in requests]
    ids = [item.id for item in items]
    for item_id in ids:
        if ids.count(item_id) > 1:
            raise bad_request(f"Batch request ids must be unique; '{item_id}' is used more than once.")
    for item in items:
        for dependency in item.depends_on:
            if dependency not in ids:
                raise bad_request(f"Request '{item.id}' depends on '{dependency}', which is not in the batch.")
    execution_order(items)
    return items


def _item(entry: object) -> BatchItem:
    if not isinstance(entry, dict):
        raise bad_request("Invalid batch payload format: every request must be an object.")
    item_id, method, url = entry.get("id"), entry.get("method"), entry.get("url")
    if not isinstance(item_id, str) or not item_id:
        raise bad_request("Every batch request needs a non-empty string 'id'.")
    if not isinstance(method, str) or method.upper() not in BATCH_METHODS:
        raise bad_request(f"Request '{item_id}' has no valid 'method'.")
    if not isinstance(url, str) or not url:
        raise bad_request(f"Request '{item_id}' has no 'url'.")
    if "://" in url or url.startswith("//"):
        raise bad_request(f"Request '{item_id}': the url must be relative, e.g. '/education/classes'.")
    headers = entry.get("headers", {})
    if headers is None:
        headers = {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise bad_request(f"Request '{item_id}': 'headers' must be an object of strings.")
    depends_on = entry.get("dependsOn", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        raise bad_request(f"Request '{item_id}': 'dependsOn' must be a list of request ids.")
    body = b""
    if "body" in entry and entry["body"] is not None:
        if not any(name.lower() == "content-type" for name in headers):
            raise bad_request(f"Write request id : {item_id} does not contain Content-Type header or body.")
        content = entry["body"]
        body = content.encode("utf-8") if isinstance(content, str) else encode_json(content)
    return BatchItem(item_id, method.upper(), url, dict(headers), body, tuple(depends_on))


def execution_order(items: Sequence[BatchItem]) -> list[BatchItem]:
    """Dependencies first (request order otherwise); a cycle is Graph's 400."""
    done: set[str] = set()
    ordered: list[BatchItem] = []
    pending = list(items)
    while pending:
        ready = next((item for item in pending if all(d in done for d in item.depends_on)), None)
        if ready is None:
            raise bad_request("The batch's dependsOn references form a cycle.")
        ordered.append(ready)
        done.add(ready.id)
        pending.remove(ready)
    return ordered


def failed_dependency(item: BatchItem, dependency: str) -> GraphResponse:
    body = {
        "error": {
            "code": "FailedDependency",
            "message": f"The request '{item.id}' was not run because the request '{dependency}' it depends on failed.",
        }
    }
    return GraphResponse(424, body)


async def run_batch(
    items: Sequence[BatchItem], execute: Callable[[BatchItem], Awaitable[GraphResponse]]
) -> list[tuple[BatchItem, GraphResponse]]:
    """Run the items: in parallel (answers in completion order), or one by one in dependency order."""
    if not any(item.depends_on for item in items):

        async def run(item: BatchItem) -> tuple[BatchItem, GraphResponse]:
            return item, await execute(item)

        return [await finished for finished in asyncio.as_completed([run(item) for item in items])]
    results: dict[str, GraphResponse] = {}
    answered: list[tuple[BatchItem, GraphResponse]] = []
    for item in execution_order(items):
        failed = next((d for d in item.depends_on if not 200 <= results[d].status < 300), None)
        response = failed_dependency(item, failed) if failed is not None else await execute(item)
        results[item.id] = response
        answered.append((item, response))
    return answered


def batch_response(results: Sequence[tuple[BatchItem, GraphResponse]]) -> GraphResponse:
    return GraphResponse(
        200,
        {
            "responses": [
                {"id": item.id, "status": response.status, "headers": response.content_headers(), "body": response.body}
                for item, response in results
            ]
        },
    )
