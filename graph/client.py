"""`EducationClient`: Gradebot's typed view of Graph education (classes, assignments, submissions, grades).

One cheap client per identity: it binds the shared `GraphHttp` to that identity's `TokenProvider`. Every method
returns models from `graph.models`, follows every `@odata.nextLink`, and raises the `graph.errors` tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urljoin, urlsplit

from graph.batch import BatchRequest, BatchResult, Settled, run_batch
from graph.connection import GraphHttp, TokenProvider
from graph.errors import GraphError
from graph.models import (
    ASSIGNMENT_FIELDS,
    CLASS_FIELDS,
    SUBMISSION_FIELDS,
    USER_FIELDS,
    Assignment,
    AssignmentStatus,
    CollectionPage,
    EducationClass,
    EducationUser,
    FeedbackOutcome,
    GradeOutcome,
    Outcomes,
    PointsOutcome,
    Rubric,
    RubricOutcome,
    RubricSelection,
    Submission,
    SubmissionStatus,
    expanded_rubric,
    outcome_from_json,
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
OutcomeT = TypeVar("OutcomeT", PointsOutcome, FeedbackOutcome, RubricOutcome)


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

    async def _get(self, path: str, *, beta: bool = False) -> Json:
        response = await self._http.request("GET", self._http.url(path, beta=beta), self._token)
        return response.body or {}

    async def _follow(self, page: CollectionPage) -> list[Json]:
        """The page's items plus those of every page after it (each `@odata.nextLink` followed verbatim)."""
        items = list(page.items)
        next_link = page.next_link
        while next_link:
            url = next_link if urlsplit(next_link).scheme else urljoin(self._http.base_url + "/", next_link)
            response = await self._http.request("GET", url, self._token)
            page = CollectionPage.from_json(response.body or {})
            items.extend(page.items)
            next_link = page.next_link
        return items

    async def _list(self, path: str, *, beta: bool = False) -> list[Json]:
        return await self._follow(CollectionPage.from_json(await self._get(path, beta=beta)))

    async def _patch(self, patch: OutcomePatch, expected: type[OutcomeT]) -> OutcomeT:
        url = self._http.url(patch.path)
        response = await self._http.request("PATCH", url, self._token, json_body=patch.body())
        outcome = _outcome(response.body or {}, patch)
        if not isinstance(outcome, expected):
            raise _unexpected(patch)
        return outcome

    async def _action(self, ref: SubmissionRef, action: str) -> Submission | None:
        response = await self._http.request("POST", self._http.url(action_path(ref, action)), self._token)
        return Submission.from_json(response.body) if response.body else None

    # -- people and classes -----------------------------------------------------------------------------------

    async def me(self) -> EducationUser:
        """The signed-in user (/education/me); needs a delegated token."""
        return EducationUser.from_json(await self._get(with_query("/education/me", {"$select": USER_FIELDS})))

    async def user(self, user_id: str) -> EducationUser:
        return EducationUser.from_json(await self._get(with_query(user_path(user_id), {"$select": USER_FIELDS})))

    async def taught_classes(self) -> list[EducationClass]:
        """Classes the signed-in user teaches (/education/me/taughtClasses)."""
        path = with_query("/education/me/taughtClasses", {"$select": CLASS_FIELDS})
        return [EducationClass.from_json(item) for item in await self._list(path)]

    async def user_taught_classes(self, user_id: str) -> list[EducationClass]:
        """Classes a given user teaches (/education/users/{id}/taughtClasses): the app-permission form of /me."""
        path = with_query(f"{user_path(user_id)}/taughtClasses", {"$select": CLASS_FIELDS})
        return [EducationClass.from_json(item) for item in await self._list(path)]

    async def my_classes(self) -> list[EducationClass]:
        """Classes the signed-in user belongs to, as teacher or student (/education/me/classes)."""
        path = with_query("/education/me/classes", {"$select": CLASS_FIELDS})
        return [EducationClass.from_json(item) for item in await self._list(path)]

    async def get_class(self, class_id: str) -> EducationClass:
        return EducationClass.from_json(await self._get(with_query(class_path(class_id), {"$select": CLASS_FIELDS})))

    async def class_teachers(self, class_id: str) -> list[EducationUser]:
        """The class's teachers: the only roster that says who teaches (Teams rosters have no teacher flag)."""
        path = with_query(f"{class_path(class_id)}/teachers", {"$select": USER_FIELDS})
        return [EducationUser.from_json(item) for item in await self._list(path)]

    async def class_members(self, class_id: str) -> list[EducationUser]:
        """Everyone in the class, students and teachers."""
        path = with_query(f"{class_path(class_id)}/members", {"$select": USER_FIELDS})
        return [EducationUser.from_json(item) for item in await self._list(path)]

    # -- assignments ------------------------------------------------------------------------------------------

    async def list_assignments(self, class_id: str, *, status: AssignmentStatus | None = None) -> list[Assignment]:
        """The class's assignments, drafts included unless `status` picks one status (filtered by Graph and here)."""
        query = {"$select": ASSIGNMENT_FIELDS, "$filter": status_filter(status)}
        items = await self._list(with_query(f"{class_path(class_id)}/assignments", query))
        assignments = [Assignment.from_json(item) for item in items]
        return assignments if status is None else [item for item in assignments if item.status is status]

    async def get_assignment(self, class_id: str, assignment_id: str) -> Assignment:
        path = with_query(assignment_path(class_id, assignment_id), {"$select": ASSIGNMENT_FIELDS})
        return Assignment.from_json(await self._get(path))

    async def get_rubric(self, class_id: str, assignment_id: str) -> Rubric | None:
        """The assignment's rubric, or None when it has none; GraphNotFoundError when the assignment is missing.

        Read as the assignment with `$expand=rubric`: `…/rubric` answers 404 for "no rubric" and for "no such
        assignment" alike.
        """
        path = with_query(assignment_path(class_id, assignment_id), {"$select": "id", "$expand": "rubric"})
        return expanded_rubric(await self._get(path))

    # -- submissions and outcomes -----------------------------------------------------------------------------

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
        return _keep_status([Submission.from_json(item) for item in await self._list(path)], status)

    async def get_submission(
        self,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        *,
        expand: Sequence[str] = ("outcomes", "submittedResources"),
    ) -> Submission:
        path = submission_path(SubmissionRef(class_id, assignment_id, submission_id))
        return Submission.from_json(await self._get(with_query(path, {"$expand": expand or None})))

    async def list_outcomes(self, class_id: str, assignment_id: str, submission_id: str) -> Outcomes:
        path = f"{submission_path(SubmissionRef(class_id, assignment_id, submission_id))}/outcomes"
        return Outcomes.from_json(await self._list(path))

    async def recently_modified_submissions(
        self,
        class_id: str,
        *,
        expand_outcomes: bool = True,
        status: SubmissionStatus | None = None,
    ) -> list[Submission]:
        """Submissions of the class changed in the last 7 days (beta `getRecentlyModifiedSubmissions`)."""
        query = {**_submissions_query(expand_outcomes), "$filter": status_filter(status)}
        path = with_query(f"{class_path(class_id)}/getRecentlyModifiedSubmissions", query)
        return _keep_status([Submission.from_json(item) for item in await self._list(path, beta=True)], status)

    # -- grading ----------------------------------------------------------------------------------------------

    async def patch_points(
        self, class_id: str, assignment_id: str, submission_id: str, outcome_id: str, points: float
    ) -> PointsOutcome:
        """Set the working points (students see them only after return)."""
        ref = SubmissionRef(class_id, assignment_id, submission_id)
        return await self._patch(PointsPatch(ref, outcome_id, points), PointsOutcome)

    async def patch_feedback(
        self, class_id: str, assignment_id: str, submission_id: str, outcome_id: str, text: str
    ) -> FeedbackOutcome:
        """Set the working feedback text (students see it only after return)."""
        ref = SubmissionRef(class_id, assignment_id, submission_id)
        return await self._patch(FeedbackPatch(ref, outcome_id, text), FeedbackOutcome)

    async def patch_rubric(
        self,
        class_id: str,
        assignment_id: str,
        submission_id: str,
        outcome_id: str,
        selections: Sequence[RubricSelection],
    ) -> RubricOutcome:
        """Select rubric levels (one column per quality)."""
        ref = SubmissionRef(class_id, assignment_id, submission_id)
        return await self._patch(RubricPatch(ref, outcome_id, tuple(selections)), RubricOutcome)

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

    async def submit_submission(self, class_id: str, assignment_id: str, submission_id: str) -> Submission | None:
        """Turn in on the student's behalf (status → submitted)."""
        return await self._action(SubmissionRef(class_id, assignment_id, submission_id), "submit")

    # -- many at once ($batch) --------------------------------------------------------------------------------

    async def batch(self, requests: Sequence[BatchRequest]) -> list[BatchResult]:
        """Raw `$batch`: ≤20 per batch, throttled items retried, one result per request in request order."""
        return await run_batch(self._http, self._token, requests)

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
        results = await self.batch(
            [BatchRequest("GET", with_query(submissions_path(ref.class_id, ref.assignment_id), query)) for ref in refs]
        )
        items: list[list[Json]] = [[] for _ in refs]
        errors: list[GraphError | None] = [None] * len(refs)
        links: dict[int, str] = {}
        for index, result in enumerate(results):
            try:
                page = CollectionPage.from_json(result.json())
            except GraphError as exc:
                errors[index] = exc
                continue
            items[index].extend(page.items)
            if page.next_link:
                links[index] = page.next_link
        while links:
            batched = {i: path for i, link in links.items() if (path := self._relative(link)) is not None}
            alone = [i for i in links if i not in batched]
            answers = await self.batch([BatchRequest("GET", path) for path in batched.values()])
            pages: dict[int, Json | GraphError] = {}
            for index, answer in zip(batched, answers, strict=True):
                try:
                    pages[index] = answer.json()
                except GraphError as exc:
                    pages[index] = exc
            for index in alone:
                try:
                    pages[index] = await self._get_absolute(links[index])
                except GraphError as exc:
                    pages[index] = exc
            links = {}
            for index, body in pages.items():
                if isinstance(body, GraphError):
                    errors[index] = body
                    continue
                page = CollectionPage.from_json(body)
                items[index].extend(page.items)
                if page.next_link:
                    links[index] = page.next_link
        return [
            Settled(error=error)
            if error is not None
            else Settled(_keep_status([Submission.from_json(item) for item in found], status))
            for found, error in zip(items, errors, strict=True)
        ]

    def _relative(self, link: str) -> str | None:
        """A nextLink as a path under our v1.0 base (what `$batch` items take), or None if it points elsewhere."""
        base = self._http.base_url
        return link[len(base) :] if link.startswith(base + "/") else None

    async def _get_absolute(self, url: str) -> Json:
        response = await self._http.request("GET", url, self._token)
        return response.body or {}

    async def patch_outcomes_many(self, patches: Sequence[OutcomePatch]) -> list[Settled[GradeOutcome]]:
        """Many grade writes in few round trips; one settled outcome per patch, in order."""
        results = await self.batch([BatchRequest("PATCH", patch.path, patch.body()) for patch in patches])
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
        results = await self.batch([BatchRequest("POST", action_path(ref, "return")) for ref in refs])
        settled: list[Settled[Submission | None]] = []
        for result in results:
            try:
                body = result.json()
            except GraphError as exc:
                settled.append(Settled(error=exc))
                continue
            settled.append(Settled(Submission.from_json(body) if body else None))
        return settled


_EXPECTED: Mapping[type[OutcomePatch], type[GradeOutcome]] = {
    PointsPatch: PointsOutcome,
    FeedbackPatch: FeedbackOutcome,
    RubricPatch: RubricOutcome,
}


def _unexpected(patch: OutcomePatch) -> GraphError:
    return GraphError(200, "invalidResponse", method="PATCH", path=patch.path)


def _outcome(body: Json, patch: OutcomePatch) -> GradeOutcome:
    """The outcome a PATCH answered with (its `@odata.type` taken from the request when Graph omits it)."""
    outcome = outcome_from_json({"@odata.type": patch.body()["@odata.type"], "id": patch.outcome_id, **body})
    if outcome is None or not isinstance(outcome, _EXPECTED[type(patch)]):
        raise _unexpected(patch)
    return outcome
