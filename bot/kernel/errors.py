"""What can go wrong in a turn, written for the teacher: the UserError tree, the sign-in signals, and the one map
from an exception to what the teacher is told (used by turns, background writes and card updates alike)."""

from __future__ import annotations

from graph.errors import GraphError


class UserError(Exception):
    """Something the teacher can act on; the message is written for them."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotATeacherError(UserError):
    def __init__(self) -> None:
        super().__init__("Only teachers of this class can see or grade its work.")


class NotFoundError(UserError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} no longer exists in this class. Open the list again.")


class NotAClassTeamError(UserError):
    def __init__(self) -> None:
        super().__init__(
            "This team isn't a class team, so there are no assignments here. "
            "Chat with me 1:1 to see the classes you teach."
        )


class StartupRefusedError(Exception):
    """Gradebot will not start as configured; the message says what to change."""


class SignInRequiredError(Exception):
    """No usable Graph token for this teacher: they must sign in (again)."""


class SsoTokenError(Exception):
    """A Teams SSO token failed validation or could not be exchanged on behalf of the user."""


def graph_error_text(error: GraphError) -> str:
    """A teacher-facing sentence for a Graph failure (no codes they cannot use)."""
    if error.status is None or error.status == 429 or error.status >= 500:
        return "Microsoft Graph is busy right now. Nothing was lost; please try again in a minute."
    if error.status in (401, 403):
        return "Microsoft Graph did not allow this with your account."
    if error.status == 404:
        return "That item no longer exists in Teams Assignments. Open the list again."
    return "Microsoft Graph refused the request. Please check what you entered and try again."
