"""The Bot Framework's side of the server benchmark, on 127.0.0.1: the OpenID metadata and keys inbound tokens are
checked against, an App Service managed-identity endpoint that issues the bots' outbound token, and a Bot Connector
that records every reply (whose activity it answers, what it says, whether it carried that token)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

ISSUER = "https://api.botframework.com"
IDENTITY_HEADER = "bench-identity-header"
"""What the bots' managed-identity client sends as X-IDENTITY-HEADER (App Service's shared secret)."""


@dataclass
class StandIns:
    """The stand-ins' state: the keys they publish, the token they issue, the replies they received."""

    jwks: dict[str, Any]
    access_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    replies: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tokens_issued: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/openid", self._metadata)
        app.router.add_get("/keys", self._keys)
        app.router.add_get("/msi/token", self._managed_identity_token)
        app.router.add_post("/v3/conversations/{conversation}/activities", self._activity)
        app.router.add_post("/v3/conversations/{conversation}/activities/{reply_to}", self._activity)
        app.router.add_get("/_replies", self._replies)
        app.router.add_post("/_replies/reset", self._reset)
        return app

    async def _metadata(self, request: web.Request) -> web.Response:
        base = f"{request.scheme}://{request.host}"
        return web.json_response(
            {"issuer": ISSUER, "jwks_uri": f"{base}/keys", "id_token_signing_alg_values_supported": ["RS256"]}
        )

    async def _keys(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks)

    async def _managed_identity_token(self, request: web.Request) -> web.Response:
        if request.headers.get("X-IDENTITY-HEADER") != IDENTITY_HEADER:
            return web.json_response({"statusCode": 401, "message": "wrong X-IDENTITY-HEADER"}, status=401)
        self.tokens_issued += 1
        return web.json_response(
            {
                "access_token": self.access_token,
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.query.get("resource", ""),
                "token_type": "Bearer",
            }
        )

    async def _activity(self, request: web.Request) -> web.Response:
        activity = await request.json()
        reply_to = request.match_info.get("reply_to") or activity.get("replyToId") or ""
        self.replies.setdefault(reply_to, []).append(
            {
                "conversation": request.match_info["conversation"],
                "summary": summary(activity),
                "authorized": request.headers.get("Authorization") == f"Bearer {self.access_token}",
            }
        )
        return web.json_response({"id": secrets.token_hex(8)}, status=201)

    async def _replies(self, request: web.Request) -> web.Response:
        return web.json_response({"replies": self.replies, "tokensIssued": self.tokens_issued})

    async def _reset(self, request: web.Request) -> web.Response:
        self.replies = {}
        return web.json_response({})


def summary(activity: dict[str, Any]) -> str:
    """What a reply says, in short: `text:<text>`, or `card:<the card's first text block>`."""
    for attachment in activity.get("attachments") or []:
        body = (attachment.get("content") or {}).get("body") or []
        first = next((block.get("text") for block in body if block.get("type") == "TextBlock"), "")
        return f"card:{first}"
    return f"text:{activity.get('text') or ''}"
