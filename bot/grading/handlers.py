"""Grading in a turn: the `grade` and `undo` commands and every grading card's verbs, each turned into a use-case
call and the card that shows its outcome (one place knows which card shows which outcome)."""

from __future__ import annotations

from contextlib import suppress
from datetime import datetime
from functools import partial
from zoneinfo import ZoneInfo

from cachetools import TTLCache

from bot.grading.grading import Confirm, Conflict, Grading, Outcome, UndoConflict, grade_values
from bot.grading.rules import InvalidGradeError
from bot.grading.session import AllGraded, GradingSession, GradingView, Screen
from bot.grading.writes import GradeChange
from bot.kernel.router import Context, Router
from bot.kernel.turn import Card, CardReply, NewCardReply, Reply, TextReply, Updates
from bot.school.progress import lateness
from cards.blocks import ActionDataError, Banner, new_nonce
from cards.general import error_card
from cards.grading import (
    ExcuseAction,
    GradeAction,
    GradeValues,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    ShowGradingAction,
    SkipAction,
    Step,
    UndoAction,
    all_graded_card,
    confirm_card,
    conflict_card,
    grading_card,
    parse_feedback,
    superseded_card,
    undo_conflict_card,
)
from cards.lists import OpenGradingAction, ungraded_page_card
from graph.client import SubmissionRef

REMEMBERED_S = 86_400.0
CARDS = 4096
Key = tuple[str, str]
"""(teacher id, submission id)."""


class ShownCards:
    """Which grading card in a teacher's 1:1 chat shows which submission, so a newer card for the same submission can
    mark the older one out of date. Kept in memory for a day: a restart (or another instance) forgets it."""

    def __init__(self) -> None:
        self._by_submission: TTLCache[Key, str] = TTLCache(CARDS, REMEMBERED_S)
        self._by_card: TTLCache[str, Key] = TTLCache(CARDS, REMEMBERED_S)

    def current(self, teacher_id: str, submission_id: str | None) -> str | None:
        """The card (activity id) showing this submission to this teacher now, if known."""
        return self._by_submission.get((teacher_id, submission_id)) if submission_id else None

    def show(self, teacher_id: str, submission_id: str | None, activity_id: str | None) -> str | None:
        """Note that card `activity_id` now shows `submission_id` (None: no submission); returns the other card that
        showed it until now, which is out of date."""
        if activity_id is None:
            return None
        before = self._by_card.pop(activity_id, None)
        if before is not None and self._by_submission.get(before) == activity_id:
            del self._by_submission[before]
        if submission_id is None:
            return None
        key = (teacher_id, submission_id)
        older = self._by_submission.get(key)
        self._by_submission[key] = activity_id
        self._by_card[activity_id] = key
        return older if older != activity_id else None


class GradingHandlers:
    def __init__(self, session: GradingSession, grading: Grading) -> None:
        self._session = session
        self._grading = grading
        self._shown = ShownCards()

    def register(self, router: Router) -> None:
        router.command("grade", self.grade_command)
        router.command("undo", self.undo_command)
        router.action(OpenGradingAction, self.open)
        router.action(ShowGradingAction, self.open)
        router.action(GradeAction, self.save, invalid=self.invalid_grade)
        router.action(SkipAction, self.skip)
        router.action(ReturnAction, self.step)
        router.action(ReassignAction, self.step)
        router.action(ExcuseAction, self.step)
        router.action(ReturnAllAction, self.return_all)
        router.action(ResolveConflictAction, self.resolve_conflict)
        router.action(UndoAction, self.undo)

    async def grade_command(self, context: Context, args: str) -> Reply:
        if context.conversation.is_shared:
            command = f"grade {args[:80]}".strip()  # the assignment named here, so it need not be retyped
            return TextReply(
                f"Grading happens in our 1:1 chat, where only you can see it. Message me `{command}` there."
            )
        items = await self._session.education.ungraded(context.teacher, None)
        wanted = args.casefold().strip()
        if not wanted:
            if not items:
                return CardReply(ungraded_page_card([], 0, "all your classes", context.tz, context.now))
            return await self._open(context, items[0].education_class.id, items[0].assignment.id, below=True)
        assignments: dict[tuple[str, str], str] = {}
        for item in items:
            if wanted in item.assignment.display_name.casefold():
                assignments[(item.education_class.id, item.assignment.id)] = item.assignment.display_name
        if not assignments:
            return TextReply(f"No assignment with work waiting matches “{args[:80]}”. Try `ungraded` to see all.")
        exact = [key for key, name in assignments.items() if name.casefold() == wanted]
        chosen = exact[0] if len(exact) == 1 else next(iter(assignments)) if len(assignments) == 1 else None
        if chosen is None:
            names = ", ".join(sorted(set(assignments.values()))[:10])
            return TextReply(f"Several assignments match: {names}. Type more of the name.")
        return await self._open(context, *chosen, below=True)

    async def undo_command(self, context: Context, _: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply("Use `undo` in our 1:1 chat.")
        return await self.undo(context, UndoAction(""))

    async def open(self, context: Context, payload: OpenGradingAction) -> Reply:
        """Grade from a list (or a digest): the grading card opens below, the list stays as it was; or, with
        `showGrading` (Cancel on a confirm step), back to grading in place of this card."""
        below = not isinstance(payload, ShowGradingAction)
        return await self._open(context, payload.class_id, payload.assignment_id, payload.submission_id, below=below)

    async def save(self, context: Context, payload: GradeAction) -> Reply:
        ref = SubmissionRef(payload.class_id, payload.assignment_id, payload.submission_id)
        change = GradeChange(payload.points, payload.feedback, payload.levels, payload.known_modified, payload.force)
        try:
            result = await self._grading.grade(context.teacher, ref, change, nonce=payload.nonce, card=context.card_ref)
        except InvalidGradeError as exc:
            return await self._open(context, *ref, status=Banner.error(exc.message), entered=payload)
        if isinstance(result, Conflict):
            conflict = conflict_card(*result.view.subject, payload, tz=context.tz, now=context.now, nonce=new_nonce())
            return self._show(context, result.view, conflict)
        return self._show(context, result.screen, outcome_card(result, context.tz, context.now))

    async def invalid_grade(self, context: Context, error: ActionDataError) -> Reply:
        """Bad input on a grading card: show the grading card again with the message, if its ids are sound."""
        opened = None
        with suppress(ActionDataError):
            opened = OpenGradingAction.parse(context.turn.data)
        if opened is None or opened.submission_id is None:
            return CardReply(error_card(error.message))
        # Keep what the teacher typed in the other fields: the card replaces the one they typed it into.
        feedback = None
        with suppress(ActionDataError):
            feedback = parse_feedback(context.turn.data.get("feedback"))
        ids = (opened.class_id, opened.assignment_id, opened.submission_id)
        entered = GradeAction(*ids, None, feedback, (), None, False, "")
        return await self._open(context, *ids, status=Banner.error(error.message), entered=entered)

    async def skip(self, context: Context, payload: SkipAction) -> Reply:
        return await self._open(context, payload.class_id, payload.assignment_id, after=payload.submission_id)

    async def step(self, context: Context, payload: Step) -> Reply:
        return self._outcome_or_confirm(context, await self._grading.act(context.teacher, payload, context.card_ref))

    async def return_all(self, context: Context, payload: ReturnAllAction) -> Reply:
        result = await self._grading.return_all(context.teacher, payload, context.card_ref)
        return self._outcome_or_confirm(context, result)

    async def resolve_conflict(self, context: Context, payload: ResolveConflictAction) -> Reply:
        ids = (payload.class_id, payload.assignment_id, payload.submission_id)
        if payload.choice == "theirs":
            return await self._open(context, *ids, status=Banner.good("Kept the saved grade."))
        # Over exactly the grade the conflict card showed; a card from before `knownModified` was carried replaces
        # whatever is there, as it always did.
        shown = payload.known_modified
        mine = GradeAction(*ids, payload.points, payload.feedback, payload.levels, shown, shown is None, payload.nonce)
        return await self.save(context, mine)

    async def undo(self, context: Context, press: UndoAction) -> Reply:
        """Undo the save `press` names (a button), or the teacher's newest save (the command: no write id)."""
        if press.write_id is None and context.turn.is_action:  # a press must name the save it undoes; this one doesn't
            return CardReply(
                error_card("This Undo button doesn't say which grade it undoes. Type `undo` to undo your last save.")
            )
        outcome = await self._grading.undo(context.teacher, context.card_ref, press)
        if outcome is None:
            return TextReply("There is no saved grade of yours to undo.")
        if isinstance(outcome, UndoConflict):
            return self._show(context, outcome.view, undo_conflict_view_card(outcome, context.tz, context.now))
        stale: Updates = ()
        if outcome.stale_card is not None and outcome.stale_card != context.turn.reply_to_id:
            view = outcome.screen
            name = view.student_name if isinstance(view, GradingView) else "the student"
            resume = ShowGradingAction(view.education_class.id, view.assignment.id)
            note = f"You undid the save this card reported for {name}; the card below shows the grade now."
            stale = ((outcome.stale_card, superseded_card(note, resume)),)
            self._shown.show(context.teacher.aad_object_id, None, outcome.stale_card)
        below = not context.turn.is_action  # the `undo` command: a new message
        return self._show(context, outcome.screen, outcome_card(outcome, context.tz, context.now), below, stale)

    async def _open(
        self,
        context: Context,
        class_id: str,
        assignment_id: str,
        submission_id: str | None = None,
        *,
        after: str | None = None,
        below: bool = False,
        status: Banner | None = None,
        entered: GradeAction | None = None,
    ) -> Reply:
        """The grading screen `GradingSession.open` finds, as a card (`below` the pressed one, or in its place)."""
        screen = await self._session.open(context.teacher, class_id, assignment_id, submission_id, after=after)
        return self._show(
            context, screen, screen_card(screen, context.tz, context.now, status=status, entered=entered), below
        )

    def _outcome_or_confirm(self, context: Context, result: Outcome | Confirm) -> Reply:
        if isinstance(result, Confirm):
            return self._show(context, result.screen, confirm_view_card(result))
        return self._show(context, result.screen, outcome_card(result, context.tz, context.now))

    def _show(
        self, context: Context, screen: Screen, card: Card, below: bool = False, also: Updates = ()
    ) -> CardReply | NewCardReply:
        """`card` in place of the pressed one (or `below` it, as a new message); in the 1:1 chat an older card that
        showed the same submission is rewritten to say it is out of date, so its buttons can't act on old data."""
        if context.conversation.is_shared:
            return NewCardReply(card, updates=also) if below else CardReply(card, updates=also)
        teacher = context.teacher.aad_object_id
        shown = screen.submission.id if isinstance(screen, GradingView) else None
        if below:
            older = self._shown.current(teacher, shown)
            posted = partial(self._shown.show, teacher, shown)
            return NewCardReply(card, updates=(*also, *_superseded(older, screen)), posted=posted)
        older = self._shown.show(teacher, shown, context.turn.reply_to_id)
        return CardReply(card, updates=(*also, *_superseded(older, screen)))


def _superseded(older: str | None, screen: Screen) -> Updates:
    if older is None or not isinstance(screen, GradingView):
        return ()
    note = f"A newer card for {screen.student_name} is below: use that one."
    return ((older, superseded_card(note)),)


def screen_card(
    screen: Screen,
    tz: ZoneInfo,
    now: datetime,
    *,
    status: Banner | None = None,
    entered: GradeAction | GradeValues | None = None,
    undo: UndoAction | None = None,
) -> Card:
    """The grading card for a submission, or "all graded" for the assignment."""
    if isinstance(screen, AllGraded):
        return all_graded_card(
            screen.assignment, screen.education_class, screen.returnable, nonce=new_nonce(), status=status, undo=undo
        )
    if status is None and screen.pending:
        status = Banner.warning(
            "A change to this grade is still being saved to Microsoft Graph; Gradebot keeps retrying it."
        )
    return grading_card(
        *screen.subject,
        tz=tz,
        now=now,
        nonce=new_nonce(),
        progress=(screen.graded, screen.waiting) if screen.position else None,
        late_by=lateness(screen.submission, screen.assignment),
        rubric=screen.rubric,
        graded_not_returned=screen.returnable,
        status=status,
        entered=entered,
        undo=undo,
    )


def outcome_card(outcome: Outcome, tz: ZoneInfo, now: datetime) -> Card:
    """The next screen with a banner about what happened, and Undo for a save that just landed."""
    status = Banner(outcome.message, outcome.tone) if outcome.message else None
    undo = UndoAction(new_nonce(), outcome.undo) if outcome.undo is not None else None
    return screen_card(outcome.screen, tz, now, status=status, undo=undo, entered=outcome.entered)


def undo_conflict_view_card(conflict: UndoConflict, tz: ZoneInfo, now: datetime) -> Card:
    """What the teacher saved, what Graph holds now and who changed it, what undo would put back; their choice."""
    anyway = None
    if conflict.write_id is not None:
        anyway = UndoAction(new_nonce(), conflict.write_id, anyway=True, known_modified=conflict.known_modified)
    return undo_conflict_card(
        *conflict.view.subject,
        yours=grade_values(conflict.mine),
        restores=grade_values(conflict.restores),
        changed_by=conflict.changed_by,
        tz=tz,
        now=now,
        undo_anyway=anyway,
    )


def confirm_view_card(confirm: Confirm) -> Card:
    """The confirm step; its "Yes" button carries a fresh nonce, so the write happens at most once per card."""
    nonce, screen, press = new_nonce(), confirm.screen, confirm.press
    if isinstance(press, ReturnAllAction):
        action = ReturnAllAction(screen.education_class.id, screen.assignment.id, False, len(confirm.released), nonce)
        return confirm_card(action, screen.assignment, released=confirm.released)
    assert isinstance(screen, GradingView)
    ids = (screen.education_class.id, screen.assignment.id, screen.submission.id)
    single = type(press)(*ids, False, nonce)
    unsubmitted = isinstance(press, ReturnAction) and screen.submission.status.value == "working"
    warning = "This student has not turned the work in yet." if unsubmitted else None
    return confirm_card(
        single, screen.assignment, student_name=screen.student_name, submission=screen.submission, warning=warning
    )
