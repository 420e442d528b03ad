"""Composition of the sandbox: Graph emulator, Entra stand-in and Bot Connector stand-in on one aiohttp application,
served over http and (for msal) https on 127.0.0.1; `Sandbox` owns their lifecycle.
"""

from __future__ import annotations

import socket
from types import TracebackType
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.connector import Connector, setup_connector
from sandbox.directory import BOT_APP_ID, Directory
from sandbox.faults import FaultPlan, Faults
from sandbox.graph_api import setup_graph
from sandbox.identity import IdentityService, setup_identity
from sandbox.journal import WriteJournal
from sandbox.school import School
from sandbox.seed import default_school
from sandbox.tls import TlsMaterial, generate_tls_material
from sandbox.tokens import ACCESS_TOKEN_LIFETIME_S, TokenAuthority

LOOPBACK_ADDRESS = "127.0.0.1"
LOOPBACK_HOST_NAMES = frozenset({"127.0.0.1", "localhost"})


class SandboxError(Exception):
    """The sandbox was misconfigured or used before it started."""


def seeded_users(directory: Directory) -> list[dict[str, Any]]:
    """The directory's people as `/_sandbox/users` and `python -m sandbox users` list them (teachers first)."""
    users = sorted(directory.users.values(), key=lambda u: (u.role != "teacher", u.user_principal_name))
    listed = []
    for user in users:
        classes = [
            {
                "id": c.id,
                "displayName": c.display_name,
                "role": "teacher" if user.id in c.teacher_ids else "student",
            }
            for c in directory.classes_of(user.id)
        ]
        listed.append(
            {
                "id": user.id,
                "upn": user.user_principal_name,
                "displayName": user.display_name,
                "role": user.role,
                "classes": classes,
            }
        )
    return listed


def _bind(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK_ADDRESS, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def create_app(
    school: School,
    authority: TokenAuthority,
    identity: IdentityService,
    connector: Connector,
    faults: Faults,
    info: dict[str, Any],
    *,
    page_size: int = 10,
    journal: WriteJournal | None = None,
) -> web.Application:
    """One application with every sandbox route; the same app is served on the http and the https port."""
    app = web.Application()

    async def sandbox_info(request: web.Request) -> web.Response:
        return web.json_response(info)

    async def users(request: web.Request) -> web.Response:
        return web.json_response(seeded_users(school.directory))

    async def ca_pem(request: web.Request) -> web.Response:
        return web.Response(text=str(info["caPem"]), content_type="application/x-pem-file")

    app.router.add_get("/_sandbox/info", sandbox_info)
    app.router.add_get("/_sandbox/users", users)
    app.router.add_get("/_sandbox/ca.pem", ca_pem)
    setup_identity(app, identity)
    setup_connector(app, connector, authority)
    setup_graph(app, school, authority, faults, page_size=page_size, journal=journal)
    return app


class Sandbox:
    """The local Microsoft cloud in one object: start it, point Graph/msal/botbuilder at its URLs, stop it."""

    def __init__(
        self,
        school: School | None = None,
        *,
        faults: FaultPlan | None = None,
        page_size: int = 10,
        host: str = LOOPBACK_ADDRESS,
        port: int = 0,
        tls_port: int = 0,
        access_token_lifetime_s: int = ACCESS_TOKEN_LIFETIME_S,
        signing_key: rsa.RSAPrivateKey | None = None,
        tls: TlsMaterial | None = None,
    ) -> None:
        """`signing_key` and `tls` default to fresh ones; tests may pass shared ones to start faster."""
        if host not in LOOPBACK_HOST_NAMES:
            raise SandboxError(f"The sandbox serves loopback only (127.0.0.1 or localhost), not {host!r}.")
        self.school = school if school is not None else default_school()
        self.directory = self.school.directory
        self.fault_plan = faults if faults is not None else FaultPlan()
        self.faults = Faults(self.fault_plan)
        self.writes = WriteJournal()
        """Every grade write and submission action Graph applied (also at `/_sandbox/graph/writes`)."""
        self.connector = Connector(self.directory)
        self.page_size = page_size
        self.host = host
        self.port = port
        self.tls_port = tls_port
        self.access_token_lifetime_s = access_token_lifetime_s
        self._tls = tls if tls is not None else generate_tls_material()
        self._signing_key = signing_key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._authority: TokenAuthority | None = None
        self._identity: IdentityService | None = None
        self._runner: web.AppRunner | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind http and https on 127.0.0.1 (port 0 = ephemeral), then build the token authority for the https URL."""
        if self._runner is not None:
            raise SandboxError("The sandbox is already running.")
        http_socket = _bind(self.port)
        try:
            tls_socket = _bind(self.tls_port)
        except OSError:
            http_socket.close()
            raise
        self.port = http_socket.getsockname()[1]
        self.tls_port = tls_socket.getsockname()[1]
        tenant = self.directory.tenant_id
        self._authority = TokenAuthority(tenant, self.authority_url, key=self._signing_key)
        self._identity = IdentityService(
            self.directory, self._authority, access_token_lifetime_s=self.access_token_lifetime_s
        )
        app = create_app(
            self.school,
            self._authority,
            self._identity,
            self.connector,
            self.faults,
            self.info(),
            page_size=self.page_size,
            journal=self.writes,
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            await web.SockSite(runner, http_socket).start()
            await web.SockSite(runner, tls_socket, ssl_context=self._tls.server_context()).start()
        except BaseException:
            await runner.cleanup()
            http_socket.close()
            tls_socket.close()
            raise
        self._runner = runner

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- parts that exist once started -------------------------------------------------------------------------------

    @property
    def authority(self) -> TokenAuthority:
        """The signing authority; its issuer is `{authority_url}/v2.0`, so it exists once the https port is bound."""
        if self._authority is None:
            raise SandboxError("The sandbox has not started yet.")
        return self._authority

    @property
    def identity(self) -> IdentityService:
        if self._identity is None:
            raise SandboxError("The sandbox has not started yet.")
        return self._identity

    # ---- addresses ---------------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def graph_url(self) -> str:
        return f"{self.base_url}/v1.0"

    @property
    def beta_url(self) -> str:
        return f"{self.base_url}/beta"

    @property
    def authority_url(self) -> str:
        return f"https://{self.host}:{self.tls_port}/{self.directory.tenant_id}"

    @property
    def connector_url(self) -> str:
        return f"{self.base_url}/connector"

    @property
    def ca_pem(self) -> str:
        """The CA certificate msal's `requests` session must trust to reach the https authority."""
        return self._tls.ca_pem

    def info(self) -> dict[str, Any]:
        """What `GET /_sandbox/info` serves: how a bot finds everything in a sandbox already running."""
        bot = self.directory.apps[BOT_APP_ID]
        return {
            "tenantId": self.directory.tenant_id,
            "baseUrl": self.base_url,
            "graphUrl": self.graph_url,
            "betaUrl": self.beta_url,
            "authorityUrl": self.authority_url,
            "connectorUrl": self.connector_url,
            "caPem": self.ca_pem,
            "botAppId": bot.app_id,
            "botAppSecret": bot.secret,
        }
