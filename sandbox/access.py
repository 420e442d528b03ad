"""Who is calling the Graph emulator and what they may do: bearer tokens checked like Graph (401
InvalidAuthenticationToken), delegated scopes / application roles per operation family (403), and class membership
(a delegated caller reaches only classes they belong to; grading needs a teacher of the class).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from sandbox.directory import GRAPH_APP_ID, GRAPH_AUDIENCE, Directory, SchoolClass, User
from sandbox.graph_http import GraphApiError, forbidden
from sandbox.school import Actor
from sandbox.tokens import InvalidTokenError, Principal, TokenAuthority

GRAPH_AUDIENCES = [GRAPH_AUDIENCE, GRAPH_APP_ID]
ClassRole = Literal["app", "teacher", "student"]
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
    f'client_id="{GRAPH_APP_ID}"'
)


@dataclass(frozen=True, slots=True)
class Permission:
    """An operation family: the delegated scopes and application roles that each allow it."""

    name: str
    delegated: frozenset[str]
    application: frozenset[str]


ROSTER_READ = Permission(
    "read the roster",
    frozenset({"EduRoster.ReadBasic", "EduRoster.Read", "EduRoster.ReadWrite"}),
    frozenset({"EduRoster.Read.All", "EduRoster.ReadWrite.All"}),
)
ASSIGNMENTS_READ = Permission(
    "read assignments and submissions",
    frozenset(
        {"EduAssignments.ReadBasic", "EduAssignments.Read", "EduAssignments.ReadWriteBasic", "EduAssignments.ReadWrite"}
    ),
    frozenset(
        {
            "EduAssignments.ReadBasic.All",
            "EduAssignments.Read.All",
            "EduAssignments.ReadWriteBasic.All",
            "EduAssignments.ReadWrite.All",
        }
    ),
)
GRADES_READ = Permission(
    "read grades and feedback",
    frozenset({"EduAssignments.Read", "EduAssignments.ReadWrite"}),
    frozenset({"EduAssignments.Read.All", "EduAssignments.ReadWrite.All"}),
)
GRADES_WRITE = Permission(
    "grade, return, reassign or excuse",
    frozenset({"EduAssignments.ReadWrite"}),
    frozenset({"EduAssignments.ReadWrite.All"}),
)
WORK_WRITE = Permission(
    "publish assignments and turn work in",
    frozenset({"EduAssignments.ReadWriteBasic", "EduAssignments.ReadWrite"}),
    frozenset({"EduAssignments.ReadWriteBasic.All", "EduAssignments.ReadWrite.All"}),
)


def unauthenticated(message: str) -> GraphApiError:
    return GraphApiError(401, "InvalidAuthenticationToken", message, headers={"WWW-Authenticate": WWW_AUTHENTICATE})


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified Graph caller: the token's principal and, for delegated tokens, the signed-in user."""

    principal: Principal
    user: User | None

    @property
    def is_app(self) -> bool:
        return not self.principal.is_delegated

    @property
    def actor(self) -> Actor:
        if self.user is not None:
            return Actor.user(self.user.id)
        return Actor.app(self.principal.app_id)

    def require(self, permission: Permission) -> None:
        """403 unless a scope (delegated) or role (application) of the token allows the operation."""
        if self.is_app:
            held, needed, label = self.principal.roles, permission.application, "Roles"
        else:
            held, needed, label = self.principal.scopes, permission.delegated, "Scopes"
        if held & needed:
            return
        raise forbidden(
            f"Missing {label.lower()} to {permission.name}. API requires one of '{', '.join(sorted(needed))}'. "
            f"{label} on the request '{', '.join(sorted(held)) or 'none'}'."
        )

    def holds(self, permission: Permission) -> bool:
        held = self.principal.roles if self.is_app else self.principal.scopes
        needed = permission.application if self.is_app else permission.delegated
        return bool(held & needed)

    def role_in(self, school_class: SchoolClass) -> ClassRole | None:
        if self.user is None:
            return "app"
        if self.user.id in school_class.teacher_ids:
            return "teacher"
        if self.user.id in school_class.student_ids:
            return "student"
        return None

    def member_of(self, school_class: SchoolClass) -> ClassRole:
        """The caller's role in the class; a delegated user outside it gets Graph's 403 (access denied)."""
        role = self.role_in(school_class)
        if role is None:
            raise forbidden("Access denied. The signed-in user is not a member of this class.")
        return role

    def teacher_of(self, school_class: SchoolClass) -> ClassRole:
        """An application, or a teacher of this class; students and outsiders get 403."""
        role = self.member_of(school_class)
        if role == "student":
            raise forbidden("Access denied. Only a teacher of this class can do this.")
        return role


class BearerVerifier:
    """Checks `Authorization: Bearer …` against the TokenAuthority (Graph audience), caching verified claims."""

    def __init__(self, authority: TokenAuthority, directory: Directory, cache_size: int = 4096) -> None:
        self.authority = authority
        self.directory = directory
        self._cache: dict[str, dict[str, Any]] = {}
        self._cache_size = cache_size

    def caller(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.strip():
            raise unauthenticated("Access token is empty.")
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthenticated("Access token is empty.")
        claims = self._verified(token.strip())
        principal = self.authority.principal(claims)
        user: User | None = None
        if principal.is_delegated:
            user = self.directory.users.get(principal.user_id or "")
            if user is None:
                raise forbidden("The signed-in user is not a user of this tenant.")
        elif not principal.roles:
            raise forbidden("The token carries neither delegated scopes nor application roles.")
        return Caller(principal, user)

    def _verified(self, token: str) -> dict[str, Any]:
        cached = self._cache.get(token)
        if cached is not None and float(cached.get("exp", 0)) > time.time():
            return cached
        try:
            claims = self.authority.verify(token, audience=GRAPH_AUDIENCES)
        except InvalidTokenError as exc:
            raise unauthenticated(_graph_message(str(exc))) from exc
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = claims
        return claims


def _graph_message(reason: str) -> str:
    """Graph's wording for why a bearer was refused."""
    lowered = reason.lower()
    if "expired" in lowered:
        return "Lifetime validation failed, the token is expired."
    if "audience" in lowered:
        return "Access token validation failure. Invalid audience."
    if "signed" in lowered or "signature" in lowered:
        return "Access token validation failure. Invalid signature."
    return "Access token validation failure."
