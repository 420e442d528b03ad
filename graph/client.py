"""`EducationClient`: Gradebot's typed view of Graph education (classes, assignments, submissions, grades).

One cheap client per identity: it binds the shared `GraphHttp` to that identity's `TokenProvider`. Every method
returns models from `graph.models`, follows every `@odata.nextLink`, and raises the `graph.errors` tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from pydantic import ValidationError

from graph.batch import BatchRequest, BatchResult, Settled, run_batch
from graph.connection import GraphHttp, TokenProvider
from graph.errors import GraphError
from graph.models import (
    ASSIGNMENT_FIELDS,
    CLASS_FIELDS,
    SUBMISSION_FIELDS,
    USER_FIELDS,
    Assignment,
    AssignmentRubric,
    AssignmentStatus,
    EducationClass,
    EducationUser,
    FeedbackOutcome,
    GradeOutcome,
    Page,
    PointsOutcome,
    Rubric,
    RubricOutcome,
    Submission,
    SubmissionStatus,
    parse,
)
from graph.patches import FeedbackPatch, OutcomePatch, PointsPatch, RubricPatch
from graph.paths import (
    AssignmentRef,
    SubmissionRef,
    action_path,
    assignment_path,
    class_path,
    status_filter,
    submission_path,
    submissions_path,
    user_path,
    with_query,
)

Json = Mapping[str, Any]
T = TypeVar("T")


def _read(kind: type[T], body: object, method: str, url: str) -> T:
    """A Graph answer as `kind`, validated in one pass; a body of the wrong shape is a GraphError like any other.

    Only the failing locations and error types are kept: pydantic's own text would repeat Graph's values.
    """
    try:
        return parse(kind, body)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5])
        raise GraphError(200, "invalidResponse", message=where, method=method, path=urlsplit(url).path) from None


def _submissions_query(expand_outcomes: bool) -> dict[str, str | Iterable[str] | None]:
    return {"$select": SUBMISSION_FIELDS, "$expand": "outcomes" if expand_outcomes else None}


def _keep_status(submissions: list[Submission], status: SubmissionStatus | None) -> list[Submission]:
    return submissions if status is None else [item for item in submissions if item.status is status]


class EducationClient:
    """Graph education calls made as one identity (a teacher's delegated token, or the app's own)."""

    def __init__(self, http: GraphHttp, token: TokenProvider) -> None:
        self._http = http
        self._token = token

    # -- plumbing ---------------------------------------------------------------------------------------------

    async def _get(self, path: str, kind: type[T]) -> T:
        url = self._http.url(path)
        response = await self._http.request("GET", url, self._token)
        return _read(kind, response.body or {}, "GET", url)

    async def _list(self, path: str, kind: type[Page[T]]) -> list[T]:
        """Every item of a collection: its first page plus every page after it (each nextLink followed verbatim)."""
        page = await self._get(path, kind)
        items = list(page.value)
        while page.next_link:
            url = self._absolute(page.next_link)
            response = await self._http.request("GET", url, self._token)
            page = _read(kind, response.body or {}, "GET", url)
            items.extend(page.value)
        return items

    async def _action(self, ref: SubmissionRef, action: str) -> Submission | None:
        url = self._http.url(action_path(ref, action))
        response = await self._http.request("POST", url, self._token)
        return _read(Submission, response.body, "POST", url) if response.body else None

    def _absolute(self, link: str) -> str:
        return link if urlsplit(link).scheme else urljoin(self._http.base_url + "/", link)

    def _relative(self, url: str) -> str | None:
        """A URL as a path under our v1.0 base (what `$batch` items take), or None if it points elsewhere."""
        base = self._http.base_url
        return url[len(base) :] if url.startswith(base + "/") else None

    # -- people and classes -----------------------------------------------------------------------------------

    async def taught_classes(self) -> list[EducationClass]:
        """Classes the signed-in user teaches (/education/me/taughtClasses)."""
        path = with_query("/education/me/taughtClasses", {"$select": CLASS_FIELDS})
        return await self._list(path, Page[EducationClass])

    async def user_taught_classes(self, user_id: str) -> list[EducationClass]:
        """Classes a given user teaches (/education/users/{id}/taughtClasses): the app-permission form of /me."""
        path = with_query(f"{user_path(user_id)}/taughtClasses", {"$select": CLASS_FIELDS})
        return await self._list(path, Page[EducationClass])

    async def get_class(self, class_id: str) -> EducationClass:
        return await self._get(with_query(class_path(class_id), {"$select": CLASS_FIELDS}), EducationClass)

    async def class_teachers(self, class_id: str) -> list[EducationUser]:
        """The class's teachers: the only roster that says who teaches (Teams rosters have no teacher flag)."""
        path = with_query(f"{class_path(class_id)}/teachers", {"$select": USER_FIELDS})
        return await self._list(path, Page[EducationUser])

    async def class_members(self, class_id: str) -> list[EducationUser]:
        """Everyone in the class, students and teachers."""
        path = with_query(f"{class_path(class_id)}/members", {"$select": USER_FIELDS})
        return await self._list(path, Page[EducationUser])

    # -- assignments ------------------------------------------------------------------------------------------

    async def list_assignments(self, class_id: str, *, status: AssignmentStatus | None = None) -> list[Assignment]:
        """The class's assignments, drafts included unless `status` picks one status (filtered by Graph and here)."""
        query = {"$select": ASSIGNMENT_FIELDS, "$filter": status_filter(status)}
        assignments = await self._list(with_query(f"{class_path(class_id)}/assignments", query), Page[Assignment])
        return assignments if status is None else [item for item in assignments if item.status is status]

    async def get_assignment(self, class_id: str, assignment_id: str) -> Assignment:
        path = with_query(assignment_path(class_id, assignment_id), {"$select": ASSIGNMENT_FIELDS})
        return await self._get(path, Assignment)

    async def get_rubric(self, class_id: str, assignment_id: str) -> Rubric | None:
        """The assignment's rubric, or None when it has none; GraphNotFoundError when the assignment is missing.

        Read as the assignment with `$expand=rubric`: `…/rubric` answers 404 for "no rubric" and for "no such
        assignment" alike.
        """
        path = with_query(assignment_path(class_id, assignment_id), {"$select": "id", "$expand": "rubric"})
        return (await self._get(path, AssignmentRubric)).rubric

    # -- submissions ------------------------------------------------------------------------------------------

    async def list_submissions(
        self,
        class_id: str,
        assignment_id: str,
        *,
        expand_outcomes: bool = True,
        status: SubmissionStatus | None = None,
    ) -> list[Submission]:
        """Every submission of an assignment (outcomes included by default); `status` is filtered here."""
        path = with_query(submissions_path(class_id, assignment_id), _submissions_query(expand_outcomes))
        return _keep_status(await self._list(path, Page[Submission]), status)

    async def get_submission(
        self,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        *,
        expand: Sequence[str] = ("outcomes", "submittedResources"),
    ) -> Submission:
        path = submission_path(SubmissionRef(class_id, assignment_id, submission_id))
        return await self._get(with_query(path, {"$expand": expand or None}), Submission)

    # POST actions: retried on 429/503 only. A GraphUnavailableError (timeout, dropped connection, 5xx) means the
    # action may or may not have happened: re-read the submission before acting again. Each returns the updated
    # submission, or None when Graph answered 204 No Content (older service versions).

    async def return_submission(self, class_id: str, assignment_id: str, submission_id: str) -> Submission | None:
        """Release points and feedback to the student (status → returned)."""
        return await self._action(SubmissionRef(class_id, assignment_id, submission_id), "return")

    async def reassign_submission(self, class_id: str, assignment_id: str, submission_id: str) -> Submission | None:
        """Return for revision (status → reassigned)."""
        return await self._action(SubmissionRef(class_id, assignment_id, submission_id), "reassign")

    async def excuse_submission(self, class_id: str, assignment_id: str, submission_id: str) -> Submission | None:
        """Excuse the student (status → excused; Graph drops rubric selections and feedback)."""
        return await self._action(SubmissionRef(class_id, assignment_id, submission_id), "excuse")

    # -- many at once ($batch) --------------------------------------------------------------------------------

    async def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Raw `$batch`: ≤20 per batch, throttled items retried, one result per request in request order."""
        return await run_batch(self._http, self._token, requests)

    async def _get_many(self, urls: Mapping[int, str]) -> dict[int, Json | GraphError]:
        """GET many URLs: those under our v1.0 base in `$batch`es, any other (a nextLink elsewhere) on its own."""
        batched = {index: path for index, url in urls.items() if (path := self._relative(url)) is not None}
        answers = await self.batch([BatchRequest("GET", path) for path in batched.values()])
        bodies: dict[int, Json | GraphError] = {
            index: answer.error or answer.body or {} for index, answer in zip(batched, answers, strict=True)
        }
        for index in urls.keys() - batched.keys():
            try:
                bodies[index] = (await self._http.request("GET", urls[index], self._token)).body or {}
            except GraphError as exc:
                bodies[index] = exc
        return bodies

    async def list_submissions_many(
        self,
        assignments: Iterable[tuple[str, str]],
        *,
        expand_outcomes: bool = True,
        status: SubmissionStatus | None = None,
    ) -> list[Settled[list[Submission]]]:
        """Submissions of many assignments in few round trips: first pages in `$batch`es, then each round of
        nextLinks batched too (a link outside our base URL is followed on its own); input order kept."""
        refs = [AssignmentRef(*pair) for pair in assignments]
        query = _submissions_query(expand_outcomes)
        found: list[list[Submission]] = [[] for _ in refs]
        errors: list[GraphError | None] = [None] * len(refs)
        urls = {
            index: self._http.url(with_query(submissions_path(ref.class_id, ref.assignment_id), query))
            for index, ref in enumerate(refs)
        }
        while urls:
            bodies = await self._get_many(urls)
            pages = urls
            urls = {}
            for index, body in bodies.items():
                try:
                    if isinstance(body, GraphError):
                        raise body
                    page = _read(Page[Submission], body, "GET", pages[index])
                except GraphError as exc:
                    errors[index] = exc
                    continue
                found[index].extend(page.value)
                if page.next_link:
                    urls[index] = self._absolute(page.next_link)
        return [
            Settled(error=error) if error is not None else Settled(_keep_status(items, status))
            for items, error in zip(found, errors, strict=True)
        ]

    async def patch_outcomes_many(self, patches: Sequence[OutcomePatch]) -> list[Settled[GradeOutcome]]:
        """Many grade writes in few round trips; one settled outcome per patch, in order.

        Each write was checked against what the caller just read, so none is sent again here — not after a 429 or 503
        either (by then someone may have changed the grade): the error comes back and the outbox re-reads, re-checks
        and writes only what is missing.
        """
        requests = [BatchRequest("PATCH", p.path, p.body(), resend=False, conditional=True) for p in patches]
        results = await self.batch(requests)
        settled: list[Settled[GradeOutcome]] = []
        for patch, result in zip(patches, results, strict=True):
            try:
                settled.append(Settled(_outcome(result.json(), patch)))
            except GraphError as exc:
                settled.append(Settled(error=exc))
        return settled

    async def return_many(self, submissions: Iterable[tuple[str, str, str]]) -> list[Settled[Submission | None]]:
        """Return many submissions; an item with GraphUnavailableError may or may not have been returned."""
        refs = [SubmissionRef(*triple) for triple in submissions]
        paths = [action_path(ref, "return") for ref in refs]
        settled: list[Settled[Submission | None]] = []
        for path, result in zip(paths, await self.batch([BatchRequest("POST", path) for path in paths]), strict=True):
            try:
                body = result.json()
                settled.append(Settled(_read(Submission, body, "POST", path) if body else None))
            except GraphError as exc:
                settled.append(Settled(error=exc))
        return settled


_EXPECTED: Mapping[type[OutcomePatch], type[GradeOutcome]] = {
    PointsPatch: PointsOutcome,
    FeedbackPatch: FeedbackOutcome,
    RubricPatch: RubricOutcome,
}


def _outcome(body: Json, patch: OutcomePatch) -> GradeOutcome:
    """The outcome a PATCH answered with (its `@odata.type` taken from the request when Graph omits it)."""
    kind = patch.body()["@odata.type"]
    if body.get("@odata.type", kind) != kind:
        raise GraphError(200, "invalidResponse", method="PATCH", path=patch.path)
    return _read(_EXPECTED[type(patch)], {"id": patch.outcome_id, **body}, "PATCH", patch.path)
