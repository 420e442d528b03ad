"""`EducationClient`: Gradebot's typed view of Graph education (classes, assignments, submissions, grades), the URLs
it spells and the grade writes it sends. One cheap client per identity binds the shared `GraphHttp` to its
`TokenProvider`; every method returns `graph.models`, follows every `@odata.nextLink` and raises `graph.errors`."""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from http import HTTPStatus
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar, get_args
from urllib.parse import quote, urlencode, urljoin, urlsplit

from pydantic import ValidationError

from graph.batch import BatchRequest, Settled, run_batch
from graph.connection import GraphHttp, TokenProvider
from graph.errors import GraphError
from graph.models import (
    EXPANDED,
    FEEDBACK_OUTCOME,
    POINTS_GRADE,
    POINTS_OUTCOME,
    RUBRIC_OUTCOME,
    Assignment,
    AssignmentRubric,
    EducationClass,
    EducationUser,
    FeedbackOutcome,
    GradeOutcome,
    Page,
    PointsOutcome,
    RecentSubmission,
    Rubric,
    RubricOutcome,
    RubricSelection,
    Submission,
    SubmissionStatus,
    parse,
    select,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

SubmissionAction = Literal["return", "reassign", "excuse"]
PAGE_TOP = 100
"""`$top` on every list, since each page is a round trip: Graph documents no default or maximum page for education
(the sandbox serves 10 without it); 100 is its default page for users. Lower caps still answer with nextLinks."""


def _id(value: str) -> str:
    """One path segment from an id, percent-encoded so no id can change the path."""
    if not value:
        raise ValueError("Graph ids must not be empty")
    return quote(value, safe="")


def _class_path(class_id: str, assignment_id: str | None = None) -> str:
    path = f"/education/classes/{_id(class_id)}"
    return path if assignment_id is None else f"{path}/assignments/{_id(assignment_id)}"


class SubmissionRef(NamedTuple):
    class_id: str
    assignment_id: str
    submission_id: str

    @property
    def path(self) -> str:
        return f"{_class_path(self.class_id, self.assignment_id)}/submissions/{_id(self.submission_id)}"


@dataclass(frozen=True, slots=True)
class _OutcomePatch:
    """A grade write: a typed value that knows its PATCH body (never a `published*` property)."""

    submission: SubmissionRef
    outcome_id: str

    @property
    def path(self) -> str:
        return f"{self.submission.path}/outcomes/{_id(self.outcome_id)}"


@dataclass(frozen=True, slots=True)
class PointsPatch(_OutcomePatch):
    """Set (or clear, with None) the working points of a submission's points outcome."""

    points: float | None
    answer: ClassVar[type[GradeOutcome]] = PointsOutcome

    def __post_init__(self) -> None:
        if self.points is not None and (isinstance(self.points, bool) or not math.isfinite(self.points)):
            raise ValueError("points must be a finite number")

    def body(self) -> dict[str, Any]:
        grade = None if self.points is None else {"@odata.type": POINTS_GRADE, "points": float(self.points)}
        return {"@odata.type": POINTS_OUTCOME, "points": grade}


@dataclass(frozen=True, slots=True)
class FeedbackPatch(_OutcomePatch):
    """Set (or clear, with None) the working feedback text of a submission's feedback outcome."""

    text: str | None
    answer: ClassVar[type[GradeOutcome]] = FeedbackOutcome

    def body(self) -> dict[str, Any]:
        feedback = None if self.text is None else {"text": {"content": self.text, "contentType": "text"}}
        return {"@odata.type": FEEDBACK_OUTCOME, "feedback": feedback}


@dataclass(frozen=True, slots=True)
class RubricPatch(_OutcomePatch):
    """Select one level (column) per rubric quality in a submission's rubric outcome."""

    selections: Sequence[RubricSelection]
    answer: ClassVar[type[GradeOutcome]] = RubricOutcome

    def body(self) -> dict[str, Any]:
        levels = [{"qualityId": chosen.quality_id, "columnId": chosen.column_id} for chosen in self.selections]
        return {"@odata.type": RUBRIC_OUTCOME, "rubricQualitySelectedLevels": levels}


OutcomePatch = PointsPatch | FeedbackPatch | RubricPatch


def _read(kind: type[T], body: object, method: str, url: str) -> T:
    """A Graph answer as `kind`; a body of the wrong shape is a GraphError that keeps only the failing locations and
    error types (pydantic's own text would repeat Graph's values)."""
    try:
        return parse(kind, body)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5])
        raise GraphError(200, "invalidResponse", message=where, method=method, path=urlsplit(url).path) from None


def _outcome(patch: OutcomePatch, body: Mapping[str, Any]) -> GradeOutcome:
    """The outcome a PATCH answered with (its `@odata.type` taken from the request when Graph omits it)."""
    kind = patch.body()["@odata.type"]
    if body.get("@odata.type", kind) != kind:
        raise GraphError(200, "invalidResponse", method="PATCH", path=patch.path)
    return _read(patch.answer, {"id": patch.outcome_id, **body}, "PATCH", patch.path)


def _acted(url: str, body: Mapping[str, Any]) -> Submission | None:
    """The submission a POST action answered with; None for 204 No Content (older service versions)."""
    return _read(Submission, body, "POST", url) if body else None


class EducationClient:
    """Graph education calls made as one identity (a teacher's delegated token, or the app's own)."""

    def __init__(self, http: GraphHttp, token: TokenProvider) -> None:
        self._http = http
        self._token = token

    def _url(
        self, path: str, select: Sequence[str] = (), expand: Sequence[str] = (), *, paged: bool = False, where: str = ""
    ) -> str:
        """The absolute URL of a version-relative path and its query options (empty ones left out, `$top` on a list)."""
        query = {key: ",".join(names) for key, names in (("$select", select), ("$expand", expand)) if names}
        if where:
            query["$filter"] = where
        if paged:
            query["$top"] = str(PAGE_TOP)
        return self._http.url(f"{path}?{urlencode(query, safe='$,', quote_via=quote)}" if query else path)

    async def _get(self, kind: type[T], url: str) -> T:
        """GET an absolute URL (ours, or a nextLink) as `kind`."""
        return _read(kind, await self._http.request("GET", url, self._token) or {}, "GET", url)

    async def _pages(self, kind: type[Page[T]], url: str) -> AsyncIterator[list[T]]:
        """A collection page by page, as each arrives: the first, then every nextLink followed verbatim."""
        page = await self._get(kind, url)
        yield list(page.value)
        while page.next_link:
            page = await self._get(kind, urljoin(url, page.next_link))
            yield list(page.value)

    async def _list(self, kind: type[Page[T]], path: str) -> list[T]:
        """Every item of a collection, every page of it, reading (`$select`) what the item model reads."""
        url = self._url(path, select(*get_args(kind)), paged=True)
        return [item async for items in self._pages(kind, url) for item in items]

    async def taught_classes(self) -> list[EducationClass]:
        return await self._list(Page[EducationClass], "/education/me/taughtClasses")

    async def user_taught_classes(self, user_id: str) -> list[EducationClass]:
        """Classes a given user teaches (/education/users/{id}/taughtClasses): the app-permission form of /me."""
        return await self._list(Page[EducationClass], f"/education/users/{_id(user_id)}/taughtClasses")

    async def get_class(self, class_id: str) -> EducationClass:
        return await self._get(EducationClass, self._url(_class_path(class_id), select(EducationClass)))

    async def class_teachers(self, class_id: str) -> list[EducationUser]:
        """The class's teachers: the only roster that says who teaches (Teams rosters have no teacher flag)."""
        return await self._list(Page[EducationUser], f"{_class_path(class_id)}/teachers")

    async def class_members(self, class_id: str) -> list[EducationUser]:
        """Everyone in the class, students and teachers."""
        return await self._list(Page[EducationUser], f"{_class_path(class_id)}/members")

    def assignment_pages(self, class_id: str) -> AsyncIterator[list[Assignment]]:
        """The class's assignments (drafts included) a page at a time, so work on one can start before the next."""
        url = self._url(f"{_class_path(class_id)}/assignments", select(Assignment), paged=True)
        return self._pages(Page[Assignment], url)

    async def list_assignments(self, class_id: str) -> list[Assignment]:
        """The class's assignments, drafts included."""
        return await self._list(Page[Assignment], f"{_class_path(class_id)}/assignments")

    async def get_assignment(self, class_id: str, assignment_id: str) -> Assignment:
        return await self._get(Assignment, self._url(_class_path(class_id, assignment_id), select(Assignment)))

    async def get_rubric(self, class_id: str, assignment_id: str) -> Rubric | None:
        """The assignment's rubric, or None when it has none; GraphNotFoundError when the assignment is missing
        (read through `$expand=rubric`: `…/rubric` answers 404 both for no rubric and for no assignment)."""
        url = self._url(_class_path(class_id, assignment_id), ["id"], ["rubric"])
        return (await self._get(AssignmentRubric, url)).rubric

    def _submissions_url(self, class_id: str, assignment_id: str, status: SubmissionStatus | None = None) -> str:
        path = f"{_class_path(class_id, assignment_id)}/submissions"
        where = f"status eq '{status.value}'" if status is not None else ""
        return self._url(path, select(Submission), ["outcomes"], paged=True, where=where)

    async def list_submissions(self, class_id: str, assignment_id: str) -> list[Submission]:
        """Every submission of an assignment, outcomes included."""
        url = self._submissions_url(class_id, assignment_id)
        return [submission async for page in self._pages(Page[Submission], url) for submission in page]

    async def get_submission(self, ref: SubmissionRef, *, expand: Sequence[str] = EXPANDED) -> Submission:
        """One submission, by default with its outcomes and the work the student turned in."""
        return await self._get(Submission, self._url(ref.path, expand=expand))

    async def recently_modified_submissions(self, class_id: str, since: datetime) -> list[RecentSubmission]:
        """The class's submissions modified at or after `since`, outcomes expanded (Graph keeps 7 days of them).
        Newest first, the one `$orderby` it takes, so paging stops at the first older one (no date `$filter` exists)."""
        path = f"{_class_path(class_id)}/getRecentlyModifiedSubmissions"
        newest_first = quote("lastModifiedDateTime desc", safe="")
        url = f"{self._url(path, select(RecentSubmission), ['outcomes'], paged=True)}&$orderby={newest_first}"
        found: list[RecentSubmission] = []
        async for page in self._pages(Page[RecentSubmission], url):
            recent = [s for s in page if s.modified_at is None or s.modified_at >= since]
            found.extend(recent)
            if len(recent) < len(page):
                break
        return found

    async def act(self, ref: SubmissionRef, action: SubmissionAction) -> Submission | None:
        """`return` (release points and feedback: status → returned), `reassign` (return for revision) or `excuse`
        (Graph drops rubric selections and feedback): the updated submission, or None for 204 No Content. Retried on
        429/503 only: after a GraphUnavailableError (timeout, dropped connection, 5xx) the action may or may not have
        happened, so re-read the submission before acting again."""
        url = self._http.url(f"{ref.path}/{action}")
        return _acted(url, await self._http.request("POST", url, self._token) or {})

    async def list_submissions_many(
        self, assignments: Iterable[tuple[str, str]], *, status: SubmissionStatus | None = None
    ) -> list[Settled[list[Submission]]]:
        """Submissions of many assignments, outcomes included (only those in `status`, if given: Graph filters them),
        in input order: first pages in `$batch`es, then each round of nextLinks (one outside our base URL alone)."""
        assignments = list(assignments)
        urls = {n: self._submissions_url(c, a, status) for n, (c, a) in enumerate(assignments)}
        found: list[list[Submission]] = [[] for _ in urls]
        errors: dict[int, GraphError] = {}
        base = self._http.base_url
        while urls:
            inside = [n for n, url in urls.items() if url.startswith(base + "/")]
            requests = [BatchRequest("GET", urls[n].removeprefix(base)) for n in inside]
            results = dict(zip(inside, await run_batch(self._http, self._token, requests), strict=True))
            next_urls: dict[int, str] = {}
            for n, url in urls.items():
                try:
                    body = results[n].unwrap() if n in results else await self._http.request("GET", url, self._token)
                    page = _read(Page[Submission], body or {}, "GET", url)
                except GraphError as exc:
                    errors[n] = exc
                    continue
                found[n].extend(page.value)
                if page.next_link:
                    next_urls[n] = urljoin(url, page.next_link)
            urls = next_urls
        settled = [Settled(error=errors[n]) if n in errors else Settled(items) for n, items in enumerate(found)]
        refused = [n for n, exc in errors.items() if status is not None and exc.status == HTTPStatus.BAD_REQUEST]
        if refused:  # `$filter` on status is documented without an example: if Graph refuses it, filter here instead
            log.warning("graph refused $filter=status on %d submission lists; filtering them locally", len(refused))
            again = await self.list_submissions_many([assignments[n] for n in refused])
            for n, result in zip(refused, again, strict=True):
                settled[n] = result if result.error else Settled([s for s in result.unwrap() if s.status is status])
        return settled

    async def patch_outcomes_many(self, patches: Sequence[OutcomePatch]) -> list[Settled[GradeOutcome]]:
        """Many grade writes in few round trips; one settled outcome per patch, in order. Each was checked against
        what the caller just read, so none is sent again here, not even after a 429 or 503: the outbox re-checks."""
        requests = [BatchRequest("PATCH", patch.path, patch.body(), conditional=True) for patch in patches]
        results = await run_batch(self._http, self._token, requests)
        return [result.then(partial(_outcome, patch)) for patch, result in zip(patches, results, strict=True)]

    async def return_many(self, submissions: Iterable[SubmissionRef]) -> list[Settled[Submission | None]]:
        """Return many submissions; an item with GraphUnavailableError may or may not have been returned."""
        paths = [f"{ref.path}/return" for ref in submissions]
        results = await run_batch(self._http, self._token, [BatchRequest("POST", path) for path in paths])
        return [result.then(partial(_acted, path)) for path, result in zip(paths, results, strict=True)]
