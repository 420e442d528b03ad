"""Graph's `/education` resource tree as the sandbox serves it: the route table and one handler per operation, each
turning an authenticated GraphRequest into a GraphResponse (Graph's JSON, query options, paging, errors).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import unquote

from sandbox.access import ASSIGNMENTS_READ, GRADES_READ, GRADES_WRITE, ROSTER_READ, WORK_WRITE, Caller, ClassRole
from sandbox.directory import EducationSchool, SchoolClass, User
from sandbox.graph_http import (
    INCLUDE_UNKNOWN_ENUM_MEMBERS,
    GraphApiError,
    GraphRequest,
    GraphResponse,
    bad_request,
    forbidden,
)
from sandbox.journal import WriteJournal, WriteKind
from sandbox.odata import (
    ANY_PROPERTY,
    ENTITY_OPTIONS,
    LIST_OPTIONS,
    MAX_TOP,
    EntityShape,
    QueryOptions,
    QueryRules,
    TokenSigner,
    link,
    matches,
    order,
    page_bounds,
    parse_query,
    projection,
    search_matches,
    select,
)
from sandbox.school import (
    NO_DELAY,
    Assignment,
    EntityNotFoundError,
    FeedbackOutcome,
    FeedbackResourceOutcome,
    GradingError,
    ItemBody,
    Outcome,
    PointsOutcome,
    QualityFeedback,
    QualitySelection,
    Resource,
    RubricOutcome,
    School,
    SchoolError,
    Submission,
    SubmissionAction,
)
from sandbox.wire import (
    ASSIGNMENT_PROPERTIES,
    ASSIGNMENT_RESOURCE_PROPERTIES,
    ASSIGNMENT_TYPE,
    CLASS_PROPERTIES,
    FEEDBACK_RESOURCE_OUTCOME_TYPE,
    OUTCOME_PROPERTIES,
    POINTS_GRADE,
    RESOURCE_TYPES,
    RUBRIC_PROPERTIES,
    SCHOOL_PROPERTIES,
    SUBMISSION_PROPERTIES,
    SUBMISSION_RESOURCE_PROPERTIES,
    SUBMISSION_TYPE,
    USER_PROPERTIES,
    Json,
    assignment_json,
    assignment_resource_json,
    class_json,
    context_url,
    key,
    members_of,
    outcome_json,
    outcome_type,
    rubric_json,
    school_json,
    submission_json,
    submission_resource_json,
    user_json,
)

T = TypeVar("T")
NEVER = datetime.min.replace(tzinfo=UTC)
Handler = Callable[["Context"], GraphResponse]

CLASS_SHAPE = EntityShape(
    "educationClass",
    CLASS_PROPERTIES,
    schema_navigations=("assignments", "members", "teachers", "schools", "group", "assignmentCategories", "modules"),
)
USER_SHAPE = EntityShape(
    "educationUser",
    USER_PROPERTIES,
    schema_navigations=("assignments", "classes", "taughtClasses", "schools", "rubrics", "user"),
)
SCHOOL_SHAPE = EntityShape("educationSchool", SCHOOL_PROPERTIES, schema_navigations=("classes", "users"))
ASSIGNMENT_SHAPE = EntityShape(
    "educationAssignment",
    ASSIGNMENT_PROPERTIES,
    navigations=("submissions", "rubric", "resources"),
    schema_navigations=("categories", "gradingCategory", "gradingScheme"),
)
SUBMISSION_SHAPE = EntityShape(
    "educationSubmission", SUBMISSION_PROPERTIES, navigations=("outcomes", "resources", "submittedResources")
)
OUTCOME_SHAPE = EntityShape("educationOutcome", OUTCOME_PROPERTIES)
SUBMISSION_RESOURCE_SHAPE = EntityShape(
    "educationSubmissionResource", SUBMISSION_RESOURCE_PROPERTIES, schema_navigations=("dependentResources",)
)
ASSIGNMENT_RESOURCE_SHAPE = EntityShape(
    "educationAssignmentResource", ASSIGNMENT_RESOURCE_PROPERTIES, schema_navigations=("dependentResources",)
)
RUBRIC_SHAPE = EntityShape("educationRubric", RUBRIC_PROPERTIES)

ASSIGNMENT_ORDERBY = (
    "assignDateTime",
    "assignedDateTime",
    "closeDateTime",
    "createdDateTime",
    "displayName",
    "dueDateTime",
    "lastModifiedDateTime",
    "moduleUrl",
    "status",
)
SUBMISSION_ORDERBY = (
    "excusedDateTime",
    "reassignedDateTime",
    "returnedDateTime",
    "status",
    "submittedDateTime",
    "unsubmittedDateTime",
)
DIRECTORY_LIST = frozenset({"$top", "$select", "$filter", "$count", "$search", "$skiptoken"})

CLASS_LIST_RULES = QueryRules(CLASS_SHAPE, DIRECTORY_LIST | {"$orderby"}, orderby=("displayName",))
CLASS_ENTITY_RULES = QueryRules(CLASS_SHAPE, frozenset({"$select"}))
MEMBER_LIST_RULES = QueryRules(USER_SHAPE, DIRECTORY_LIST)
USER_LIST_RULES = QueryRules(USER_SHAPE, frozenset({"$top", "$select", "$filter", "$skiptoken"}))
USER_ENTITY_RULES = QueryRules(USER_SHAPE, frozenset({"$select"}))
SCHOOL_LIST_RULES = QueryRules(SCHOOL_SHAPE, DIRECTORY_LIST | {"$orderby"}, orderby=("displayName",))
SCHOOL_ENTITY_RULES = QueryRules(SCHOOL_SHAPE, frozenset({"$select"}))
ASSIGNMENT_LIST_RULES = QueryRules(ASSIGNMENT_SHAPE, LIST_OPTIONS | {"$expand"}, orderby=ASSIGNMENT_ORDERBY)
ASSIGNMENT_ENTITY_RULES = QueryRules(ASSIGNMENT_SHAPE, ENTITY_OPTIONS | {"$orderby"}, orderby=ASSIGNMENT_ORDERBY)
ASSIGNMENT_DELTA_RULES = QueryRules(ASSIGNMENT_SHAPE, frozenset({"$top", "$skiptoken", "$deltatoken"}))
SUBMISSION_LIST_RULES = QueryRules(SUBMISSION_SHAPE, LIST_OPTIONS | {"$expand"}, orderby=SUBMISSION_ORDERBY)
SUBMISSION_ENTITY_RULES = QueryRules(SUBMISSION_SHAPE, ENTITY_OPTIONS | {"$orderby"}, orderby=SUBMISSION_ORDERBY)
RECENT_RULES = QueryRules(
    SUBMISSION_SHAPE,
    LIST_OPTIONS | {"$expand"},
    orderby=("lastModifiedDateTime",),
    orderby_error_code="20143",
    filter_eq_refused=frozenset({"lastModifiedDateTime"}),
)
OUTCOME_LIST_RULES = QueryRules(OUTCOME_SHAPE, LIST_OPTIONS, orderby=ANY_PROPERTY)
OUTCOME_ENTITY_RULES = QueryRules(OUTCOME_SHAPE, ENTITY_OPTIONS)
RESOURCE_LIST_RULES = QueryRules(SUBMISSION_RESOURCE_SHAPE, LIST_OPTIONS, orderby=ANY_PROPERTY)
ASSIGNMENT_RESOURCE_LIST_RULES = QueryRules(ASSIGNMENT_RESOURCE_SHAPE, LIST_OPTIONS, orderby=ANY_PROPERTY)
RUBRIC_ENTITY_RULES = QueryRules(RUBRIC_SHAPE, frozenset({"$select"}))
NO_OPTIONS = QueryRules(SUBMISSION_SHAPE, frozenset())

# Segments Graph's education schema knows; an unknown one is Graph's 400 "Resource not found for the segment".
COLLECTION_SEGMENTS = frozenset(
    {
        "classes",
        "users",
        "schools",
        "assignments",
        "submissions",
        "outcomes",
        "resources",
        "submittedresources",
        "members",
        "teachers",
        "taughtclasses",
        "assignmentcategories",
        "categories",
        "rubrics",
        "modules",
        "dependentresources",
    }
)
KNOWN_SEGMENTS = COLLECTION_SEGMENTS | {
    "education",
    "me",
    "rubric",
    "group",
    "user",
    "delta",
    "getrecentlymodifiedsubmissions",
    "publish",
    "activate",
    "deactivate",
    "submit",
    "unsubmit",
    "return",
    "reassign",
    "excuse",
    "setupresourcesfolder",
    "setupfeedbackresourcesfolder",
    "assignmentdefaults",
    "assignmentsettings",
    "gradingcategory",
    "gradingscheme",
    "$count",
    "$ref",
}
READ_ONLY_OUTCOME_PROPERTIES = frozenset(
    {
        "publishedPoints",
        "publishedFeedback",
        "publishedRubricQualityFeedback",
        "publishedRubricQualitySelectedLevels",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "resourceStatus",
    }
)
WRITABLE_OUTCOME_PROPERTIES: dict[type[Outcome], frozenset[str]] = {
    PointsOutcome: frozenset({"points"}),
    FeedbackOutcome: frozenset({"feedback"}),
    RubricOutcome: frozenset({"rubricQualityFeedback", "rubricQualitySelectedLevels"}),
    FeedbackResourceOutcome: frozenset(),
}
_KEY_SEGMENT = re.compile(r"^([^()]+)\('?([^']*)'?\)$")


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    pattern: tuple[str, ...]
    """Literal segments (lower case) and `{name}` captures."""
    handler: Handler

    def match(self, segments: Sequence[str]) -> dict[str, str] | None:
        if len(segments) != len(self.pattern):
            return None
        params: dict[str, str] = {}
        for part, segment in zip(self.pattern, segments, strict=True):
            if part.startswith("{"):
                params[part[1:-1]] = segment
            elif part != segment.lower():
                return None
        return params

    @property
    def literal_count(self) -> int:
        return sum(1 for part in self.pattern if not part.startswith("{"))


def path_segments(path: str) -> list[str]:
    """Split a Graph path, accepting OData key syntax `classes('id')`, `microsoft.graph.` names and `name()`."""
    segments: list[str] = []
    for raw in path.strip("/").split("/"):
        segment = unquote(raw)
        if segment.lower().startswith("microsoft.graph."):
            segment = segment[len("microsoft.graph.") :]
        keyed = _KEY_SEGMENT.match(segment)
        if keyed and keyed.group(2):
            segments.extend([keyed.group(1), keyed.group(2)])
            continue
        segments.append(segment.removesuffix("()"))
    return segments


def unknown_path(segments: Sequence[str], path: str) -> GraphApiError:
    """Graph's answer for a path no route serves: 400 for a segment the schema lacks, else the service's 404."""
    expect_key = False
    for segment in segments:
        if expect_key:
            expect_key = False
            continue
        lowered = segment.lower()
        if lowered not in KNOWN_SEGMENTS:
            return bad_request(f"Resource not found for the segment '{segment}'.")
        expect_key = lowered in COLLECTION_SEGMENTS
    return GraphApiError(404, "UnknownError", f"No HTTP resource was found that matches the request URI '/{path}'.")


def school_error(error: SchoolError) -> GraphApiError:
    """How Graph answers a refused school operation."""
    if isinstance(error, EntityNotFoundError):
        if error.kind == "outcome":
            return GraphApiError(404, "20241", f"Entity not found. Outcome id: {error.entity_id}")
        if error.kind in ("class", "user", "school"):
            return GraphApiError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{error.entity_id}' does not exist or one of its queried reference-property objects are"
                " not present.",
            )
        return GraphApiError(404, "itemNotFound", f"Entity not found. {error.kind.capitalize()} id: {error.entity_id}")
    if isinstance(error, GradingError):
        return GraphApiError(400, "badRequest", "Bad request.", inner_code="invalidGrading", inner_message=str(error))
    return bad_request(str(error))  # an illegal transition, an outcome write that does not fit, a closed assignment


class Context:
    """One request being served: the caller, the school, the captured ids and the response helpers."""

    def __init__(self, api: EducationApi, request: GraphRequest, caller: Caller, params: Mapping[str, str]) -> None:
        self.api = api
        self.request = request
        self.caller = caller
        self.params = params
        self.school = api.school
        self.version = request.version
        self.include_unknown = request.include_unknown_enum_members

    # -- lookups with access checks ------------------------------------------------------------------------------

    def school_class(self) -> tuple[SchoolClass, ClassRole]:
        school_class = self.school.school_class(self.params["class"])
        return school_class, self.caller.member_of(school_class)

    def assignment(self) -> tuple[SchoolClass, ClassRole, Assignment]:
        school_class, role = self.school_class()
        assignment = self.school.assignment(school_class.id, self.params["assignment"])
        if role == "student" and not self.school.visible_to_students(assignment):
            raise EntityNotFoundError("assignment", self.params["assignment"])
        return school_class, role, assignment

    def submission(self) -> tuple[SchoolClass, ClassRole, Assignment, Submission]:
        school_class, role, assignment = self.assignment()
        submission = self.school.submission(school_class.id, assignment.id, self.params["submission"])
        if role == "student" and self.caller.user is not None and submission.student_id != self.caller.user.id:
            raise forbidden("Access denied. A student can only see their own submission.")
        return school_class, role, assignment, submission

    def user(self) -> User:
        wanted = self.params["user"].lower()
        found = next((u for u in self.school.directory.users.values() if u.id.lower() == wanted), None)
        if found is None:
            raise EntityNotFoundError("user", self.params["user"])
        return found

    def school_record(self) -> EducationSchool:
        wanted = self.params["school"].lower()
        found = next((s for s in self.school.directory.schools.values() if s.id.lower() == wanted), None)
        if found is None:
            raise EntityNotFoundError("school", self.params["school"])
        return found

    def visible_classes(self, classes: Iterable[SchoolClass]) -> list[SchoolClass]:
        if self.caller.user is None:
            return list(classes)
        return [c for c in classes if self.caller.role_in(c) is not None]

    # -- serializers bound to this request -----------------------------------------------------------------------

    def submission_json(self, submission: Submission) -> Json:
        return submission_json(submission, self.school.shown_state(submission), self.include_unknown)

    def assignment_json(self, assignment: Assignment) -> Json:
        return assignment_json(assignment, self.school.assignment_status(assignment), self.include_unknown)

    def outcomes_json(self, submission: Submission, role: ClassRole) -> list[Json]:
        return [outcome_json(o, self.version, student_view=role == "student") for o in submission.outcomes]

    def submission_expanders(self, role: ClassRole) -> dict[str, Callable[[Submission], Any]]:
        return {
            "outcomes": lambda s: self.outcomes_json(s, role),
            "resources": lambda s: [submission_resource_json(r) for r in s.resources],
            "submittedResources": lambda s: [submission_resource_json(r) for r in s.submitted_resources],
        }

    def own_submissions(self, submissions: Iterable[Submission], role: ClassRole) -> list[Submission]:
        if role == "student" and self.caller.user is not None:
            return [s for s in submissions if s.student_id == self.caller.user.id]
        return list(submissions)

    # -- responses -----------------------------------------------------------------------------------------------

    def options(self, rules: QueryRules) -> QueryOptions:
        options = parse_query(self.request.query, rules)
        if "outcomes" in options.expand:
            self.caller.require(GRADES_READ)
        return options

    def collection(
        self,
        rules: QueryRules,
        rows: Sequence[T],
        as_json: Callable[[T], Json],
        fragment: str,
        *,
        expanders: Mapping[str, Callable[[T], Any]] | None = None,
        search_fields: Sequence[str] = (),
        default_order: Callable[[T], Any] | None = None,
        context_projection: bool = True,
    ) -> GraphResponse:
        """A page of a collection with $filter/$search/$orderby/$top/$select/$expand and a signed nextLink.

        `default_order` sorts (descending) when the request has no $orderby. Items are serialized only as far as
        needed: all of them when $filter, $search or $orderby must look at every one, else just the page.
        """
        options = self.options(rules)
        if default_order is not None and not options.orderby:
            rows = sorted(rows, key=default_order, reverse=True)
        cache: dict[int, Json] = {}

        def shown(index: int) -> Json:
            if index not in cache:
                cache[index] = as_json(rows[index])
            return cache[index]

        order_of = list(range(len(rows)))
        if options.search is not None:
            if self.request.headers.get("ConsistencyLevel", "").lower() != "eventual":
                raise bad_request(
                    "Request with $search query parameter only works through MSGraph with a special request header:"
                    " 'ConsistencyLevel: eventual'"
                )
            search = options.search
            order_of = [i for i in order_of if search_matches(search, shown(i), search_fields)]
        if options.filter is not None:
            node = options.filter
            order_of = [i for i in order_of if matches(node, shown(i))]
        if options.orderby:
            order_of = order(order_of, shown, options.orderby)
        scope = self.api.signer.scope(self.request, options.carried)
        offset = self.api.signer.read_skiptoken(options.skiptoken, scope) if options.skiptoken else 0
        end, next_offset = page_bounds(len(order_of), offset, options.top, self.api.page_size, self.api.max_top)
        value = [self._shaped(rows[i], shown(i), options, expanders or {}) for i in order_of[offset:end]]
        suffix = projection(options) if context_projection else ""
        body: dict[str, Any] = {"@odata.context": context_url(self.version, fragment + suffix)}
        if options.count:
            body["@odata.count"] = len(order_of)
        if next_offset is not None:
            token = self.api.signer.skiptoken(scope, next_offset)
            body["@odata.nextLink"] = link(self.request, options.carried, [("$skiptoken", token)])
        body["value"] = value
        return GraphResponse(200, body)

    def entity(
        self,
        rules: QueryRules,
        row: T,
        as_json: Callable[[T], Json],
        collection_fragment: str,
        entity_path: str,
        *,
        expanders: Mapping[str, Callable[[T], Any]] | None = None,
    ) -> GraphResponse:
        """One entity with $select/$expand; expanded collections get their own `nav@odata.context`."""
        options = self.options(rules)
        shaped = self._shaped(row, as_json(row), options, expanders or {}, entity_path=entity_path)
        fragment = f"{collection_fragment}{projection(options)}/$entity"
        return GraphResponse(200, {"@odata.context": context_url(self.version, fragment), **shaped})

    def _shaped(
        self,
        row: T,
        item: Json,
        options: QueryOptions,
        expanders: Mapping[str, Callable[[T], Any]],
        entity_path: str | None = None,
    ) -> dict[str, Any]:
        shaped = dict(item)
        keep: list[str] = []
        for name in options.expand:
            value = expanders[name](row)
            if entity_path is not None and isinstance(value, list):
                shaped[f"{name}@odata.context"] = context_url(self.version, f"{entity_path}/{name}")
                keep.append(f"{name}@odata.context")
            shaped[name] = value
            keep.append(name)
        return select(shaped, options.select, keep=keep)

    def action_result(self, body: Json, odata_type: str, metadata: str) -> GraphResponse:
        """What Graph's bound actions answer: 200 with the entity, context `$metadata#<type>` and `@odata.type`."""
        parse_query(self.request.query, NO_OPTIONS)
        return GraphResponse(
            200, {"@odata.context": context_url(self.version, metadata), "@odata.type": odata_type, **body}
        )


class EducationApi:
    """The route table over a School; `handle` serves one authenticated request."""

    def __init__(
        self,
        school: School,
        *,
        page_size: int = 10,
        max_top: int = MAX_TOP,
        signer: TokenSigner | None = None,
        settle: Callable[[], timedelta] = lambda: NO_DELAY,
        journal: WriteJournal | None = None,
    ) -> None:
        if min(page_size, max_top) < 1:
            raise ValueError("page_size and max_top must be at least 1")
        self.school = school
        self.page_size = page_size
        """Items per page when a request sends no `$top`."""
        self.max_top = max_top
        self.signer = signer or TokenSigner()
        self.settle = settle
        self.journal = journal if journal is not None else WriteJournal()
        """Every outcome write and submission action served here, in order."""
        self.routes = self._routes()

    def _routes(self) -> list[Route]:
        c = "education/classes/{class}"
        a = f"{c}/assignments/{{assignment}}"
        s = f"{a}/submissions/{{submission}}"
        table: list[tuple[str, str, Handler]] = [
            ("GET", "education/classes", self.list_classes),
            ("GET", c, self.get_class),
            ("GET", f"{c}/members", self.list_members),
            ("GET", f"{c}/teachers", self.list_teachers),
            ("GET", "education/me", self.get_me),
            ("GET", "education/me/classes", self.my_classes),
            ("GET", "education/me/taughtClasses", self.my_taught_classes),
            ("GET", "education/users/{user}", self.get_user),
            ("GET", "education/users/{user}/classes", self.user_classes),
            ("GET", "education/users/{user}/taughtClasses", self.user_taught_classes),
            ("GET", "education/schools", self.list_schools),
            ("GET", "education/schools/{school}", self.get_school),
            ("GET", "education/schools/{school}/classes", self.school_classes),
            ("GET", f"{c}/assignments", self.list_assignments),
            ("GET", f"{c}/assignments/delta", self.assignments_delta),
            ("GET", a, self.get_assignment),
            ("POST", f"{a}/publish", self.publish),
            ("POST", f"{a}/activate", self.activate),
            ("POST", f"{a}/deactivate", self.deactivate),
            ("GET", f"{a}/rubric", self.get_rubric),
            ("GET", f"{a}/resources", self.list_assignment_resources),
            ("GET", f"{a}/submissions", self.list_submissions),
            ("GET", s, self.get_submission),
            ("GET", f"{s}/outcomes", self.list_outcomes),
            ("POST", f"{s}/outcomes", self.create_outcome),
            ("GET", f"{s}/outcomes/{{outcome}}", self.get_outcome),
            ("PATCH", f"{s}/outcomes/{{outcome}}", self.patch_outcome),
            ("DELETE", f"{s}/outcomes/{{outcome}}", self.delete_outcome),
            ("GET", f"{s}/resources", self.list_submission_resources),
            ("GET", f"{s}/submittedResources", self.list_submitted_resources),
            ("POST", f"{s}/submit", self.action("submit")),
            ("POST", f"{s}/unsubmit", self.action("unsubmit")),
            ("POST", f"{s}/return", self.action("return")),
            ("POST", f"{s}/reassign", self.action("reassign")),
            ("POST", f"{s}/excuse", self.action("excuse")),
            ("GET", f"{c}/getRecentlyModifiedSubmissions", self.recently_modified_submissions),
        ]
        return [
            Route(method, tuple(p if p.startswith("{") else p.lower() for p in pattern.split("/")), handler)
            for method, pattern, handler in table
        ]

    def handle(self, request: GraphRequest, caller: Caller) -> GraphResponse:
        """Route and serve; refusals become GraphApiError (the caller turns them into Graph's error body)."""
        segments = path_segments(request.path)
        candidates = [(route, route.match(segments)) for route in self.routes]
        found = [(route, params) for route, params in candidates if params is not None]
        if not found:
            raise unknown_path(segments, request.path)
        allowed = [(route, params) for route, params in found if route.method == request.method.upper()]
        if not allowed:
            raise GraphApiError(
                405, "BadRequest", f"The requested resource does not support http method '{request.method.upper()}'."
            )
        route, params = max(allowed, key=lambda pair: pair[0].literal_count)
        try:
            response = route.handler(Context(self, request, caller, params))
        except SchoolError as error:
            raise school_error(error) from error
        if request.include_unknown_enum_members:
            response.headers["Preference-Applied"] = INCLUDE_UNKNOWN_ENUM_MEMBERS
        return response

    # -- roster --------------------------------------------------------------------------------------------------

    def list_classes(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        classes = ctx.visible_classes(ctx.school.directory.classes.values())
        return ctx.collection(
            CLASS_LIST_RULES,
            classes,
            class_json,
            "education/classes",
            search_fields=("displayName", "description", "mailNickname"),
        )

    def get_class(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        school_class, _ = ctx.school_class()
        return ctx.entity(
            CLASS_ENTITY_RULES,
            school_class,
            class_json,
            "education/classes",
            f"education/classes({key(school_class.id)})",
        )

    def list_members(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        school_class, _ = ctx.school_class()
        users = members_of(ctx.school.directory, school_class)
        fragment = f"education/classes({key(school_class.id)})/members"
        return ctx.collection(
            MEMBER_LIST_RULES, users, user_json, fragment, search_fields=("displayName", "givenName", "surname")
        )

    def list_teachers(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        school_class, _ = ctx.school_class()
        directory = ctx.school.directory
        teachers = [directory.users[t] for t in school_class.teacher_ids if t in directory.users]
        fragment = f"education/classes({key(school_class.id)})/teachers"
        return ctx.collection(USER_LIST_RULES, teachers, user_json, fragment)

    @staticmethod
    def _signed_in(ctx: Context) -> User:
        if ctx.caller.user is None:
            raise bad_request("/me request is only valid with delegated authentication flow.")
        ctx.caller.require(ROSTER_READ)
        return ctx.caller.user

    def get_me(self, ctx: Context) -> GraphResponse:
        user = self._signed_in(ctx)
        return ctx.entity(USER_ENTITY_RULES, user, user_json, "education/me", "education/me")

    def my_classes(self, ctx: Context) -> GraphResponse:
        user = self._signed_in(ctx)
        classes = ctx.school.directory.classes_of(user.id)
        return ctx.collection(CLASS_LIST_RULES, classes, class_json, "education/me/classes")

    def my_taught_classes(self, ctx: Context) -> GraphResponse:
        user = self._signed_in(ctx)
        classes = ctx.school.directory.taught_by(user.id)
        return ctx.collection(CLASS_LIST_RULES, classes, class_json, "education/me/taughtClasses")

    @staticmethod
    def _readable_user(ctx: Context) -> User:
        ctx.caller.require(ROSTER_READ)
        user = ctx.user()
        me = ctx.caller.user
        if me is not None and me.id != user.id:
            mine = {c.id for c in ctx.school.directory.classes_of(me.id)}
            if not mine & {c.id for c in ctx.school.directory.classes_of(user.id)}:
                raise forbidden("Access denied. The signed-in user shares no class with this user.")
        return user

    def get_user(self, ctx: Context) -> GraphResponse:
        user = self._readable_user(ctx)
        return ctx.entity(USER_ENTITY_RULES, user, user_json, "education/users", f"education/users({key(user.id)})")

    @staticmethod
    def _own_or_app(ctx: Context) -> User:
        ctx.caller.require(ROSTER_READ)
        user = ctx.user()
        if ctx.caller.user is not None and ctx.caller.user.id != user.id:
            raise forbidden("Access denied. A delegated caller can list only their own classes.")
        return user

    def user_classes(self, ctx: Context) -> GraphResponse:
        user = self._own_or_app(ctx)
        classes = ctx.school.directory.classes_of(user.id)
        return ctx.collection(CLASS_LIST_RULES, classes, class_json, f"education/users({key(user.id)})/classes")

    def user_taught_classes(self, ctx: Context) -> GraphResponse:
        user = self._own_or_app(ctx)
        classes = ctx.school.directory.taught_by(user.id)
        fragment = f"education/users({key(user.id)})/taughtClasses"
        return ctx.collection(CLASS_LIST_RULES, classes, class_json, fragment)

    def list_schools(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        directory = ctx.school.directory
        schools = list(directory.schools.values())
        if ctx.caller.user is not None:
            mine = {c.school_id for c in directory.classes_of(ctx.caller.user.id)}
            schools = [s for s in schools if s.id in mine]
        return ctx.collection(SCHOOL_LIST_RULES, schools, school_json, "education/schools")

    def get_school(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        school = ctx.school_record()
        return ctx.entity(SCHOOL_ENTITY_RULES, school, school_json, "education/schools", "education/schools")

    def school_classes(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ROSTER_READ)
        school = ctx.school_record()
        classes = ctx.visible_classes(c for c in ctx.school.directory.classes.values() if c.school_id == school.id)
        fragment = f"education/schools({key(school.id)})/classes"
        return ctx.collection(CLASS_LIST_RULES, classes, class_json, fragment)

    # -- assignments ---------------------------------------------------------------------------------------------

    def _assignment_expanders(self, ctx: Context, role: ClassRole) -> dict[str, Callable[[Assignment], Any]]:
        def submissions(assignment: Assignment) -> list[Json]:
            return [ctx.submission_json(s) for s in ctx.own_submissions(assignment.submissions.values(), role)]

        def rubric(assignment: Assignment) -> Json | None:
            found = ctx.school.rubric_of(assignment)
            return rubric_json(found) if found is not None else None

        return {
            "submissions": submissions,
            "rubric": rubric,
            "resources": lambda assignment: [assignment_resource_json(r) for r in assignment.resources],
        }

    def list_assignments(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, role = ctx.school_class()
        assignments = ctx.school.assignments_of(school_class.id)
        if role == "student":
            assignments = [a for a in assignments if ctx.school.visible_to_students(a)]
        return ctx.collection(
            ASSIGNMENT_LIST_RULES,
            assignments,
            ctx.assignment_json,
            f"education/classes({key(school_class.id)})/assignments",
            expanders=self._assignment_expanders(ctx, role),
        )

    def get_assignment(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, role, assignment = ctx.assignment()
        path = f"education/classes({key(school_class.id)})/assignments"
        return ctx.entity(
            ASSIGNMENT_ENTITY_RULES,
            assignment,
            ctx.assignment_json,
            path,
            f"{path}({key(assignment.id)})",
            expanders=self._assignment_expanders(ctx, role),
        )

    def assignments_delta(self, ctx: Context) -> GraphResponse:
        """Assignments changed since the deltaLink's token (all at first); pages, then an `@odata.deltaLink`."""
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, role = ctx.school_class()
        options = ctx.options(ASSIGNMENT_DELTA_RULES)
        delta_scope = f"{ctx.version}|{ctx.request.path.lower()}"
        since = self.signer.read_deltatoken(options.deltatoken, delta_scope) if options.deltatoken else None
        assignments = [
            a
            for a in ctx.school.assignments_of(school_class.id)
            if (role != "student" or ctx.school.visible_to_students(a))
            and (since is None or a.last_modified_at > since)
        ]
        assignments.sort(key=lambda a: (a.last_modified_at, a.id))
        scope = self.signer.scope(ctx.request, options.carried)
        offset = self.signer.read_skiptoken(options.skiptoken, scope) if options.skiptoken else 0
        end, next_offset = page_bounds(len(assignments), offset, options.top, self.page_size, self.max_top)
        body: dict[str, Any] = {
            "@odata.context": context_url(ctx.version, "Collection(microsoft.graph.educationAssignment)")
        }
        if next_offset is not None:
            token = self.signer.skiptoken(scope, next_offset)
            body["@odata.nextLink"] = link(ctx.request, options.carried, [("$skiptoken", token)])
        else:
            token = self.signer.deltatoken(delta_scope, ctx.school.now())
            body["@odata.deltaLink"] = link(ctx.request, [], [("$deltatoken", token)])
        body["value"] = [ctx.assignment_json(a) for a in assignments[offset:end]]
        return GraphResponse(200, body)

    def _assignment_action(self, ctx: Context, operate: Callable[[str, str], Assignment]) -> GraphResponse:
        ctx.caller.require(WORK_WRITE)
        school_class, _, assignment = ctx.assignment()
        ctx.caller.teacher_of(school_class)
        changed = operate(school_class.id, assignment.id)
        return ctx.action_result(ctx.assignment_json(changed), ASSIGNMENT_TYPE, "educationAssignment")

    def publish(self, ctx: Context) -> GraphResponse:
        by = ctx.caller.actor
        return self._assignment_action(ctx, lambda c, a: ctx.school.publish(c, a, by=by, settle=self.settle()))

    def activate(self, ctx: Context) -> GraphResponse:
        by = ctx.caller.actor
        return self._assignment_action(ctx, lambda c, a: ctx.school.activate(c, a, by=by))

    def deactivate(self, ctx: Context) -> GraphResponse:
        by = ctx.caller.actor
        return self._assignment_action(ctx, lambda c, a: ctx.school.deactivate(c, a, by=by))

    def get_rubric(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, _, assignment = ctx.assignment()
        rubric = ctx.school.rubric_of(assignment)
        if rubric is None:
            raise EntityNotFoundError("rubric", f"of assignment {assignment.id}")
        path = f"education/classes({key(school_class.id)})/assignments({key(assignment.id)})/rubric"
        return ctx.entity(RUBRIC_ENTITY_RULES, rubric, rubric_json, path, path)

    def list_assignment_resources(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, _, assignment = ctx.assignment()
        fragment = f"education/classes({key(school_class.id)})/assignments({key(assignment.id)})/resources"
        return ctx.collection(ASSIGNMENT_RESOURCE_LIST_RULES, assignment.resources, assignment_resource_json, fragment)

    # -- submissions ---------------------------------------------------------------------------------------------

    @staticmethod
    def _submissions_path(school_class: SchoolClass, assignment: Assignment) -> str:
        return f"education/classes({key(school_class.id)})/assignments({key(assignment.id)})/submissions"

    def list_submissions(self, ctx: Context) -> GraphResponse:
        """Teachers and apps see every submission; a student only their own."""
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, role, assignment = ctx.assignment()
        return ctx.collection(
            SUBMISSION_LIST_RULES,
            ctx.own_submissions(assignment.submissions.values(), role),
            ctx.submission_json,
            self._submissions_path(school_class, assignment),
            expanders=ctx.submission_expanders(role),
        )

    def get_submission(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, role, assignment, submission = ctx.submission()
        path = self._submissions_path(school_class, assignment)
        return ctx.entity(
            SUBMISSION_ENTITY_RULES,
            submission,
            ctx.submission_json,
            path,
            f"{path}({key(submission.id)})",
            expanders=ctx.submission_expanders(role),
        )

    def _submission_path(self, school_class: SchoolClass, assignment: Assignment, submission: Submission) -> str:
        return f"{self._submissions_path(school_class, assignment)}({key(submission.id)})"

    def list_submission_resources(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, _, assignment, submission = ctx.submission()
        fragment = f"{self._submission_path(school_class, assignment, submission)}/resources"
        return ctx.collection(RESOURCE_LIST_RULES, submission.resources, submission_resource_json, fragment)

    def list_submitted_resources(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(ASSIGNMENTS_READ)
        school_class, _, assignment, submission = ctx.submission()
        fragment = f"{self._submission_path(school_class, assignment, submission)}/submittedResources"
        return ctx.collection(RESOURCE_LIST_RULES, submission.submitted_resources, submission_resource_json, fragment)

    def action(self, name: SubmissionAction) -> Handler:
        """A submission action: students may submit/unsubmit their own work; return/reassign/excuse are teachers'."""

        def run(ctx: Context) -> GraphResponse:
            student_may = name in ("submit", "unsubmit")
            ctx.caller.require(WORK_WRITE if student_may else GRADES_WRITE)
            school_class, _, assignment, submission = ctx.submission()
            if not student_may:
                ctx.caller.teacher_of(school_class)
            changed = ctx.school.act(
                name, school_class.id, assignment.id, submission.id, by=ctx.caller.actor, settle=self.settle()
            )
            self._journal(ctx, name, submission)
            body = submission_json(changed, changed.state, ctx.include_unknown)
            return ctx.action_result(body, SUBMISSION_TYPE, "educationSubmission")

        run.__name__ = f"{name}_submission"
        return run

    def recently_modified_submissions(self, ctx: Context) -> GraphResponse:
        """Submissions of the class modified in the last 7 days; teachers and apps only."""
        ctx.caller.require(GRADES_READ)
        school_class, _ = ctx.school_class()
        ctx.caller.teacher_of(school_class)
        return ctx.collection(
            RECENT_RULES,
            ctx.school.recently_modified(school_class.id),
            ctx.submission_json,
            "Collection(microsoft.graph.educationSubmission)",
            expanders=ctx.submission_expanders("teacher"),
            default_order=lambda submission: ctx.school.shown_state(submission).last_modified_at or NEVER,
            context_projection=False,
        )

    # -- outcomes ------------------------------------------------------------------------------------------------

    def list_outcomes(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(GRADES_READ)
        school_class, role, assignment, submission = ctx.submission()
        fragment = f"{self._submission_path(school_class, assignment, submission)}/outcomes"
        student = role == "student"
        return ctx.collection(
            OUTCOME_LIST_RULES,
            submission.outcomes,
            lambda outcome: outcome_json(outcome, ctx.version, student_view=student),
            fragment,
        )

    def get_outcome(self, ctx: Context) -> GraphResponse:
        ctx.caller.require(GRADES_READ)
        school_class, role, assignment, submission = ctx.submission()
        outcome = submission.outcome(ctx.params["outcome"])
        path = f"{self._submission_path(school_class, assignment, submission)}/outcomes"
        student = role == "student"
        return ctx.entity(
            OUTCOME_ENTITY_RULES,
            outcome,
            lambda item: outcome_json(item, ctx.version, student_view=student),
            path,
            f"{path}({key(outcome.id)})",
        )

    def _grading_target(self, ctx: Context) -> tuple[SchoolClass, Assignment, Submission]:
        ctx.caller.require(GRADES_WRITE)
        school_class, _, assignment, submission = ctx.submission()
        ctx.caller.teacher_of(school_class)
        return school_class, assignment, submission

    def patch_outcome(self, ctx: Context) -> GraphResponse:
        """Write the working grade/feedback/rubric of one outcome; `@odata.type` must name the outcome's type."""
        school_class, assignment, submission = self._grading_target(ctx)
        outcome = submission.outcome(ctx.params["outcome"])
        body = ctx.request.json_body()
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        _check_outcome_body(body, outcome)
        ids = (school_class.id, assignment.id, submission.id, outcome.id)
        by = ctx.caller.actor
        if isinstance(outcome, PointsOutcome) and "points" in body:
            points = ctx.school.set_points(*ids, _points_value(body["points"]), by=by).points
            self._journal(ctx, "points", submission, points.points if points is not None else None)
        elif isinstance(outcome, FeedbackOutcome) and "feedback" in body:
            feedback = ctx.school.set_feedback(*ids, _feedback_value(body["feedback"]), by=by).feedback
            self._journal(ctx, "feedback", submission, feedback.text.content if feedback is not None else None)
        elif isinstance(outcome, RubricOutcome):
            rubric = ctx.school.set_rubric(
                *ids,
                quality_feedback=_quality_feedback(body.get("rubricQualityFeedback")),
                selected_levels=_quality_selections(body.get("rubricQualitySelectedLevels")),
                by=by,
            )
            self._journal(ctx, "rubric", submission, [[s.quality_id, s.column_id] for s in rubric.selected_levels])
        elif isinstance(outcome, FeedbackResourceOutcome):
            raise bad_request("A feedback resource outcome cannot be updated; delete it and add a new one.")
        return self._outcome_response(ctx, school_class, assignment, submission, outcome, 200)

    def _journal(self, ctx: Context, kind: WriteKind, submission: Submission, value: Any = None) -> None:
        actor = ctx.caller.actor
        self.journal.record(
            kind,
            submission.class_id,
            submission.assignment_id,
            submission.id,
            at=ctx.school.now(),
            by=actor.user_id or actor.application_id,
            value=value,
        )

    def _outcome_response(
        self,
        ctx: Context,
        school_class: SchoolClass,
        assignment: Assignment,
        submission: Submission,
        outcome: Outcome,
        status: int,
    ) -> GraphResponse:
        fragment = f"{self._submission_path(school_class, assignment, submission)}/outcomes/$entity"
        body = {"@odata.context": context_url(ctx.version, fragment), **outcome_json(outcome, ctx.version)}
        return GraphResponse(status, body)

    def create_outcome(self, ctx: Context) -> GraphResponse:
        """Add a feedback resource (a file or link for the student) as an educationFeedbackResourceOutcome."""
        school_class, assignment, submission = self._grading_target(ctx)
        body = ctx.request.json_body()
        if (
            not isinstance(body, dict)
            or _normal_type(body.get("@odata.type")) != FEEDBACK_RESOURCE_OUTCOME_TYPE.lower()
        ):
            raise bad_request("Only an educationFeedbackResourceOutcome can be added to a submission.")
        resource = _resource_value(body.get("feedbackResource"), ctx)
        outcome = ctx.school.add_feedback_resource(
            school_class.id, assignment.id, submission.id, resource, by=ctx.caller.actor
        )
        return self._outcome_response(ctx, school_class, assignment, submission, outcome, 201)

    def delete_outcome(self, ctx: Context) -> GraphResponse:
        school_class, assignment, submission = self._grading_target(ctx)
        ctx.school.delete_outcome(
            school_class.id, assignment.id, submission.id, ctx.params["outcome"], by=ctx.caller.actor
        )
        return GraphResponse(204)


# -- outcome request bodies ----------------------------------------------------------------------------------------


def _normal_type(value: object) -> str:
    return ("#" + value.lstrip("#")).lower() if isinstance(value, str) else ""


def _check_outcome_body(body: Mapping[str, Any], outcome: Outcome) -> None:
    expected = outcome_type(outcome)
    sent = body.get("@odata.type")
    if sent is None:
        raise bad_request(f"The '@odata.type' property is required to update an outcome; this one is '{expected}'.")
    if _normal_type(sent) != expected.lower():
        raise bad_request(f"The @odata.type '{sent}' does not match the type of outcome {outcome.id} ('{expected}').")
    writable = WRITABLE_OUTCOME_PROPERTIES[type(outcome)]
    for name, value in body.items():
        if name == "@odata.type" or name in writable:
            continue
        if name == "id":
            if not isinstance(value, str) or value.lower() != outcome.id.lower():
                raise bad_request("The property 'id' is read-only and cannot be changed.")
            continue
        if name in READ_ONLY_OUTCOME_PROPERTIES:
            raise bad_request(f"The property '{name}' is read-only and cannot be set.")
        raise bad_request(f"The property '{name}' does not exist on type '{expected.lstrip('#')}'.")


def _points_value(value: object) -> float | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("The property 'points' must be an educationAssignmentPointsGrade object or null.")
    grade_type = value.get("@odata.type")
    if grade_type is not None and _normal_type(grade_type) != POINTS_GRADE.lower():
        raise bad_request(f"The points grade must be of type '{POINTS_GRADE}'.")
    for name in value:
        if name not in ("@odata.type", "points", "gradedBy", "gradedDateTime", "grade"):
            raise bad_request(
                f"The property '{name}' does not exist on type 'microsoft.graph.educationAssignmentPointsGrade'."
            )
    points = value.get("points")
    if points is None:
        return None
    if isinstance(points, bool) or not isinstance(points, int | float):
        raise GraphApiError(
            400, "badRequest", "Bad request.", inner_code="invalidGrading", inner_message="Points must be a number."
        )
    result = float(points)
    if math.isnan(result) or math.isinf(result):
        raise GradingError("Points must be a finite number when using PointsGradeType.")
    return result


def _item_body(value: object, what: str) -> ItemBody | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("content"), str):
        raise bad_request(f"The property '{what}' must be an educationItemBody with a string 'content'.")
    content_type = str(value.get("contentType") or "text")
    if content_type.lower() not in ("text", "html"):
        raise bad_request(f"'{content_type}' is not a valid bodyType (text or html).")
    return ItemBody(value["content"], "html" if content_type.lower() == "html" else "text")


def _feedback_value(value: object) -> ItemBody | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_request("The property 'feedback' must be an educationFeedback object or null.")
    return _item_body(value.get("text"), "feedback.text")


def _quality_feedback(value: object) -> list[QualityFeedback] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request("The property 'rubricQualityFeedback' must be a list of rubricQualityFeedbackModel.")
    result: list[QualityFeedback] = []
    for item in value:
        quality_id = item.get("qualityId")
        if not isinstance(quality_id, str):
            raise bad_request("Every rubricQualityFeedbackModel needs a 'qualityId'.")
        result.append(QualityFeedback(quality_id, _item_body(item.get("feedback"), "feedback")))
    return result


def _quality_selections(value: object) -> list[QualitySelection] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise bad_request(
            "The property 'rubricQualitySelectedLevels' must be a list of rubricQualitySelectedColumnModel."
        )
    result: list[QualitySelection] = []
    for item in value:
        quality_id, column_id = item.get("qualityId"), item.get("columnId")
        if not isinstance(quality_id, str) or not (column_id is None or isinstance(column_id, str)):
            raise bad_request("Every rubricQualitySelectedColumnModel needs a 'qualityId' and a 'columnId'.")
        result.append(QualitySelection(quality_id, column_id))
    return result


def _resource_value(value: object, ctx: Context) -> Resource:
    if not isinstance(value, dict):
        raise bad_request("The property 'feedbackResource' is required.")
    wanted = _normal_type(value.get("@odata.type"))
    kind = next((k for k, (odata_type, _) in RESOURCE_TYPES.items() if odata_type.lower() == wanted), None)
    if kind is None:
        raise bad_request(f"'{value.get('@odata.type')}' is not a supported educationResource type.")
    url_property = RESOURCE_TYPES[kind][1]
    name, url = value.get("displayName"), value.get(url_property)
    if not isinstance(name, str) or not name or not isinstance(url, str) or not url:
        raise bad_request(f"A {kind} resource needs 'displayName' and '{url_property}'.")
    return Resource(kind, name, url, ctx.caller.actor, ctx.school.now())
