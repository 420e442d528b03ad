"""The Graph emulator on aiohttp: `/v1.0/…` and `/beta/…` (education routes and `$batch`) with latency, faults,
bearer checks and throttling applied per request (and per batch item), plus the admin endpoints under
`/_sandbox/graph/` (fault plan, scripted faults, request counters, the journal of applied writes).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from typing import Any

from aiohttp import web

from sandbox.access import BearerVerifier, Caller
from sandbox.batch import BatchItem, ConnectionDroppedError, batch_response, parse_batch, run_batch
from sandbox.education import EducationApi
from sandbox.faults import FaultConfigError, FaultDecision, FaultPlan, Faults, ScriptedFault
from sandbox.graph_http import GRAPH_VERSIONS, GraphApiError, GraphRequest, GraphResponse, error_response
from sandbox.journal import WriteJournal
from sandbox.odata import MAX_TOP
from sandbox.school import School
from sandbox.tokens import TokenAuthority

logger = logging.getLogger(__name__)

FAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Bad request."),
    401: ("InvalidAuthenticationToken", "Access token validation failure."),
    403: ("accessDenied", "Access denied."),
    404: ("itemNotFound", "The resource could not be found."),
    409: ("conflict", "The request conflicts with the current state of the resource."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("generalException", "An unspecified error has occurred."),
    502: ("badGateway", "The upstream service returned an invalid response."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable. Please retry later."),
    504: ("GatewayTimeout", "The service did not answer in time."),
}


def retry_after_header(seconds: float) -> str:
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def throttled(retry_after_s: float) -> GraphApiError:
    """Graph's 429 for the assignment service, with Retry-After in seconds."""
    return GraphApiError(
        429,
        "TooManyRequests",
        "Please retry again later.",
        inner_code="429",
        inner_message="Please retry after",
        headers={"Retry-After": retry_after_header(retry_after_s)},
    )


def injected_error(decision: FaultDecision) -> GraphApiError:
    if decision.status == 429:
        return throttled(decision.retry_after_s if decision.retry_after_s is not None else 1.0)
    code, message = FAULT_ERRORS.get(decision.status, ("UnknownError", "An injected fault."))
    headers = {"Retry-After": retry_after_header(decision.retry_after_s)} if decision.retry_after_s is not None else {}
    return GraphApiError(decision.status, code, message, headers=headers)


ASSIGNMENT_SERVICE = re.compile(r"/(assignments|getRecentlyModifiedSubmissions|assignmentCategories|rubrics)(/|$|\?)")


def is_assignment_service(path: str) -> bool:
    """Whether Graph counts the request against the assignment service's budget (350 / 10 s per app per tenant);
    roster reads (classes, members, teachers, users) have their own much larger budget."""
    return bool(ASSIGNMENT_SERVICE.search("/" + path.lstrip("/")))


class GraphService:
    """Serves Graph exchanges: faults, authentication, throttling, then the education routes."""

    def __init__(
        self,
        school: School,
        authority: TokenAuthority,
        faults: Faults,
        page_size: int = 10,
        journal: WriteJournal | None = None,
        max_top: int = MAX_TOP,
    ) -> None:
        self.school = school
        self.faults = faults
        self.verifier = BearerVerifier(authority, school.directory)
        self.api = EducationApi(
            school,
            page_size=page_size,
            max_top=max_top,
            settle=lambda: timedelta(milliseconds=faults.plan.action_settle_ms),
            journal=journal,
        )

    # -- HTTP ----------------------------------------------------------------------------------------------------

    async def handle_http(self, request: web.Request, version: str) -> web.StreamResponse:
        graph_request = GraphRequest(
            method=request.method.upper(),
            version=version,
            path=request.match_info.get("tail", ""),
            raw_path=request.rel_url.raw_path[len(version) + 2 :],
            query=tuple(request.rel_url.query.items()),
            headers=request.headers,
            body=await request.read(),
            base_url=f"{request.scheme}://{request.host}",
        )
        decision = self.faults.decide(graph_request.method, request.path, http=True)
        await self.faults.delay()
        try:
            if decision is not None:
                response = await self._apply_fault(decision, graph_request)
                if response is not None:
                    return self._web(response)
            if graph_request.path.lower() == "$batch":
                served = self._web(await self.batch(graph_request))
            else:
                served = self._web(self.exchange(graph_request, None))
        except ConnectionDroppedError:
            return self._drop(request)
        if decision is not None and decision.kind == "lost":
            return self._drop(request)  # served, but the client never hears so
        return served

    async def _apply_fault(self, decision: FaultDecision, request: GraphRequest) -> GraphResponse | None:
        """Act on a fault: None means go on serving the request (after a delay; for `lost`, then drop it)."""
        if decision.kind == "lost":
            return None
        if decision.kind == "delay":
            await self.faults.sleep(decision.delay_s)
            return None
        if decision.kind == "drop":
            raise ConnectionDroppedError()
        if decision.kind == "timeout":
            await self.faults.sleep(self.faults.plan.timeout_s)
            return error_response(GraphApiError(504, *FAULT_ERRORS[504]), request)
        return error_response(injected_error(decision), request)

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Close the connection without a response (the client sees a disconnect)."""
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)

    @staticmethod
    def _web(response: GraphResponse) -> web.Response:
        body = response.encoded()
        return web.Response(status=response.status, body=body or None, headers=response.content_headers())

    # -- one exchange --------------------------------------------------------------------------------------------

    def exchange(self, request: GraphRequest, caller: Caller | None) -> GraphResponse:
        """Authenticate (unless the batch did), count and throttle, then serve one Graph request."""
        try:
            if caller is None:
                try:
                    caller = self.verifier.caller(request.headers.get("Authorization"))
                except GraphApiError:
                    self.faults.count_unauthenticated()
                    raise
            app_id = caller.principal.app_id or "unknown"
            retry_after: float | None = None
            if is_assignment_service(request.path):
                retry_after = self.faults.admit(app_id, caller.principal.tenant_id)
            else:
                self.faults.count_roster(app_id)
            if retry_after is not None:
                raise throttled(retry_after)
            response = self.api.handle(request, caller)
        except GraphApiError as error:
            response = error_response(error, request)
        except Exception:
            # The emulator's edge: a bug answers like Graph's 500 (and spares the rest of a $batch).
            logger.exception("graph %s /%s/%s failed", request.method, request.version, request.path)
            response = error_response(GraphApiError(500, *FAULT_ERRORS[500]), request)
        response.headers.setdefault("request-id", request.request_id)
        response.headers.setdefault("client-request-id", request.client_request_id)
        logger.debug("graph %s /%s/%s -> %s", request.method, request.version, request.path, response.status)
        return response

    async def batch(self, request: GraphRequest) -> GraphResponse:
        """POST $batch: the bearer is checked once; every item is counted, throttled and faulted on its own."""
        self.faults.stats.batches += 1
        try:
            if request.method != "POST":
                raise GraphApiError(
                    405, "BadRequest", f"The requested resource does not support http method '{request.method}'."
                )
            try:
                caller = self.verifier.caller(request.headers.get("Authorization"))
            except GraphApiError:
                self.faults.count_unauthenticated()
                raise
            items = parse_batch(request.body)
        except GraphApiError as error:
            return error_response(error, request)

        lost: list[str] = []

        async def execute(item: BatchItem) -> GraphResponse:
            self.faults.stats.batch_items += 1
            item_request = item.request(request.version, request.base_url)
            decision = self.faults.decide(item.method, f"/{request.version}/{item.path}", http=False)
            if decision is not None:
                if decision.kind == "lost":
                    lost.append(item.id)
                response = await self._apply_fault(decision, item_request)
                if response is not None:
                    return response
            return self.exchange(item_request, caller)

        answered = batch_response(await run_batch(items, execute))
        if lost:
            raise ConnectionDroppedError()  # a lost answer for an item is a lost answer for the whole batch
        return answered

    # -- admin ---------------------------------------------------------------------------------------------------

    async def get_plan(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.plan.to_json())

    async def put_plan(self, request: web.Request) -> web.Response:
        """Replace the fault plan (fields not given take their defaults)."""
        try:
            data = await request.json()
            if not isinstance(data, dict):
                raise FaultConfigError("The fault plan must be a JSON object.")
            self.faults.plan = FaultPlan.from_json(data)
        except (ValueError, FaultConfigError) as exc:
            return _admin_error(str(exc))
        return web.json_response(self.faults.plan.to_json())

    async def get_script(self, request: web.Request) -> web.Response:
        return web.json_response({"script": [fault.to_json() for fault in self.faults.script]})

    async def add_script(self, request: web.Request) -> web.Response:
        """Append scripted faults: one object or a list of them."""
        try:
            data = await request.json()
            entries = data if isinstance(data, list) else [data]
            if not all(isinstance(entry, dict) for entry in entries):
                raise FaultConfigError("Scripted faults must be JSON objects.")
            faults = [ScriptedFault.from_json(entry) for entry in entries]
        except (ValueError, FaultConfigError) as exc:
            return _admin_error(str(exc))
        self.faults.add_script(faults)
        return await self.get_script(request)

    async def clear_script(self, request: web.Request) -> web.Response:
        self.faults.clear_script()
        return web.Response(status=204)

    async def get_stats(self, request: web.Request) -> web.Response:
        return web.json_response(self.faults.stats.to_json())

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.faults.reset_stats()
        return web.json_response(self.faults.stats.to_json())

    async def get_writes(self, request: web.Request) -> web.Response:
        """The write journal: `?after=SEQ` for writes numbered above SEQ, `?submissionId=` for one submission."""
        try:
            after = int(request.query.get("after", "0"))
        except ValueError:
            return _admin_error("after must be a whole number.")
        writes = self.api.journal.since(after, request.query.get("submissionId") or None)
        return web.json_response(
            {"lastSeq": self.api.journal.last_seq, "writes": [write.to_json() for write in writes]}
        )

    async def clear_writes(self, request: web.Request) -> web.Response:
        self.api.journal.clear()
        return web.Response(status=204)


def _admin_error(message: str) -> web.Response:
    body: dict[str, Any] = {"error": {"code": "BadRequest", "message": message}}
    return web.Response(status=400, text=json.dumps(body), content_type="application/json")


def setup_graph(
    app: web.Application,
    school: School,
    authority: TokenAuthority,
    faults: Faults,
    page_size: int = 10,
    journal: WriteJournal | None = None,
    max_top: int = MAX_TOP,
) -> None:
    """Register the Graph routes (both versions, $batch) and the Graph admin endpoints on `app`; nothing else."""
    service = GraphService(school, authority, faults, page_size, journal, max_top)
    for version in GRAPH_VERSIONS:

        async def handle(request: web.Request, version: str = version) -> web.StreamResponse:
            return await service.handle_http(request, version)

        app.router.add_route("*", f"/{version}/{{tail:.*}}", handle)
    app.router.add_get("/_sandbox/graph/faults", service.get_plan)
    app.router.add_put("/_sandbox/graph/faults", service.put_plan)
    app.router.add_get("/_sandbox/graph/faults/script", service.get_script)
    app.router.add_post("/_sandbox/graph/faults/script", service.add_script)
    app.router.add_delete("/_sandbox/graph/faults/script", service.clear_script)
    app.router.add_get("/_sandbox/graph/stats", service.get_stats)
    app.router.add_post("/_sandbox/graph/stats/reset", service.reset_stats)
    app.router.add_get("/_sandbox/graph/writes", service.get_writes)
    app.router.add_delete("/_sandbox/graph/writes", service.clear_writes)
