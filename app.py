"""Gradebot's composition root: settings → every part wired once → the web app, its workers and their lifecycle.
`python app.py [serve | remind-once --at …]` runs it (bot/cli.py reads the command line)."""

from __future__ import annotations

import contextlib
import gc
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from aiohttp import web

from bot import cli
from bot.grading.grading import Grading
from bot.grading.handlers import GradingHandlers
from bot.grading.notices import SettledNotices
from bot.grading.session import GradingSession
from bot.grading.writes import GradeWrites
from bot.identity.accounts import TeacherIdentity
from bot.identity.cipher import TokenCipher
from bot.identity.handlers import IdentityHandlers
from bot.identity.sign_in import SignInPages
from bot.identity.sso import IdentityConfig
from bot.janitor import Janitor
from bot.kernel.errors import StartupRefusedError
from bot.kernel.health import Readiness, ReadinessLimits, Remote
from bot.kernel.router import Router
from bot.kernel.workers import Workers
from bot.lists.handlers import ListHandlers
from bot.outbox.queue import Outbox
from bot.reminders.handlers import ReminderHandlers
from bot.reminders.sweep import Reminders, SweepReport
from bot.school.service import EducationService
from bot.settings import Settings
from bot.teams.edge import TeamsEdge
from bot.web import BODY_READ_TIMEOUT_S, EDGE, PAGES, READINESS, web_app
from cards.general import sign_in_card
from graph.connection import GraphHttp, RequestBudget, TokenProvider, beta_url_for
from storage import open_store
from storage.store import Store

if TYPE_CHECKING:  # the sandbox is a development tool, installed beside Gradebot only for development and tests
    from sandbox.link import SandboxLink

Clock = Callable[[], datetime]
utc_now: Clock = partial(datetime.now, UTC)


@dataclass
class Gradebot:
    """Everything one running Gradebot owns; `closing` stops and closes it all in reverse order of building: the
    workers first (the outbox lets writes in flight land for a moment, then hands them back), the store last."""

    store: Store
    accounts: TeacherIdentity
    router: Router
    edge: TeamsEdge
    pages: SignInPages
    outbox: Outbox
    reminders: Reminders
    janitor: Janitor
    readiness: Readiness
    workers: Workers
    clock: Clock
    closing: contextlib.AsyncExitStack


async def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    sandbox: SandboxLink | None = None,
    dev_sso: bool = True,
    readiness: ReadinessLimits | None = None,
) -> Gradebot:
    """Wire every part from settings; in sandbox mode attach to (or start) the local sandbox first.

    `dev_sso=False` turns off the sandbox's stand-in for Teams SSO, so tests can exercise real SSO tokens,
    loginRequest and the sign-in page against the sandbox identity endpoint.
    """
    if settings.sandbox_mode and sandbox is None:
        sandbox = await _sandbox(settings)
    public_base = settings.public_base_url or f"http://127.0.0.1:{settings.port}"
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
    graph_url, key, ephemeral_key = settings.graph_base_url, settings.token_encryption_key, False
    if sandbox is not None:
        info = sandbox.info
        config = replace(
            config,
            app_id=info.bot_app_id,
            app_secret=info.bot_app_secret,
            authority_base=info.authority_base,
            tenant=info.tenant_id,
            ca_file=info.ca_file,
            allowed_tenants=frozenset({info.tenant_id}),
        )
        graph_url = info.graph_url
        # Tokens at rest are encrypted in sandbox mode too, with a development key kept beside the SQLite file.
        key = settings.token_encryption_key or _development_key(settings)
        ephemeral_key = not settings.token_encryption_key and settings.database_path() is None
    cipher = TokenCipher(key, settings.token_encryption_old_keys)
    async with contextlib.AsyncExitStack() as opened:  # on failure, what was opened so far is closed
        if sandbox is not None:
            opened.push_async_callback(sandbox.close)
        store = await opened.enter_async_context(await open_store(settings.database_url))
        dev_sso_token = sandbox.sso_token if sandbox is not None and dev_sso else None
        accounts = TeacherIdentity(config, store, cipher, clock, sandbox_sso=dev_sso_token)
        # A key that opens none of the stored sign-ins would lose them one by one: refuse to start instead.
        await accounts.check_stored_sign_ins(ephemeral_key=ephemeral_key)
        closing = opened.pop_all()
    pages = SignInPages(accounts, store, cipher, public_base, clock)
    # One budget for everything this instance sends as this app (delegated and app-only count alike in Graph).
    budget = RequestBudget(settings.graph_request_budget)
    new_graph = partial(
        GraphHttp, budget=budget, read_timeout=settings.graph_timeout_s, max_concurrency=settings.graph_max_concurrency
    )
    graph = new_graph(graph_url)
    closing.push_async_callback(graph.aclose)
    education = EducationService(graph)
    owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:8]}"

    identity = IdentityHandlers(accounts, pages, education)
    router = Router(gate=identity, store=store, clock=clock)
    edge = TeamsEdge(router, settings)
    session = GradingSession(education, store)
    notices = SettledNotices(store, session, edge, accounts.provider, clock)
    outbox = Outbox(store, graph, accounts.provider, GradeWrites(store), owner=owner, clock=clock, on_settled=notices)

    reminder_reads = education
    providers: Callable[[str, str], TokenProvider] = accounts.provider
    app_only = settings.reminder_data_access == "application"
    if app_only:
        # Application permissions are beta-only for some education reads: the base is its own setting.
        app_graph = new_graph(settings.graph_app_base_url or beta_url_for(graph_url))
        closing.push_async_callback(app_graph.aclose)
        reminder_reads = EducationService(app_graph)
        providers = lambda tenant, _teacher: accounts.app_provider(tenant)  # noqa: E731 - one-line adapter
    closing.push_async_callback(edge.aclose)
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
        app_only=app_only,
        budget=budget,
        clock=clock,
    )
    ListHandlers(education, store, config.app_id).register(router)
    GradingHandlers(session, Grading(session, outbox, store)).register(router)
    ReminderHandlers(store, education).register(router)
    identity.register(router)
    janitor = Janitor(
        store,
        outbox_retention=timedelta(days=settings.outbox_retention_days),
        audit_retention=timedelta(days=settings.audit_retention_days),
    )
    workers = Workers([janitor, outbox, *([reminders] if settings.reminders_enabled else [])], clock)
    closing.push_async_callback(workers.stop)
    remotes: dict[str, tuple[str, Remote]] = {
        "graph": ("Microsoft Graph", graph),
        "identity": ("the sign-in authority", accounts),
    }
    ready = Readiness(store, remotes, readiness or ReadinessLimits())
    return Gradebot(store, accounts, router, edge, pages, outbox, reminders, janitor, ready, workers, clock, closing)


async def _sandbox(settings: Settings) -> SandboxLink:
    """Sandbox mode: attach to the sandbox at SANDBOX_URL, or start one (the gradebot-sandbox development package)."""
    try:
        from sandbox.link import SandboxLink  # only sandbox mode needs the development package
    except ImportError as exc:
        raise StartupRefusedError(
            "No MicrosoftAppId is set, so Gradebot would run in sandbox mode, which needs the development package "
            "gradebot-sandbox (scripts/setup installs it). Set MicrosoftAppId and the other production settings."
        ) from exc
    return await (SandboxLink.connect(settings.sandbox_url) if settings.sandbox_url else SandboxLink.start())


def _development_key(settings: Settings) -> bytes:
    """Sandbox mode without TOKEN_ENCRYPTION_KEY: a random key stored (mode 0600) next to the SQLite database,
    so cached sign-ins survive restarts; for an in-memory or PostgreSQL database it lives as long as the process."""
    database = settings.database_path()
    if database is None:
        return os.urandom(32)
    path = database.with_name(database.name + ".token-key")
    with contextlib.suppress(FileNotFoundError):
        if len(data := path.read_bytes()) == 32:
            return data
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as file:
        file.write(key)
    return key


PARTS: web.AppKey[Gradebot] = web.AppKey("parts")


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    sandbox: SandboxLink | None = None,
    dev_sso: bool = True,
    body_timeout_s: float = BODY_READ_TIMEOUT_S,
    readiness: ReadinessLimits | None = None,
) -> web.Application:
    """The aiohttp application; parts are built on startup, their workers started, and all closed on cleanup."""

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        parts = await build(settings, clock=clock, sandbox=sandbox, dev_sso=dev_sso, readiness=readiness)
        app[PARTS], app[EDGE], app[PAGES], app[READINESS] = parts, parts.edge, parts.pages, parts.readiness
        await parts.janitor.tick(clock())  # a restart begins tidy, before the first turn
        parts.workers.start()
        # What startup made lives as long as the process: left out of every later garbage collection, a full one
        # walks only what turns made since (it walked the whole heap: tens of ms, each a delay for the turns).
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
            await parts.closing.aclose()

    return web_app(lifecycle, body_timeout_s=body_timeout_s)


SHUTDOWN_TURNS_S = 4.0
"""On SIGTERM aiohttp stops listening and gives the turns in flight this long (an invoke answers within ~2.5 s);
then the workers stop and the outbox has its own grace (bot/outbox/queue.py STOP_GRACE_S): out within 10 s."""


def _serve(settings: Settings) -> None:
    web.run_app(
        create_app(settings), host=settings.host, port=settings.port, print=None, shutdown_timeout=SHUTDOWN_TURNS_S
    )


async def _remind_once(settings: Settings, at: datetime) -> SweepReport:
    """One reminder sweep as if at `at` (for operators and tests), with the same parts the server uses."""
    parts = await build(settings)
    async with parts.closing:
        return await parts.reminders.run_once(at.astimezone(UTC))


def main(argv: list[str] | None = None) -> int:
    return cli.run(argv, serve=_serve, remind_once=_remind_once)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
