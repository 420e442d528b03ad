"""Gradebot's HTTP surface on aiohttp: POST /api/messages (the Bot Framework endpoint), /healthz (alive), /readyz
(fit to take turns), and the sign-in page's /auth/start and /auth/callback — every body bounded in size, time and
nesting before anything reads it."""

from __future__ import annotations

import asyncio
import html
import logging
import re
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.identity.sign_in import SignInPageError, SignInPages
from bot.kernel.health import OK, Readiness
from bot.teams.edge import TeamsEdge

log = logging.getLogger(__name__)

EDGE: web.AppKey[TeamsEdge] = web.AppKey("edge")
PAGES: web.AppKey[SignInPages] = web.AppKey("pages")
READINESS: web.AppKey[Readiness] = web.AppKey("readiness")
MAX_BODY_BYTES = 1024 * 1024
BODY_READ_TIMEOUT_S = 10.0
"""How long a client may take to send a request body (Teams sends a few KB at once; a trickle holds a connection)."""
MAX_JSON_DEPTH = 64
"""Activities nest about 8 deep (card data included); deeper bodies are refused before anything walks them."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def _bounded_body(timeout_s: float) -> Middleware:
    """Read every request body in full before the handler runs, within `timeout_s`; a slower client gets 408 and
    the connection is closed (aiohttp itself puts no limit on how long a body may take)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(timeout_s):
                    await request.read()  # kept by aiohttp: request.json() and request.post() reuse it
            except TimeoutError:
                log.info("request body too slow: %s %s", request.method, request.path)
                response = web.json_response({"error": "The request body took too long to arrive."}, status=408)
                response.force_close()
                await response.prepare(request)
                await response.write_eof()
                # Close now: aiohttp would otherwise linger up to 10 s more, reading the rest of the trickle.
                request.protocol.force_close()
                return response
        return await handler(request)

    return middleware


def _json_problem(value: object) -> str | None:
    """What makes a parsed body unusable: nesting deeper than MAX_JSON_DEPTH, or text with a lone surrogate
    (`\\ud800` is legal JSON but no valid Unicode: no database or encoder downstream accepts it). Walked without
    recursion."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        node, depth = pending.pop()
        if isinstance(node, str) and not node.isascii() and _SURROGATE.search(node):
            return "The body contains text that is not valid Unicode."
        elif isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                return "The body is nested too deeply."
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            pending.extend((child, depth + 1) for child in children)
    return None


async def _messages(request: web.Request) -> web.StreamResponse:
    """POST /api/messages: the Bot Framework endpoint (JWT checked by botbuilder unless in sandbox mode)."""
    edge = request.app[EDGE]
    authorization = request.headers.get("Authorization", "")
    if not edge.may_be_authentic(authorization):
        return web.Response(status=401)  # before the body is parsed: an unauthenticated body costs nothing
    if request.content_type != "application/json":
        return web.json_response({"error": "Content-Type must be application/json."}, status=415)
    try:
        body = await request.json()
        problem = _json_problem(body) if isinstance(body, dict) else "The body must be a JSON object (an activity)."
    except RecursionError:
        problem = "The body is nested too deeply."
    except ValueError:
        problem = "The body is not valid JSON."
    if problem is not None:
        return web.json_response({"error": problem}, status=400)
    return await edge.process(body, authorization)


async def _healthz(request: web.Request) -> web.Response:
    """GET /healthz: the process is alive and serving (nothing else is checked: a restart would not fix more)."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """GET /readyz: 200 when every check passes, else 503; the body names each check and why it fails."""
    checks = await request.app[READINESS].check()
    failing = [name for name, verdict in checks.items() if verdict != OK]
    body = {"status": "not ready" if failing else "ready", "failing": failing, "checks": checks}
    return web.json_response(body, status=503 if failing else 200, headers={"Cache-Control": "no-store"})


async def _sign_in_start(request: web.Request) -> web.StreamResponse:
    """GET /auth/start?link=…: a signed sign-in link from Teams → the authority (nothing is stored for a bad one)."""
    link = request.query.get("link", "")
    if not link or len(link) > 2048:
        return _page("Sign-in link incomplete", "Open the sign-in link from Gradebot in Teams again.", status=400)
    try:
        url = await request.app[PAGES].start(link, request.remote or "unknown")
    except SignInPageError as exc:
        return _page("Please wait" if exc.status == 429 else "Sign-in link not valid", str(exc), status=exc.status)
    raise web.HTTPFound(url)


async def _sign_in_callback(request: web.Request) -> web.StreamResponse:
    """The redirect URI of Gradebot's own sign-in page (query, or form_post when the authority posts the code)."""
    answer = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else dict(request.query)
    if "error" in answer:
        return _page("Sign-in cancelled", "Nothing was changed. You can close this window.", status=400)
    try:
        code = await request.app[PAGES].finish(answer)
    except SignInPageError as exc:
        return _page("Sign-in failed", str(exc), status=exc.status)
    return _page(
        "You're signed in",
        f"Return to Teams. If Teams asks for a code, enter {code}.",
        script=(
            "<script src='https://res.cdn.office.net/teams-js/2.34.0/js/MicrosoftTeams.min.js'></script>"
            "<script>if(window.microsoftTeams){microsoftTeams.app.initialize().then(function(){"
            f"microsoftTeams.authentication.notifySuccess('{code}');}});}}</script>"
        ),
    )


def _page(title: str, text: str, *, status: int = 200, script: str = "") -> web.Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Gradebot</title></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{script}</body></html>"
    )
    return web.Response(text=body, content_type="text/html", status=status)


async def _stopping(app: web.Application) -> None:
    log.info("stopping: no new connections; finishing the turns in flight")


def web_app(lifecycle: Callable[[web.Application], AsyncIterator[None]], *, body_timeout_s: float) -> web.Application:
    """The aiohttp application; `lifecycle` builds Gradebot's parts (setting EDGE, PAGES and READINESS) and closes
    them. Request bodies are limited to 1 MB and `body_timeout_s` seconds."""
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_bounded_body(body_timeout_s)])
    app.cleanup_ctx.append(lifecycle)
    app.on_shutdown.append(_stopping)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/auth/start", _sign_in_start)
    app.router.add_get("/auth/callback", _sign_in_callback)
    app.router.add_post("/auth/callback", _sign_in_callback)
    return app
