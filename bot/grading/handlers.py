"""Grading in a turn: the `grade` and `undo` commands and every grading card's verbs, each turned into a use-case
call and the card that shows its outcome."""

from __future__ import annotations

from bot.grading.grading import Confirm, Conflict, Grading, Outcome, UndoConflict
from bot.grading.rules import InvalidGradeError
from bot.grading.session import GradingSession, GradingView, Screen
from bot.grading.shown import ShownCards
from bot.grading.views import confirm_view_card, conflict_view_card, outcome_card, screen_card, undo_conflict_view_card
from bot.grading.writes import GradeChange
from bot.kernel.router import Context, Router
from bot.kernel.turn import Card, CardReply, NewCardReply, Reply, TextReply, Updates
from cards.blocks import ActionDataError, Banner
from cards.general import error_card
from cards.grading import (
    ExcuseAction,
    GradeAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    ShowGradingAction,
    SkipAction,
    UndoAction,
    parse_feedback,
    superseded_card,
)
from cards.lists import OpenGradingAction, ungraded_page_card
from graph.client import SubmissionRef


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
            return self._show(context, result.view, conflict_view_card(result, payload, context.tz, context.now))
        return self._show(context, result.screen, outcome_card(result, context.tz, context.now))

    async def invalid_grade(self, context: Context, error: ActionDataError) -> Reply:
        """Bad input on a grading card: show the grading card again with the message, if its ids are sound."""
        try:
            opened = OpenGradingAction.parse(context.turn.data)
        except ActionDataError:
            return CardReply(error_card(error.message))
        if opened.submission_id is None:
            return CardReply(error_card(error.message))
        # Keep what the teacher typed in the other fields: the card replaces the one they typed it into.
        try:
            feedback = parse_feedback(context.turn.data.get("feedback"))
        except ActionDataError:
            feedback = None
        ids = (opened.class_id, opened.assignment_id, opened.submission_id)
        entered = GradeAction(*ids, None, feedback, (), None, False, "")
        return await self._open(context, *ids, status=Banner.error(error.message), entered=entered)

    async def skip(self, context: Context, payload: SkipAction) -> Reply:
        return await self._open(context, payload.class_id, payload.assignment_id, after=payload.submission_id)

    async def step(self, context: Context, payload: ReturnAction | ReassignAction | ExcuseAction) -> Reply:
        ref = SubmissionRef(payload.class_id, payload.assignment_id, payload.submission_id)
        result = await self._grading.act(
            context.teacher, payload.VERB, ref, confirmed=payload.confirmed, nonce=payload.nonce, card=context.card_ref
        )
        return self._outcome_or_confirm(context, result)

    async def return_all(self, context: Context, payload: ReturnAllAction) -> Reply:
        result = await self._grading.return_all(
            context.teacher,
            payload.class_id,
            payload.assignment_id,
            confirmed=payload.confirmed,
            expected=payload.expected_count,
            nonce=payload.nonce,
            card=context.card_ref,
        )
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
        outcome = await self._grading.undo(
            context.teacher,
            context.card_ref,
            write_id=press.write_id,
            nonce=press.nonce,
            anyway=press.anyway,
            known_modified=press.known_modified,
        )
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

            def posted(activity_id: str) -> None:
                self._shown.show(teacher, shown, activity_id)

            return NewCardReply(card, updates=(*also, *_superseded(older, screen)), posted=posted)
        older = self._shown.show(teacher, shown, context.turn.reply_to_id)
        return CardReply(card, updates=(*also, *_superseded(older, screen)))


def _superseded(older: str | None, screen: Screen) -> Updates:
    if older is None or not isinstance(screen, GradingView):
        return ()
    note = f"A newer card for {screen.student_name} is below: use that one."
    return ((older, superseded_card(note)),)
