"""Command words and card verbs → handler functions; parses payloads, calls the use-cases, picks the card.

Every refusal and bad input becomes a card or text for the teacher here; nothing below needs to know about Teams.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.auth import SignInRequiredError, SsoTokenError, TeacherIdentity
from bot.grading import CardRef, Confirm, Conflict, GradingService, Outcome, UndoConflict
from bot.service import (
    EducationService,
    NotAClassTeamError,
    NotATeacherError,
    Teacher,
    UserError,
    describe_graph_error,
)
from bot.turns import (
    Caller,
    CardReply,
    ConversationInfo,
    Member,
    PreconditionFailedReply,
    Reply,
    SignInReply,
    TeamsIO,
    TextReply,
    Turn,
)
from bot.views import confirm_view_card, conflict_view_card, outcome_card, screen_card, undo_conflict_view_card
from cards import (
    Banner,
    assignments_card,
    class_picker_card,
    classes_card,
    error_card,
    help_card,
    neutral_channel_card,
    parse_action,
    refusal_card,
    signed_out_card,
    ungraded_page_card,
)
from cards.blocks import ActionDataError, ActionPayload, time_zone
from cards.general import SignInAction
from cards.grading import (
    ExcuseAction,
    GradeAction,
    ReassignAction,
    ResolveConflictAction,
    ReturnAction,
    ReturnAllAction,
    SkipAction,
    UndoAction,
    parse_feedback,
)
from cards.lists import OpenGradingAction, PickClassAction, RefreshViewAction, ShowAssignmentsAction, ShowUngradedAction
from graph.errors import GraphError
from graph.models import EducationClass
from storage.records import ConversationRecord, UserProfile
from storage.store import Store

log = logging.getLogger(__name__)

TOKEN_EXCHANGE_DEDUP = timedelta(minutes=10)
WELCOME_ONCE = timedelta(days=3650)


@dataclass(frozen=True, slots=True)
class Context:
    """One turn as the handlers see it: who asks, where, in which time zone, with which Graph token."""

    turn: Turn
    io: TeamsIO
    teacher: Teacher
    tz: ZoneInfo
    now: datetime

    @property
    def conversation(self) -> ConversationInfo:
        return self.turn.conversation

    @property
    def card_ref(self) -> CardRef:
        return CardRef(self.conversation.id, self.turn.reply_to_id, self.conversation.is_shared)


Handler = Callable[[Context, str], Awaitable[Reply]]
ActionHandler = Callable[[Context, ActionPayload], Awaitable[Reply]]


class Router:
    """Gradebot's command and action tables; implements bot.teams.TurnHandler."""

    def __init__(
        self,
        *,
        education: EducationService,
        grading: GradingService,
        identity: TeacherIdentity,
        store: Store,
        clock: Callable[[], datetime],
        extra_commands: Mapping[str, Handler] | None = None,
        extra_actions: Mapping[str, ActionHandler] | None = None,
    ) -> None:
        self._education = education
        self._grading = grading
        self._identity = identity
        self._store = store
        self._clock = clock
        self._exchanges: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self.commands: dict[str, Handler] = {
            "help": self._help,
            "classes": self._classes,
            "assignments": self._assignments,
            "ungraded": self._ungraded,
            "grade": self._grade_command,
            "undo": self._undo_command,
            "signout": self._sign_out,
            **(extra_commands or {}),
        }
        self.actions: dict[str, ActionHandler] = {
            PickClassAction.VERB: self._pick_class,
            ShowAssignmentsAction.VERB: self._show_assignments,
            ShowUngradedAction.VERB: self._show_ungraded,
            RefreshViewAction.VERB: self._refresh,
            OpenGradingAction.VERB: self._open_grading,
            GradeAction.VERB: self._grade,
            SkipAction.VERB: self._skip,
            ReturnAction.VERB: self._submission_step,
            ReassignAction.VERB: self._submission_step,
            ExcuseAction.VERB: self._submission_step,
            ReturnAllAction.VERB: self._return_all,
            ResolveConflictAction.VERB: self._resolve_conflict,
            UndoAction.VERB: self._undo_action,
            SignInAction.VERB: self._sign_in,
            **(extra_actions or {}),
        }

    # bot.teams.TurnHandler -------------------------------------------------------------------------------------

    async def handle(self, turn: Turn, io: TeamsIO) -> Reply:
        caller = turn.caller
        if turn.sign_in_state and not await self.verify_sign_in(caller, turn.sign_in_state):
            return TextReply("That sign-in code didn't match. Please sign in again.")
        context = Context(
            turn=turn,
            io=io,
            teacher=Teacher(
                tenant_id=caller.tenant_id,
                aad_object_id=caller.aad_object_id,
                teams_id=caller.teams_id,
                name=caller.name,
                token=self._identity.provider(caller.tenant_id, caller.aad_object_id, turn.sso_token),
            ),
            tz=await self._timezone(caller),
            now=self._clock(),
        )
        try:
            if turn.is_action:
                return await self._dispatch_action(context)
            word, _, rest = turn.text.strip().partition(" ")
            handler = self.commands.get(word.lower(), self._help)
            return await handler(context, rest.strip())
        except SignInRequiredError:
            return SignInReply(self._identity.sign_in_url(caller.tenant_id, caller.aad_object_id))
        except SsoTokenError as exc:
            log.info("SSO token refused for user %s: %s", caller.aad_object_id, exc)
            if turn.sso_token:
                return PreconditionFailedReply()
            return SignInReply(self._identity.sign_in_url(caller.tenant_id, caller.aad_object_id), offer_sso=False)
        except (NotATeacherError, NotAClassTeamError) as exc:
            return CardReply(refusal_card(exc.message))
        except (UserError, ActionDataError) as exc:
            return CardReply(error_card(exc.message))
        except GraphError as exc:
            log.warning("Graph failed for user %s: %s", caller.aad_object_id, exc)
            return CardReply(error_card(describe_graph_error(exc)))

    async def conversation_seen(self, caller: Caller | None, conversation: ConversationInfo) -> None:
        now = self._clock()
        reference = dict(conversation.reference)
        bot = reference.get("bot")
        bot_id = str(bot.get("id") or "") if isinstance(bot, dict) else ""
        await self._store.save_conversation(
            ConversationRecord(
                conversation_id=conversation.id,
                kind=conversation.kind,
                tenant_id=caller.tenant_id if caller else "",
                service_url=conversation.service_url,
                bot_id=bot_id,
                user_aad_id=caller.aad_object_id if caller and conversation.kind == "personal" else None,
                team_id=conversation.team_id,
                class_id=conversation.class_id,
                reference=reference,
                updated_at=now,
            )
        )
        if caller is None:
            return
        known = await self._store.get_user_profile(caller.aad_object_id)
        timezone = caller.timezone if caller.timezone and _zone(caller.timezone) is not None else None
        timezone = timezone or (known.timezone if known else None)
        if known is None or (known.timezone, known.teams_id, known.service_url) != (
            timezone,
            caller.teams_id,
            conversation.service_url,
        ):
            await self._store.save_user_profile(
                UserProfile(
                    caller.aad_object_id,
                    caller.tenant_id,
                    known.upn if known else None,
                    timezone,
                    now,
                    teams_id=caller.teams_id,
                    service_url=conversation.service_url,
                )
            )

    async def exchange_sso(self, caller: Caller, exchange_id: str, token: str) -> bool:
        """Teams sends the same signin/tokenExchange from every open client. A success is remembered and the
        repeats are answered 200 without exchanging again; until one succeeds, each repeat is exchanged itself,
        so no repeat is answered 200 for an exchange that failed."""
        done = f"{caller.aad_object_id}:{exchange_id}"
        lock = self._exchanges.get(done)
        if lock is None:
            lock = self._exchanges[done] = asyncio.Lock()
        async with lock:  # repeats arriving together in this instance wait for the first one's outcome
            if exchange_id and await self._store.claimed("tokenExchange", done, self._clock()):
                return True
            try:
                await self._identity.exchange(caller.tenant_id, caller.aad_object_id, token)
            except SsoTokenError as exc:
                log.info("token exchange failed for user %s: %s", caller.aad_object_id, exc)
                return False
            if exchange_id:
                await self._store.claim_once("tokenExchange", done, self._clock(), TOKEN_EXCHANGE_DEDUP)
            return True

    async def verify_sign_in(self, caller: Caller, state: str) -> bool:
        return await self._identity.verify_sign_in(caller.tenant_id, caller.aad_object_id, state)

    def sign_in_resource(self) -> tuple[str, str]:
        return self._identity.sso_resource

    async def first_welcome(self, conversation: ConversationInfo) -> bool:
        return await self._store.claim_once("welcome", conversation.id, self._clock(), WELCOME_ONCE)

    # Helpers -----------------------------------------------------------------------------------------------------

    async def _timezone(self, caller: Caller) -> ZoneInfo:
        if caller.timezone and (zone := _zone(caller.timezone)) is not None:
            return zone
        profile = await self._store.get_user_profile(caller.aad_object_id)
        if profile is not None and profile.timezone and (zone := _zone(profile.timezone)) is not None:
            return zone
        return ZoneInfo("UTC")

    async def _dispatch_action(self, context: Context) -> Reply:
        verb = context.turn.verb or ""
        try:
            payload = parse_action(verb, context.turn.data)
        except ActionDataError as exc:
            log.info("refused card data: verb=%s field=%s", verb if verb in self.actions else "?", exc.field)
            return await self._bad_action(context, exc)
        handler = self.actions.get(payload.VERB)
        if handler is None:
            return CardReply(error_card("That button belongs to an older version of Gradebot."))
        return await handler(context, payload)

    async def _bad_action(self, context: Context, error: ActionDataError) -> Reply:
        """Bad input on a grading card: show the grading card again with the message, if its ids are sound."""
        try:
            opened = OpenGradingAction.parse(context.turn.data)
        except ActionDataError:
            return CardReply(error_card(error.message))
        if opened.submission_id is None:
            return CardReply(error_card(error.message))
        screen = await self._grading.open(context.teacher, opened.class_id, opened.assignment_id, opened.submission_id)
        # Keep what the teacher typed in the other fields: the card replaces the one they typed it into.
        entered = GradeAction(
            opened.class_id,
            opened.assignment_id,
            opened.submission_id,
            points=None,
            feedback=_salvaged_feedback(context.turn.data.get("feedback")),
            levels=(),
            known_modified=None,
            force=False,
            nonce="",
        )
        return CardReply(
            screen_card(screen, context.tz, context.now, status=Banner.error(error.message), entered=entered)
        )

    async def _class_in_context(self, context: Context) -> str | None:
        """The class a shared conversation is about (a class team), or the class chosen earlier in this chat."""
        conversation = context.conversation
        if conversation.team_id:
            if not conversation.class_id:
                raise NotAClassTeamError()
            return conversation.class_id
        return await self._store.get_class_choice(conversation.id)

    async def _teams_ids(self, context: Context, aad_ids: list[str]) -> list[str]:
        """Teams (`29:`) ids of these Entra users among the conversation's members."""
        wanted = set(aad_ids)
        members: list[Member] = await context.io.members()
        return [m.teams_id for m in members if m.aad_object_id in wanted]

    async def _neutral(self, context: Context, view: str, class_id: str) -> Reply:
        """What a shared conversation gets: no student data, a refresh that brings teachers their own view."""
        education_class = await self._education.require_teacher(context.teacher, class_id)
        teacher_ids = await self._education.class_teacher_ids(context.teacher, class_id)
        refresh = RefreshViewAction(view, class_id, 0)  # type: ignore[arg-type]
        return CardReply(
            neutral_channel_card(refresh, education_class.display_name, await self._teams_ids(context, teacher_ids))
        )

    # Commands ----------------------------------------------------------------------------------------------------

    async def _help(self, context: Context, _: str) -> Reply:
        class_id = context.conversation.class_id if context.conversation.team_id else None
        return CardReply(help_card(class_id=class_id))

    async def _classes(self, context: Context, _: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply("Ask me for `classes` in our 1:1 chat; I don't list classes where students can see.")
        return CardReply(classes_card(await self._education.taught_classes(context.teacher)))

    async def _assignments(self, context: Context, args: str) -> Reply:
        class_id = await self._class_in_context(context) if context.conversation.team_id else None
        if context.conversation.is_shared:
            if class_id is None:
                return TextReply("Use `assignments` in a class team's channel, or in our 1:1 chat.")
            return await self._neutral(context, "assignments", class_id)
        if args or class_id is None:
            classes = await self._education.taught_classes(context.teacher)
            chosen = _match_class(classes, args) if args else None
            if chosen is None:
                remembered = await self._store.get_class_choice(context.conversation.id)
                if not args and remembered in {c.id for c in classes}:
                    chosen = next(c for c in classes if c.id == remembered)
            if chosen is None:
                return CardReply(class_picker_card(classes, "assignments"))
            class_id = chosen.id
            await self._store.set_class_choice(context.conversation.id, class_id, context.now)
        return await self._assignments_view(context, class_id)

    async def _assignments_view(self, context: Context, class_id: str) -> Reply:
        result = await self._education.assignments(context.teacher, class_id)
        return CardReply(assignments_card(result.education_class, result.progress, context.tz, context.now))

    async def _ungraded(self, context: Context, _: str) -> Reply:
        if context.conversation.is_shared:
            class_id = await self._class_in_context(context) if context.conversation.team_id else None
            if class_id is None:
                return TextReply("Use `ungraded` in a class team's channel, or in our 1:1 chat.")
            return await self._neutral(context, "ungraded", class_id)
        return await self._ungraded_view(context, None, 0)

    async def _ungraded_view(self, context: Context, class_id: str | None, page: int) -> Reply:
        items = await self._education.ungraded(context.teacher, [class_id] if class_id else None)
        if class_id:
            scope = items[0].education_class.display_name if items else "this class"
            if not items:
                scope = (await self._education.require_teacher(context.teacher, class_id)).display_name
        else:
            scope = "all your classes"
        return CardReply(ungraded_page_card(items, page, scope, context.tz, context.now, class_id=class_id))

    async def _grade_command(self, context: Context, args: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply("Grading happens in our 1:1 chat, where only you can see it. Message me `grade` there.")
        items = await self._education.ungraded(context.teacher, None)
        wanted = args.casefold().strip()
        if not wanted:
            if not items:
                return CardReply(ungraded_page_card([], 0, "all your classes", context.tz, context.now))
            first = items[0]
            screen = await self._grading.open(context.teacher, first.education_class.id, first.assignment.id)
            return CardReply(screen_card(screen, context.tz, context.now))
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
        screen = await self._grading.open(context.teacher, *chosen)
        return CardReply(screen_card(screen, context.tz, context.now))

    async def _undo_command(self, context: Context, _: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply("Use `undo` in our 1:1 chat.")
        return await self._undo(context, UndoAction(""))

    async def _undo(self, context: Context, press: UndoAction) -> Reply:
        """Undo the save `press` names (a button), or the teacher's newest save (the command: no write id)."""
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
            return CardReply(undo_conflict_view_card(outcome, context.tz, context.now))
        return CardReply(outcome_card(outcome, context.tz, context.now))

    async def _sign_out(self, context: Context, _: str) -> Reply:
        await self._identity.sign_out(context.teacher.tenant_id, context.teacher.aad_object_id)
        self._education.forget_lists(context.teacher)
        return CardReply(signed_out_card())

    # Actions -----------------------------------------------------------------------------------------------------

    async def _pick_class(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, PickClassAction)
        await self._education.require_teacher(context.teacher, payload.class_id)
        await self._store.set_class_choice(context.conversation.id, payload.class_id, context.now)
        if payload.next_view in ("ungraded", "grade"):
            # "grade" from the picker lands on the class's waiting work, each item with its Grade button.
            return await self._ungraded_view(context, payload.class_id, 0)
        return await self._assignments_view(context, payload.class_id)

    async def _show_assignments(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, ShowAssignmentsAction)
        return await self._assignments_view(context, payload.class_id)

    async def _show_ungraded(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, ShowUngradedAction)
        return await self._ungraded_view(context, payload.class_id, payload.page)

    async def _refresh(self, context: Context, payload: ActionPayload) -> Reply:
        """A neutral card's refresh: the teacher's own view for teachers, the same neutral card for anyone else."""
        assert isinstance(payload, RefreshViewAction)
        class_id = payload.class_id or context.conversation.class_id
        if class_id is None:
            return CardReply(refusal_card("Open this from a class team or our 1:1 chat."))
        try:
            await self._education.require_teacher(context.teacher, class_id)
        except (NotATeacherError, SignInRequiredError):
            return CardReply(neutral_channel_card(payload, None, []))
        if payload.view == "ungraded":
            return await self._ungraded_view(context, class_id, payload.page)
        return await self._assignments_view(context, class_id)

    async def _open_grading(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, OpenGradingAction)
        screen = await self._grading.open(
            context.teacher, payload.class_id, payload.assignment_id, payload.submission_id
        )
        return CardReply(screen_card(screen, context.tz, context.now))

    async def _grade(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, GradeAction)
        try:
            result = await self._grading.grade(context.teacher, payload, context.card_ref)
        except ActionDataError as exc:
            screen = await self._grading.open(
                context.teacher, payload.class_id, payload.assignment_id, payload.submission_id
            )
            return CardReply(
                screen_card(screen, context.tz, context.now, status=Banner.error(exc.message), entered=payload)
            )
        if isinstance(result, Conflict):
            return CardReply(conflict_view_card(result, payload, context.tz, context.now))
        return CardReply(outcome_card(result, context.tz, context.now))

    async def _skip(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, SkipAction)
        screen = await self._grading.open(
            context.teacher, payload.class_id, payload.assignment_id, after=payload.submission_id
        )
        return CardReply(screen_card(screen, context.tz, context.now))

    async def _submission_step(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, ReturnAction | ReassignAction | ExcuseAction)
        kind = payload.VERB
        result = await self._grading.act(
            context.teacher,
            kind,  # type: ignore[arg-type]
            payload.class_id,
            payload.assignment_id,
            payload.submission_id,
            confirmed=payload.confirmed,
            nonce=payload.nonce,
            card=context.card_ref,
        )
        return self._outcome_or_confirm(context, result)

    async def _return_all(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, ReturnAllAction)
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

    def _outcome_or_confirm(self, context: Context, result: Outcome | Confirm) -> Reply:
        if isinstance(result, Confirm):
            return CardReply(confirm_view_card(result))
        return CardReply(outcome_card(result, context.tz, context.now))

    async def _resolve_conflict(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, ResolveConflictAction)
        if payload.choice == "theirs":
            screen = await self._grading.open(
                context.teacher, payload.class_id, payload.assignment_id, payload.submission_id
            )
            return CardReply(screen_card(screen, context.tz, context.now, status=Banner.good("Kept the saved grade.")))
        mine = GradeAction(
            payload.class_id,
            payload.assignment_id,
            payload.submission_id,
            payload.points,
            payload.feedback,
            payload.levels,
            None,
            True,
            payload.nonce,
        )
        return await self._grade(context, mine)

    async def _undo_action(self, context: Context, payload: ActionPayload) -> Reply:
        assert isinstance(payload, UndoAction)
        if payload.write_id is None:  # a press must name the save it undoes; this one names none
            return CardReply(
                error_card("This Undo button doesn't say which grade it undoes. Type `undo` to undo your last save.")
            )
        return await self._undo(context, payload)

    async def _sign_in(self, context: Context, payload: ActionPayload) -> Reply:
        caller = context.turn.caller
        return SignInReply(self._identity.sign_in_url(caller.tenant_id, caller.aad_object_id))


def _salvaged_feedback(value: object) -> str | None:
    """The feedback typed next to a bad input, if it is itself valid (to show it again rather than lose it)."""
    try:
        return parse_feedback(value)
    except ActionDataError:
        return None


def _zone(name: str) -> ZoneInfo | None:
    """A caller's or profile's time zone name, if it is a valid one (Teams' localTimezone is untrusted input)."""
    return time_zone(name)


def _match_class(classes: list[EducationClass], text: str) -> EducationClass | None:
    wanted = text.casefold().strip()
    exact = [c for c in classes if c.display_name.casefold() == wanted or (c.class_code or "").casefold() == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = [c for c in classes if wanted in c.display_name.casefold()]
    return partial[0] if len(partial) == 1 else None
