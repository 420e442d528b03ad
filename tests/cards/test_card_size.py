"""Big classes: every card page is measured to stay under the 80 KB budget, and nothing is silently lost."""

from __future__ import annotations

import json

from bot.school.progress import AssignmentProgress
from cards.assignments import assignments_card
from cards.classes import class_picker_card, classes_card
from cards.digest import DigestEntry, digest_card
from cards.render import MAX_CARD_BYTES, card_size
from cards.ungraded import paginate_ungraded, ungraded_card, ungraded_page_card
from tests.cards import fixtures as fx
from tests.cards.schema import assert_valid_card
from tests.cards.walk import texts, verbs


def test_four_hundred_long_named_submissions_page_under_the_budget() -> None:
    items = fx.ungraded_items(400, name_length=200, classes=7)
    pages = paginate_ungraded(items, "all your classes", fx.TZ, fx.NOW)
    assert sum(len(page) for page in pages) == 400
    assert [item for page in pages for item in page] == items  # all of them, once, still oldest first
    first_index = 0
    for number, page in enumerate(pages):
        built = ungraded_card(
            page, number, len(pages), "all your classes", fx.TZ, fx.NOW, total=400, first_index=first_index
        )
        first_index += len(page)
        wire = json.dumps(built, ensure_ascii=False, separators=(",", ":"))
        assert len(wire.encode("utf-8")) < MAX_CARD_BYTES
        assert card_size(built) < MAX_CARD_BYTES  # UTF-16, as Teams counts
        assert ("showUngraded" in verbs(built)) is (len(pages) > 1)
    assert_valid_card(ungraded_card(pages[0], 0, len(pages), "all", fx.TZ, fx.NOW))
    assert len(pages) > 1


def test_pages_shrink_when_names_are_huge() -> None:
    items = fx.ungraded_items(40, name_length=20_000)  # names are cut to 120 characters on the card
    pages = paginate_ungraded(items, "Biology", fx.TZ, fx.NOW, per_page=20, budget=20_000)
    assert all(len(page) < 20 for page in pages)
    assert sum(len(page) for page in pages) == 40
    for number, page in enumerate(pages):
        assert card_size(ungraded_card(page, number, len(pages), "Biology", fx.TZ, fx.NOW)) <= 20_000


def test_page_card_clamps_and_reports_position() -> None:
    items = fx.ungraded_items(45)
    last = ungraded_page_card(items, 99, "Biology", fx.TZ, fx.NOW, class_id=fx.CLASS_ID)
    assert_valid_card(last)
    assert "41–45 of 45 submissions, oldest first · page 3 of 3" in texts(last)
    assert verbs(last) == ["openGrading"] * 5 + ["showUngraded"]  # Previous page only


def test_many_assignments_stay_under_the_budget_and_say_what_is_hidden() -> None:
    progress = [
        AssignmentProgress(
            fx.assignment(f"a0000000-0000-4000-8000-{index:012d}", f"Assignment {index} " + "long title " * 20),
            turned_in=index % 4,
            needs_grading=index % 4,
            graded_not_returned=0,
            returned=10,
            not_turned_in=3,
            excused=0,
            late=1,
        )
        for index in range(600)
    ]
    built = assignments_card(fx.education_class(), progress, fx.TZ, fx.NOW)
    assert_valid_card(built)
    assert card_size(built) <= MAX_CARD_BYTES
    text = texts(built)
    assert "more assignments not shown here" in text
    waiting_first = [item for item in progress if item.needs_grading]
    assert f"Grade ({waiting_first[0].needs_grading})" in text  # work waiting is never the part cut first


def test_long_class_lists_and_digests_fit() -> None:
    classes = [
        fx.education_class(f"c0000000-0000-4000-8000-{index:012d}", f"Class {index} " + "x" * 110)
        for index in range(500)
    ]
    for built in (classes_card(classes), class_picker_card(classes, "ungraded")):
        assert_valid_card(built)
        assert card_size(built) <= MAX_CARD_BYTES
        assert "more classes not shown here" in texts(built)
    items = fx.ungraded_items(300, name_length=100, classes=300)
    entries = [DigestEntry(item.education_class, 3, item, [item] * 10) for item in items]
    digest = digest_card(entries, fx.TZ, fx.NOW)
    assert_valid_card(digest)
    assert card_size(digest) <= MAX_CARD_BYTES
    assert "more classes not shown here" in texts(digest)
