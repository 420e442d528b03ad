"""A deliberately naive Graph client, the N+1 way Microsoft's own guidance reads: plain httpx, one request at a time,
no `$batch`, no `$expand`, no `$select`; every nextLink followed; a 429 waits Retry-After and tries again.

It decides "needs grading" with Gradebot's own rule (`bot.school.progress.grading_state`), so only the access pattern
differs between the two clients.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from bot.school.progress import GradingState, grading_state
from graph.models import Submission, parse

OPEN_STATUSES = frozenset({"assigned", "published"})
"""Assignments whose submissions can hold turned-in work (the same filter Gradebot applies)."""


class NaiveGraphError(Exception):
    """Graph answered something other than success or 429."""


@dataclass(frozen=True, slots=True)
class NaiveUngraded:
    """One submission waiting for a grade, as the naive client found it."""

    class_id: str
    assignment_id: str
    submission_id: str
    student_name: str


def _segment(value: str) -> str:
    return quote(value, safe="")


class NaiveGraph:
    """Sends Graph requests one after another with a fixed delegated token."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        graph_url: str,
        token: str,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._graph_url = graph_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Prefer": "include-unknown-enum-members",
        }
        self._sleep = sleep
        self.throttled = 0

    async def _send(self, method: str, url: str) -> httpx.Response:
        while True:
            response = await self._http.request(method, url, headers=self._headers)
            if response.status_code == 429:
                self.throttled += 1
                await self._sleep(float(response.headers.get("Retry-After", "1")))
                continue
            if response.status_code >= 400:
                raise NaiveGraphError(f"{method} {httpx.URL(url).path} answered {response.status_code}")
            return response

    async def get_all(self, path: str) -> list[dict[str, Any]]:
        """Every item of a collection, page after page."""
        items: list[dict[str, Any]] = []
        url: str | None = self._graph_url + path
        while url:
            page = (await self._send("GET", url)).json()
            items.extend(page.get("value", []))
            url = page.get("@odata.nextLink")
        return items


async def naive_ungraded(graph: NaiveGraph) -> list[NaiveUngraded]:
    """Taught classes → assignments per class → submissions per assignment → outcomes per submission."""
    found: list[NaiveUngraded] = []
    for education_class in await graph.get_all("/education/me/taughtClasses"):
        class_path = f"/education/classes/{_segment(education_class['id'])}"
        names = {
            member["id"]: member.get("displayName") or "" for member in await graph.get_all(f"{class_path}/members")
        }
        for assignment in await graph.get_all(f"{class_path}/assignments"):
            if assignment.get("status") not in OPEN_STATUSES:
                continue
            submissions_path = f"{class_path}/assignments/{_segment(assignment['id'])}/submissions"
            for submission in await graph.get_all(submissions_path):
                outcomes = await graph.get_all(f"{submissions_path}/{_segment(submission['id'])}/outcomes")
                parsed = parse(Submission, {**submission, "outcomes": outcomes})
                if grading_state(parsed) is GradingState.NEEDS_GRADING:
                    student = parsed.student_id or ""
                    found.append(
                        NaiveUngraded(education_class["id"], assignment["id"], parsed.id, names.get(student, ""))
                    )
    return found
