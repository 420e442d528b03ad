"""Gradebot's composition root: Settings → aiohttp app (/api/messages, /healthz, sign-in pages), and the lifecycle
of the store, the Graph client, the outbox worker, reminders, housekeeping and (in sandbox mode) the local sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import html
import json
import logging
import os
import re
import socket
import ssl
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from aiohttp import web

from bot.auth import IdentityConfig, SignInPageError, SsoValidator, TeacherIdentity, TokenCipher, TokenKeyError
from bot.config import Settings, SettingsError
from bot.grading import GradingService
from bot.housekeeping import Housekeeping
from bot.notices import SettledNotices
from bot.outbox import GradeWriter
from bot.reminder_settings import ReminderSettings
from bot.reminders import Reminders, SweepReport
from bot.routes import Router
from bot.sandbox_link import SandboxLink
from bot.service import EducationService
from bot.teams import TeamsEdge
from cards import sign_in_card
from graph.budget import RequestBudget
from graph.connection import GraphHttp, TokenProvider, beta_url_for
from storage import open_store
from storage.store import Store

log = logging.getLogger("gradebot")

Clock = Callable[[], datetime]
PARTS: web.AppKey[Gradebot] = web.AppKey("parts")


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Gradebot:
    """Everything one running Gradebot owns, in the order it is built (and closed in reverse)."""

    settings: Settings
    store: Store
    graph: GraphHttp
    http: httpx.AsyncClient
    identity: TeacherIdentity
    education: EducationService
    writer: GradeWriter
    grading: GradingService
    router: Router
    edge: TeamsEdge
    reminders: Reminders
    app_graph: GraphHttp | None
    sandbox: SandboxLink | None
    housekeeping: Housekeeping

    async def aclose(self) -> None:
        await self.housekeeping.stop()
        await self.reminders.stop()
        await self.writer.aclose()
        if self.app_graph is not None:
            await self.app_graph.aclose()
        await self.graph.aclose()
        await self.http.aclose()
        await self.store.close()
        if self.sandbox is not None:
            await self.sandbox.close()


async def build(
    settings: Settings, *, clock: Clock = utc_now, sandbox: SandboxLink | None = None, dev_sso: bool = True
) -> Gradebot:
    """Wire every part from settings; in sandbox mode attach to (or start) the local sandbox first.

    `dev_sso=False` turns off the sandbox's stand-in for Teams SSO, so tests can exercise real SSO tokens,
    loginRequest and the sign-in page against the sandbox identity endpoint.
    """
    if settings.sandbox_mode and sandbox is None:
        sandbox = await (SandboxLink.connect(settings.sandbox_url) if settings.sandbox_url else SandboxLink.start())
    public_base = settings.public_base_url or f"http://127.0.0.1:{settings.port}"
    if sandbox is not None:
        info = sandbox.info
        config = IdentityConfig(
            app_id=info.bot_app_id,
            app_secret=info.bot_app_secret,
            authority_base=info.authority_base,
            tenant=info.tenant_id,
            scopes=settings.scopes,
            redirect_uri=f"{public_base}/auth/callback",
            ca_file=info.ca_file,
            allowed_tenants=frozenset({info.tenant_id}),
        )
        graph_url = info.graph_url
        # Tokens at rest are encrypted in sandbox mode too, with a development key kept beside the SQLite file.
        key = settings.token_encryption_key or _development_key(settings)
        ephemeral_key = not settings.token_encryption_key and settings.database_path() is None
    else:
        single = settings.app_type == "SingleTenant"
        config = IdentityConfig(
            app_id=settings.app_id,
            app_secret=settings.app_password,
            authority_base=settings.login_url,
            tenant=settings.app_tenant_id if single else "organizations",
            scopes=settings.scopes,
            redirect_uri=f"{public_base}/auth/callback",
            allowed_tenants=frozenset({settings.app_tenant_id}) if single else frozenset(),
        )
        graph_url = settings.graph_base_url
        key = settings.token_encryption_key
        ephemeral_key = False
    cipher = TokenCipher(key, settings.token_encryption_old_keys)
    store = await open_store(settings.database_url)
    # One budget for everything this instance sends as this app (delegated and app-only count alike in Graph).
    budget = RequestBudget(settings.graph_request_budget)
    graph = GraphHttp(
        graph_url,
        read_timeout=settings.graph_timeout_s,
        max_concurrency=settings.graph_max_concurrency,
        budget=budget,
    )
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else True
    http = httpx.AsyncClient(timeout=10.0, verify=verify, trust_env=False)
    identity = TeacherIdentity(
        config,
        store,
        cipher,
        SsoValidator(config, http),
        public_base,
        clock,
        sandbox_sso=sandbox.sso_token if sandbox is not None and dev_sso else None,
    )
    try:
        # A key that opens none of the stored sign-ins would lose them one by one: refuse to start instead.
        await identity.check_stored_sign_ins(ephemeral_key=ephemeral_key)
    except TokenKeyError:
        await http.aclose()
        await graph.aclose()
        await store.close()
        if sandbox is not None:
            await sandbox.close()
        raise
    education = EducationService(graph, clock)
    owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"
    writer = GradeWriter(store, graph, identity.provider, owner=owner, clock=clock)
    grading = GradingService(education, writer, store)
    reminder_settings = ReminderSettings(store, education)
    router = Router(
        education=education,
        grading=grading,
        identity=identity,
        store=store,
        clock=clock,
        extra_commands=reminder_settings.commands,
        extra_actions=reminder_settings.actions,
    )
    edge = TeamsEdge(
        router,
        app_id=settings.app_id,
        app_password=settings.app_password,
        app_type=settings.app_type,
        tenant_id=settings.app_tenant_id,
        openid_metadata_url=settings.bot_openid_metadata_url,
        sign_in_card=lambda reply: sign_in_card(reply.message),
    )
    writer.on_settled = SettledNotices(store, grading, edge, identity.provider, clock)
    app_graph: GraphHttp | None = None
    reminder_reads = education
    providers: Callable[[str, str], TokenProvider] = identity.provider
    if settings.reminder_data_access == "application":
        # Application permissions are beta-only for some education reads: the base is its own setting.
        app_base = settings.graph_app_base_url or beta_url_for(graph_url)
        app_graph = GraphHttp(
            app_base,
            beta_base_url=app_base,
            read_timeout=settings.graph_timeout_s,
            max_concurrency=settings.graph_max_concurrency,
            budget=budget,
        )
        reminder_reads = EducationService(app_graph, clock)
        providers = lambda tenant, _teacher: identity.app_provider(tenant)  # noqa: E731 - one-line adapter
    reminders = Reminders(
        store,
        reminder_reads,
        edge,
        providers,
        owner=owner,
        interval_s=settings.reminder_interval_s,
        sign_in_note=lambda tenant, teacher: sign_in_card(
            "Your grading reminder couldn't be prepared: please sign in to Gradebot again."
        ),
        app_only=settings.reminder_data_access == "application",
        budget=budget,
        clock=clock,
    )
    housekeeping = Housekeeping(store, outbox_retention=timedelta(days=settings.outbox_retention_days), clock=clock)
    return Gradebot(
        settings,
        store,
        graph,
        http,
        identity,
        education,
        writer,
        grading,
        router,
        edge,
        reminders,
        app_graph,
        sandbox,
        housekeeping=housekeeping,
    )


def _development_key(settings: Settings) -> bytes:
    """Sandbox mode without TOKEN_ENCRYPTION_KEY: a random key stored (mode 0600) next to the SQLite database,
    so cached sign-ins survive restarts; for an in-memory or PostgreSQL database it lives as long as the process."""
    database = settings.database_path()
    if database is None:
        return os.urandom(32)
    path = database.with_name(database.name + ".token-key")
    try:
        data = path.read_bytes()
        if len(data) == 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(key)
    return key


async def _messages(request: web.Request) -> web.StreamResponse:
    """POST /api/messages: the Bot Framework endpoint (JWT checked by botbuilder unless in sandbox mode)."""
    if request.content_type != "application/json":
        return web.json_response({"error": "Content-Type must be application/json."}, status=415)
    try:
        body = await request.json()
    except ValueError:
        return web.json_response({"error": "The body is not valid JSON."}, status=400)
    if not isinstance(body, dict):
        return web.json_response({"error": "The body must be a JSON object (an activity)."}, status=400)
    result = await request.app[PARTS].edge.process(body, request.headers.get("Authorization", ""))
    if result.body is None:
        return web.Response(status=result.status)
    return web.json_response(result.body, status=result.status)


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _sign_in_start(request: web.Request) -> web.StreamResponse:
    """GET /auth/start?link=…: a signed sign-in link from Teams → the authority (nothing is stored for a bad one)."""
    link = request.query.get("link", "")
    if not link or len(link) > 2048:
        return _page("Sign-in link incomplete", "Open the sign-in link from Gradebot in Teams again.", status=400)
    try:
        url = await request.app[PARTS].identity.start_sign_in(link, request.remote or "unknown")
    except SignInPageError as exc:
        return _page("Please wait" if exc.status == 429 else "Sign-in link not valid", str(exc), status=exc.status)
    raise web.HTTPFound(url)


async def _sign_in_callback(request: web.Request) -> web.StreamResponse:
    """The redirect URI of Gradebot's own sign-in page (query, or form_post when the authority posts the code)."""
    answer = {k: str(v) for k, v in (await request.post()).items()} if request.method == "POST" else dict(request.query)
    if "error" in answer:
        return _page("Sign-in cancelled", "Nothing was changed. You can close this window.", status=400)
    try:
        code = await request.app[PARTS].identity.finish_sign_in(answer)
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


def create_app(
    settings: Settings, *, clock: Clock = utc_now, sandbox: SandboxLink | None = None, dev_sso: bool = True
) -> web.Application:
    """The aiohttp application; parts are built on startup and closed on cleanup."""
    app = web.Application(client_max_size=1024 * 1024)

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        parts = await build(settings, clock=clock, sandbox=sandbox, dev_sso=dev_sso)
        app[PARTS] = parts
        await parts.housekeeping.start()
        parts.writer.start(interval_s=5.0)
        if settings.reminders_enabled:
            parts.reminders.start()
        try:
            yield
        finally:
            await parts.aclose()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_post("/api/messages", _messages)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/auth/start", _sign_in_start)
    app.router.add_get("/auth/callback", _sign_in_callback)
    app.router.add_post("/auth/callback", _sign_in_callback)
    return app


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 date-time: {text!r}") from exc
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give an offset or Z, e.g. 2026-11-30T07:00+01:00")
    return value


async def _remind_once(settings: Settings, at: datetime) -> SweepReport:
    """One reminder sweep as if at `at` (for operators and tests), with the same parts the server uses."""
    parts = await build(settings)
    try:
        return await parts.reminders.run_once(at.astimezone(UTC))
    finally:
        await parts.aclose()


GRADEBOT_LOGGERS = ("gradebot", "bot", "graph", "storage", "cards")
"""Gradebot's own loggers: they follow LOG_LEVEL. Every other logger follows the root's level."""


class _PathsOnly(logging.Filter):
    """Access log lines keep each request's path and drop its query string: a sign-in link carries a signed token
    there (and a `response_mode=query` callback would carry an authorization code)."""

    _QUERY = re.compile(r'("[A-Z]+ [^ ?"]*)\?[^ "]*')

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._QUERY.sub(r"\1", record.msg)
        return True


def configure_logging(settings: Settings) -> None:
    """Logging for the server and the command line: Gradebot's loggers at LOG_LEVEL; every other package's (msal,
    urllib3, requests, httpx, botbuilder, aiohttp…) at `settings.library_log_level` — INFO or above unless
    LOG_LEVEL_LIBRARIES asks, since at DEBUG msal logs authorization codes and PKCE verifiers."""
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger().setLevel(settings.library_log_level)
    for name in GRADEBOT_LOGGERS:
        logging.getLogger(name).setLevel(settings.log_level)
    # One line per Graph request already comes from graph/ (ids only, at DEBUG); httpx would repeat full URLs.
    logging.getLogger("httpx").setLevel(settings.library_log_level if settings.log_level_libraries else logging.WARNING)
    access = logging.getLogger("aiohttp.access")
    if not any(isinstance(existing, _PathsOnly) for existing in access.filters):
        access.addFilter(_PathsOnly())
    for warning in settings.warnings:
        log.warning("%s", warning)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="app.py", description="Run Gradebot.")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the bot (default)")
    once = sub.add_parser("remind-once", help="run one reminder sweep as if at --at, print what it did, exit")
    once.add_argument(
        "--at", required=True, type=_instant, help="ISO 8601 instant with offset, e.g. 2026-11-30T07:00+01:00"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"Gradebot cannot start: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        if args.command == "remind-once":
            report = asyncio.run(_remind_once(settings, args.at))
            print(json.dumps(dataclasses.asdict(report), indent=2))
            return 0 if not report.failed else 1
        if args.command in (None, "serve"):
            mode = "sandbox" if settings.sandbox_mode else "production"
            log.info("starting Gradebot in %s mode on %s:%s", mode, settings.host, settings.port)
            web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)
    except TokenKeyError as exc:
        print(f"Gradebot cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
