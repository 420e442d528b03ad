"""Reminders in a turn: the `remind` commands, the settings card, saving it, turning off and snooze."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import time, timedelta

from bot.kernel.router import Context, Router
from bot.kernel.turn import CardReply, Reply, TextReply
from bot.reminders.schedule import default_schedule, inside, local_instant, schedule_from_action, slots
from bot.school.service import EducationService
from cards.blocks import ActionDataError, Banner, time_zone
from cards.reminders import (
    WEEKDAYS,
    ReminderSettingsView,
    RemindOffAction,
    SaveRemindersAction,
    SnoozeAction,
    reminder_settings_card,
    submitted_values,
)
from storage.records import ReminderSchedule
from storage.store import Store

ONLY_IN_PERSONAL = "Reminders are personal: use `remind` in our 1:1 chat."


@dataclass
class ReminderHandlers:
    """Handlers for `remind …` and the reminder verbs; schedules live in the store, one per teacher."""

    store: Store
    education: EducationService

    def register(self, router: Router) -> None:
        router.command("remind", self.remind)
        router.action(SaveRemindersAction, self.save, invalid=self.refused)
        router.action(RemindOffAction, self.turn_off)
        router.action(SnoozeAction, self.snooze)

    async def _schedule(self, context: Context) -> ReminderSchedule:
        """The teacher's saved schedule, or (off) the default one in the client's time zone."""
        teacher = context.teacher
        saved = await self.store.get_schedule(teacher.aad_object_id)
        return saved or replace(
            default_schedule(teacher.aad_object_id, teacher.tenant_id, context.tz.key, context.now), enabled=False
        )

    async def _card(
        self, context: Context, schedule: ReminderSchedule, status: Banner | None = None, errors: Mapping[str, str] = {}
    ) -> Reply:
        """The settings card for `schedule`; after a refused Save, the form as typed with the `errors` beside it."""
        values = {
            "enabled": "true" if schedule.enabled else "false",
            "days": ",".join(WEEKDAYS[d] for d in sorted(schedule.days)),
            "time": schedule.local_time,
            "timezone": schedule.timezone,
            "quietStart": schedule.quiet_start or "",
            "quietEnd": schedule.quiet_end or "",
            "classIds": ",".join(sorted(schedule.class_ids)),
            "minWaiting": str(schedule.min_waiting),
            "minAgeDays": str(schedule.min_age_days),
        } | (submitted_values(context.turn.data) if errors else {})
        classes = await self.education.taught_classes(context.teacher)
        view = ReminderSettingsView(values, classes, context.tz.key, schedule.enabled, schedule.snoozed_until, errors)
        return CardReply(reminder_settings_card(view, tz=context.tz, now=context.now, status=status))

    async def remind(self, context: Context, args: str) -> Reply:
        if context.conversation.is_shared:
            return TextReply(ONLY_IN_PERSONAL)
        word = args.strip().lower()
        if word == "off":
            return await self.turn_off(context, RemindOffAction())
        schedule = await self._schedule(context)
        if word == "on":
            schedule = replace(schedule, enabled=True, paused_reason=None, paused_at=None, updated_at=context.now)
            await self.store.save_schedule(schedule)
            days = ", ".join(WEEKDAYS[d].capitalize() for d in sorted(schedule.days))
            return await self._card(context, schedule, Banner.good(f"Reminders on: {days} at {schedule.local_time}."))
        return await self._card(context, schedule)

    async def save(self, context: Context, payload: SaveRemindersAction) -> Reply:
        if context.conversation.is_shared:
            return TextReply(ONLY_IN_PERSONAL)
        taught = {c.id for c in await self.education.taught_classes(context.teacher)}
        errors: dict[str, str] = {}
        if not set(payload.class_ids) <= taught:
            errors["classIds"] = "Pick only classes you teach."
        quiet = (payload.quiet_start, payload.quiet_end)
        if quiet[0] is not None and quiet[1] is not None and inside(payload.at, quiet[0], quiet[1]):
            errors["time"] = "The reminder time falls inside your quiet hours. Pick another time."
        if errors:
            return await self._card(context, await self._schedule(context), errors=errors)
        schedule = schedule_from_action(payload, context.teacher.aad_object_id, context.teacher.tenant_id, context.now)
        await self.store.save_schedule(schedule)
        text = "Saved. " + (_next_text(schedule, context) if schedule.enabled else "Reminders are off.")
        return await self._card(context, schedule, Banner.good(text))

    async def refused(self, context: Context, error: ActionDataError) -> Reply:
        """A Save whose inputs did not validate: the form again as typed, each refused input with its message."""
        if context.conversation.is_shared:
            return TextReply(ONLY_IN_PERSONAL)
        return await self._card(context, await self._schedule(context), errors=error.refusals)

    async def turn_off(self, context: Context, _: RemindOffAction) -> Reply:
        existing = await self.store.get_schedule(context.teacher.aad_object_id)
        if existing is not None and existing.enabled:
            await self.store.save_schedule(replace(existing, enabled=False, updated_at=context.now))
        return TextReply("Reminders are off. Type `remind on` to turn them back on.")

    async def snooze(self, context: Context, payload: SnoozeAction) -> Reply:
        existing = await self.store.get_schedule(context.teacher.aad_object_id)
        if existing is None or not existing.enabled:
            return TextReply("Reminders are off, so there is nothing to snooze.")
        # "Snooze N days" skips the next N days: reminders resume at local midnight after them.
        tz = time_zone(existing.timezone) or context.tz
        resume_day = context.now.astimezone(tz).date() + timedelta(days=payload.days + 1)
        until = local_instant(resume_day, time(0, 0), tz)
        await self.store.save_schedule(replace(existing, snoozed_until=until, updated_at=context.now))
        last_day = (resume_day - timedelta(days=1)).strftime("%A %d %B")
        return TextReply(f"Snoozed: no reminders until after {last_day}.")


def _next_text(schedule: ReminderSchedule, context: Context) -> str:
    """When the next digest is due, in the teacher's time zone ("" when no day is picked)."""
    tz = time_zone(schedule.timezone) or context.tz
    slot = next((slot for slot in slots(schedule, tz, context.now, range(8)) if slot.at > context.now), None)
    return f"Next reminder {slot.at.astimezone(tz).strftime('%a %d %b at %H:%M')}." if slot else ""
