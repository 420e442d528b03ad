"""A browser walking Gradebot's own sign-in page: /auth/start → the sandbox authority's account picker → the
form_post page that posts the code back to /auth/callback. Used by the sign-in tests."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urlsplit

import aiohttp

from tests.bot.conftest import World


@dataclass(frozen=True)
class Page:
    """What Gradebot's sign-in page answered."""

    status: int
    text: str

    @property
    def code(self) -> str | None:
        """The one-time code the page shows after a successful sign-in."""
        found = re.search(r"enter (\d{6})", self.text)
        return found.group(1) if found else None


def link_path(link: str) -> str:
    """The path and query of a sign-in link (the test client talks to Gradebot on its own address)."""
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


async def start(world: World, link: str, **headers: str) -> tuple[int, str, str]:
    """GET /auth/start: (status, Location header or "", body)."""
    response = await world.client.get(link_path(link), allow_redirects=False, headers=headers)
    return response.status, response.headers.get("Location", ""), await response.text()


def state_of(authority_url: str) -> str:
    """The `state` Gradebot put into the authority URL it redirected to."""
    return parse_qs(urlsplit(authority_url).query)["state"][0]


async def authority_answer(world: World, authority_url: str, upn_prefix: str) -> tuple[str, dict[str, str]]:
    """Pick `upn_prefix`'s account at the sandbox authority; returns the callback path and the posted fields."""
    ca = ssl.create_default_context(cadata=world.sandbox.ca_pem)
    async with aiohttp.ClientSession() as browser:
        async with browser.get(authority_url, ssl=ca) as picker:
            page = await picker.text()
        choice = next(unescape(h) for h in re.findall(r'href="([^"]+)"', page) if upn_prefix in unescape(h))
        origin = world.sandbox.authority_url.rsplit("/", 1)[0]
        async with browser.get(origin + choice if choice.startswith("/") else choice, ssl=ca) as answer:
            form = await answer.text()  # response_mode=form_post: a page that posts the code back
    found = re.search(r'action="([^"]+)"', form)
    assert found is not None, form
    fields = {unescape(k): unescape(v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', form)}
    return urlsplit(unescape(found.group(1))).path, fields


async def callback(world: World, path: str, fields: dict[str, str]) -> Page:
    done = await world.client.post(path, data=fields)
    return Page(done.status, await done.text())


async def sign_in(world: World, link: str, upn_prefix: str) -> Page:
    """The whole walk: open the link, sign in as `upn_prefix` at the authority, post the answer back."""
    status, location, body = await start(world, link)
    assert status == 302, body
    path, fields = await authority_answer(world, location, upn_prefix)
    return await callback(world, path, fields)
