"""Work waiting for a grade, oldest first, in pages whose serialized size is measured to stay under the budget."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from microsoft_teams.cards import CardElement, Container

from bot.school.progress import UngradedItem
from cards.actions import OpenGradingAction, ShowUngradedAction
from cards.dates import late_text, turned_in_text
from cards.render import MAX_CARD_BYTES, Card, buttons, card, execute, heading, largest_fitting, line, open_url, plain

PER_PAGE = 20
"""Most submissions on one page, even when more would fit: a list a teacher can take in."""


def _item_block(item: UngradedItem, tz: ZoneInfo, now: datetime, *, show_class: bool) -> Container:
    student = plain(item.student_name) or "A student"
    assignment = plain(item.assignment.display_name) or "Untitled assignment"
    where = [assignment]
    if show_class:
        where.append(plain(item.education_class.display_name, 80))
    items: list[CardElement] = [
        line(student, bold=True),
        line(" · ".join(where), subtle=True),
        line(turned_in_text(item.turned_in_at, tz, now), subtle=True),
    ]
    late = late_text(item.late_by)
    if late:
        items.append(line(late.capitalize(), color="Attention"))
    grade = OpenGradingAction(item.education_class.id, item.assignment.id, item.submission.id)
    actions = buttons([execute("Grade", grade), open_url("Open in Teams", item.submission.web_url)])
    if actions is not None:
        items.append(actions)
    return Container(items=items, separator=True)


def nothing_waiting_card(scope_label: str) -> Card:
    return card([heading("Nothing waiting"), line(f"All turned-in work in {plain(scope_label)} is graded. Nice!")])


def ungraded_card(
    items: Sequence[UngradedItem],
    page: int,
    page_count: int,
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
    total: int | None = None,
    first_index: int = 0,
) -> Card:
    """One page of ungraded work (`items` are that page's, oldest first).

    `class_id` None means the scope is every taught class: each item then names its class. `total` and
    `first_index` (0-based position of the page's first item in the whole list) only feed the "21–40 of 400" line.
    """
    if not items:
        return nothing_waiting_card(scope_label)
    total = len(items) if total is None else total
    label = plain(scope_label)
    range_text = f"{first_index + 1}–{first_index + len(items)} of {total}" if page_count > 1 else f"{total}"
    body: list[CardElement | None] = [
        heading(f"Waiting to be graded: {label}"),
        line(
            f"{range_text} submissions, oldest first"
            + (f" · page {page + 1} of {page_count}" if page_count > 1 else ""),
            subtle=True,
        ),
    ]
    body.extend(_item_block(item, tz, now, show_class=class_id is None) for item in items)
    navigation = [
        execute("Previous page", ShowUngradedAction(class_id, page - 1)) if page > 0 else None,
        execute("Next page", ShowUngradedAction(class_id, page + 1)) if page + 1 < page_count else None,
    ]
    return card(body, navigation, full_width=True)


def paginate_ungraded(
    items: Sequence[UngradedItem],
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
    per_page: int = PER_PAGE,
    budget: int = MAX_CARD_BYTES,
) -> list[list[UngradedItem]]:
    """Split ungraded work into pages of at most `per_page` whose rendered card measures within `budget`."""
    pages: list[list[UngradedItem]] = []
    start = 0
    page_count_bound = max(1, len(items))  # as many digits as the real page count, or more: a safe over-estimate
    while start < len(items):
        candidates = list(items[start : start + per_page])

        def build(count: int, candidates: list[UngradedItem] = candidates, start: int = start) -> Card:
            return ungraded_card(
                candidates[:count],
                len(pages),
                page_count_bound,
                scope_label,
                tz,
                now,
                class_id=class_id,
                total=len(items),
                first_index=start,
            )

        count = largest_fitting(build, len(candidates), budget)
        pages.append(candidates[:count])
        start += count
    return pages


def ungraded_page_card(
    items: Sequence[UngradedItem],
    page: int,
    scope_label: str,
    tz: ZoneInfo,
    now: datetime,
    *,
    class_id: str | None = None,
    per_page: int = PER_PAGE,
) -> Card:
    """Paginate all ungraded work and render page `page` (clamped to the last page, e.g. after grading shrank it)."""
    pages = paginate_ungraded(items, scope_label, tz, now, class_id=class_id, per_page=per_page)
    if not pages:
        return nothing_waiting_card(scope_label)
    page = min(max(page, 0), len(pages) - 1)
    first_index = sum(len(earlier) for earlier in pages[:page])
    return ungraded_card(
        pages[page],
        page,
        len(pages),
        scope_label,
        tz,
        now,
        class_id=class_id,
        total=len(items),
        first_index=first_index,
    )
