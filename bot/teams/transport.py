"""How the reused Bot Connector clients talk HTTP: one aiohttp session on the event loop instead of msrest's default
(`requests`, one blocking call per reply in a worker thread, every one of them contending with the turns for the GIL).
Answers are handed to msrest as the `requests.Response` it expects, so botbuilder's errors read as before."""

from __future__ import annotations

import ssl
from types import SimpleNamespace
from typing import Any

import aiohttp
import certifi
import requests
from msrest.exceptions import ClientRequestError
from msrest.pipeline.aiohttp import AioHTTPSender
from msrest.pipeline.async_abc import AsyncHTTPPolicy, AsyncPipeline
from msrest.pipeline.universal import RawDeserializer
from msrest.universal_http import ClientRequest
from msrest.universal_http.async_abc import AsyncHTTPSender
from msrest.universal_http.async_requests import AsyncRequestsClientResponse
from requests.structures import CaseInsensitiveDict

CONNECTOR_TIMEOUT_S = 100.0
"""A Bot Connector request's whole time (msrest's default for the requests it sent)."""


def connector_session() -> aiohttp.ClientSession:
    """An HTTP session that trusts certifi's CAs as `requests` did, and ignores *_PROXY and .netrc like Gradebot's
    Graph and identity clients (aiohttp would look them up in a thread on every request)."""
    tls = ssl.create_default_context(cafile=certifi.where())
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=tls),
        timeout=aiohttp.ClientTimeout(total=CONNECTOR_TIMEOUT_S),
    )


class _Session(AsyncHTTPSender):
    """msrest's HTTP driver over a shared aiohttp session (msrest's own aiohttp driver sends neither the body nor the
    headers); a request that gets no answer raises ClientRequestError, as msrest's requests driver does."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aexit__(self, *exc_details: object) -> None:
        return None  # the session belongs to the authentication that made it, and closes with it

    async def send(self, request: ClientRequest, **config: Any) -> AsyncRequestsClientResponse:
        # msrest counts Content-Length in characters; aiohttp counts the bytes it sends.
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        try:
            async with self._session.request(request.method, request.url, headers=headers, data=request.data) as raw:
                answer = requests.Response()
                answer.status_code, answer.reason, answer.url = raw.status, raw.reason or "", str(raw.url)
                answer.headers = CaseInsensitiveDict(raw.headers)
                answer._content = await raw.read()
                answer.encoding = raw.charset or "utf-8"
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ClientRequestError(f"Bot Connector request failed: {type(exc).__name__}") from exc
        return AsyncRequestsClientResponse(request, answer)  # type: ignore[no-untyped-call]


class _Bearer(AsyncHTTPPolicy):  # type: ignore[type-arg]
    """The botbuilder credentials' Authorization header on every request (they sign a requests-style session)."""

    def __init__(self, credentials: Any) -> None:
        super().__init__()
        self._credentials = credentials

    async def send(self, request: Any, **kwargs: Any) -> Any:
        signed = self._credentials.signed_session(SimpleNamespace(headers={}))
        request.http_request.headers.update(signed.headers)
        assert self.next is not None  # set when the pipeline is built
        return await self.next.send(request, **kwargs)


def use_aiohttp(client: Any, session: aiohttp.ClientSession) -> None:
    """Send this botbuilder ConnectorClient's requests through `session`, its user agent and logging kept."""
    config = client._client.config
    policies = [config.user_agent_policy, _Bearer(config.credentials), RawDeserializer(), config.http_logger_policy]
    config.pipeline = AsyncPipeline(policies, AioHTTPSender(_Session(session)))  # type: ignore[arg-type]
