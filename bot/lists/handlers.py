"""Lists: help, the classes a teacher teaches, a class's assignments with progress and the ungraded work — in the
1:1 chat in full, in shared conversations as a neutral card whose refresh brings each teacher their own view.
"""

from __future__ import annotations

from cachetools import TTLCache

from bot.kernel.errors import NotAClassTeamError, NotATeacherError, SignInRequiredError
from bot.kernel.router import Context, Router
from bot.kernel.turn import CardReply, NewCardReply, Reply, TextReply
from bot.school.progress import summarize
from bot.school.service import CACHE_SIZE, OPEN_STATUSES, UNGRADED_CACHE_S, EducationService
from cards.blocks import Card
from cards.general import help_card, refusal_card
from cards.lists import (
    AssignmentProgress,
    ListView,
    OpenAssignmentsAction,
    OpenUngradedAction,
    PickClassAction,
    RefreshViewAction,
    ShowAssignmentsAction,
    ShowUngradedAction,
    ShowWaitingAction,
    UngradedItem,
    assignments_card,
    class_picker_card,
    classes_card,
    neutral_channel_card,
    ungraded_page_card,
    waiting_page_card,
)
from graph.models import EducationClass
from storage.store import Store


class ListHandlers:
    def __init__(self, education: EducationService, store: Store, bot_app_id: str) -> None:
        self._education = education
        self._store = store
        self._bot_app_id = bot_app_id
        """The bot's app id: the 1:1 chat's deep link on neutral channel cards."""
        self._pages: TTLCache[tuple[str, str | None, int, str], tuple[list[UngradedItem], Card]]
        self._pages = TTLCache(CACHE_SIZE, UNGRADED_CACHE_S)
        """Ungraded pages drawn from the list the school service still holds (that very list, the same teacher)."""

    def register(self, router: Router) -> None:
        router.command("help", self.help)
        router.command("classes", self.classes)
        router.command("assignments", self.assignments)
        router.command("ungraded", self.ungraded)
        router.action(PickClassAction, self.pick_class)
        router.action(ShowAssignmentsAction, self.show_assignments)
        router.action(ShowWaitingAction, self.show_waiting)
        router.action(ShowUngradedAction, self.show_ungraded)
        router.action(OpenUngradedAction, self.show_ungraded)
        router.action(OpenAssignmentsAction, self.show_assignments)
        router.action(RefreshViewAction, self.refresh)

    async def help(self, context: Context, _: str) -> Reply:
        """`help`, and anything the router does not recognise: then "I didn't understand" comes first, repeating the
        text only in the 1:1 chat (in a shared conversation it might name a student)."""
        class_id = context.conversation.class_id if context.conversation.team_id else None
        text = context.turn.text.strip()
        not_understood = None
        if text and text.partition(" ")[0].lower() != "help":
            shown = "that message" if context.conversation.is_shared else f"'{text}'"
            not_understood = f"I didn't understand {shown}. Here is what I can do."
        return CardReply(help_card(class_id=class_id, not_understood=not_understood))

    async def classes(self, context: Context, _: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply("Ask me for `classes` in our 1:1 chat; I don't list classes where students can see.")
        return CardReply(classes_card(await self._education.taught_classes(context.teacher)))

    async def assignments(self, context: Context, args: str) -> Reply:
        if context.conversation.is_shared:
            return await self._neutral(context, "assignments")
        class_id = _team_class(context)
        if args or class_id is None:
            classes = await self._education.taught_classes(context.teacher)
            remembered = None if args else await self._store.get_class_choice(context.conversation.id)
            chosen = _match_class(classes, args) if args else next((c for c in classes if c.id == remembered), None)
            if chosen is None:
                return CardReply(class_picker_card(classes, "assignments"))
            class_id = chosen.id
            await self._store.set_class_choice(context.conversation.id, class_id, context.now)
        return await self._assignments_view(context, class_id)

    async def ungraded(self, context: Context, args: str) -> Reply:
        """`ungraded`: every taught class; `ungraded <class>` one class (what a channel card's 1:1 link sends)."""
        if context.conversation.is_shared:
            return await self._neutral(context, "ungraded")
        if not args:
            return await self._ungraded_view(context, None, 0)
        classes = await self._education.taught_classes(context.teacher)
        chosen = _match_class(classes, args)
        if chosen is None:
            return CardReply(class_picker_card(classes, "ungraded"))
        return await self._ungraded_view(context, chosen.id, 0)

    async def pick_class(self, context: Context, payload: PickClassAction) -> Reply:
        await self._education.require_teacher(context.teacher, payload.class_id)
        await self._store.set_class_choice(context.conversation.id, payload.class_id, context.now)
        if payload.next_view == "ungraded":
            return await self._ungraded_view(context, payload.class_id, 0)
        return await self._assignments_view(context, payload.class_id)

    async def show_assignments(self, context: Context, payload: ShowAssignmentsAction) -> Reply:
        """In place of the card; from the classes card (Open…), below it."""
        reply = await self._assignments_view(context, payload.class_id)
        return NewCardReply(reply.card) if isinstance(payload, OpenAssignmentsAction) else reply

    async def show_waiting(self, context: Context, payload: ShowWaitingAction) -> Reply:
        items = await self._education.ungraded(context.teacher, [payload.class_id])
        waiting = [item for item in items if item.assignment.id == payload.assignment_id]
        return CardReply(waiting_page_card(waiting, payload.page, context.tz, context.now))

    async def show_ungraded(self, context: Context, payload: ShowUngradedAction) -> Reply:
        """In place of the card; from a card that stays (Open…: help, classes, assignments, a digest), below it."""
        reply = await self._ungraded_view(context, payload.class_id, payload.page)
        return NewCardReply(reply.card) if isinstance(payload, OpenUngradedAction) else reply

    async def refresh(self, context: Context, payload: RefreshViewAction) -> Reply:
        """A neutral card's refresh: the teacher's own view for teachers, the same neutral card for anyone else."""
        class_id = payload.class_id
        try:
            await self._education.require_teacher(context.teacher, class_id)
        except (NotATeacherError, SignInRequiredError):
            return CardReply(neutral_channel_card(payload, None, [], bot_app_id=self._bot_app_id))
        if payload.view == "ungraded":
            return await self._ungraded_view(context, class_id, payload.page)
        return await self._assignments_view(context, class_id)

    async def _assignments_view(self, context: Context, class_id: str) -> CardReply:
        education_class = await self._education.require_teacher(context.teacher, class_id)
        work = await self._education.class_work(context.teacher, education_class)
        progress = [summarize(a, work.submissions.get(a.id, [])) for a in work.assignments]
        progress.sort(key=_assignment_order)
        return CardReply(assignments_card(education_class, progress, context.tz, context.now))

    async def _ungraded_view(self, context: Context, class_id: str | None, page: int) -> CardReply:
        items = await self._education.ungraded(context.teacher, [class_id] if class_id else None)
        if class_id and items:
            scope = items[0].education_class.display_name
        elif class_id:
            scope = (await self._education.require_teacher(context.teacher, class_id)).display_name
        elif not items and not await self._education.taught_classes(context.teacher):
            return CardReply(refusal_card("You don't teach any classes in Teams, so there is nothing to grade."))
        else:
            scope = "all your classes"
        key = (context.teacher.aad_object_id, class_id, page, str(context.tz))
        drawn = self._pages.get(key)
        if drawn is None or drawn[0] is not items:
            drawn = (items, ungraded_page_card(items, page, scope, context.tz, context.now, class_id=class_id))
            self._pages[key] = drawn
        return CardReply(drawn[1])

    async def _neutral(self, context: Context, view: ListView) -> Reply:
        """What a shared conversation gets: no student data, a refresh that brings teachers their own view."""
        class_id = _team_class(context)
        if class_id is None:
            return TextReply(f"Use `{view}` in a class team's channel, or in our 1:1 chat.")
        education_class, teacher_ids = await self._education.class_and_teachers(context.teacher, class_id)
        teams_ids = [m.teams_id for m in await context.io.members() if m.aad_object_id in teacher_ids]
        refresh = RefreshViewAction(view, class_id, 0)
        card = neutral_channel_card(refresh, education_class.display_name, teams_ids, bot_app_id=self._bot_app_id)
        return CardReply(card)


def _team_class(context: Context) -> str | None:
    """The class of the class team the conversation is in (None outside a team; NotAClassTeamError in another team)."""
    conversation = context.conversation
    if conversation.team_id and not conversation.class_id:
        raise NotAClassTeamError()
    return conversation.class_id if conversation.team_id else None


def _match_class(classes: list[EducationClass], text: str) -> EducationClass | None:
    wanted = text.casefold().strip()
    exact = [c for c in classes if c.display_name.casefold() == wanted or (c.class_code or "").casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = [c for c in classes if wanted in c.display_name.casefold()]
    return partial[0] if len(partial) == 1 else None


def _assignment_order(progress: AssignmentProgress) -> tuple[int, float, str]:
    """Open work first (soonest due first), then drafts and scheduled, each by name."""
    assignment = progress.assignment
    rank = 0 if assignment.status in OPEN_STATUSES else 1
    due = assignment.due.timestamp() if assignment.due else float("inf")
    return (rank, due, assignment.display_name.casefold())
