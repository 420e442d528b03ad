"""Contract: the audit log (who, when, before, after) and undo bookkeeping."""

from __future__ import annotations

from storage import Store
from tests.storage.samples import BERLIN_WINTER, TENANT, at, audit


async def test_record_audit_round_trips_every_field(store: Store) -> None:
    new = audit(
        "grade",
        minute=1,
        before={"points": None, "feedback": None, "rubric": []},
        after={"points": 9.5, "feedback": "مرحبا — 🎉 well argued", "rubric": [{"q": "q1", "l": "l3"}]},
        at=at(1).astimezone(BERLIN_WINTER),
    )

    stored = await store.record_audit(new)

    assert stored.id > 0
    assert (stored.at, stored.teacher_id, stored.tenant_id, stored.action) == (at(1), "teacher-1", TENANT, "grade")
    assert (stored.class_id, stored.assignment_id, stored.submission_id) == ("class-1", "assignment-1", "submission-1")
    assert (stored.before, stored.after) == (new.before, new.after)
    assert (stored.outbox_key, stored.undone_at) == (new.outbox_key, None)
    assert await store.list_audit(submission_id="submission-1") == [stored]

    without_key = await store.record_audit(audit("return", minute=2, outbox_key=None))
    assert without_key.outbox_key is None and without_key.id != stored.id


async def test_last_undoable_is_the_newest_not_undone_record_of_those_actions(store: Store) -> None:
    oldest = await store.record_audit(audit("grade", minute=1))
    middle = await store.record_audit(audit("return", minute=2))
    newest = await store.record_audit(audit("grade", minute=3))
    await store.record_audit(audit("grade", minute=4, teacher_id="teacher-2"))
    await store.record_audit(audit("undo", minute=5))

    assert await store.last_undoable("teacher-1", {"grade", "return"}) == newest
    assert await store.last_undoable("teacher-1", ["return"]) == middle
    assert await store.last_undoable("teacher-1", []) is None
    assert await store.last_undoable("teacher-3", ["grade"]) is None

    assert await store.mark_undone(newest.id, at(6)) is True
    assert await store.mark_undone(newest.id, at(7)) is False, "only once"
    assert await store.last_undoable("teacher-1", ("grade", "return")) == middle
    assert await store.last_undoable("teacher-1", ("grade",)) == oldest

    undone = await store.list_audit(teacher_id="teacher-1", submission_id="submission-1", limit=10)
    assert next(item for item in undone if item.id == newest.id).undone_at == at(6)
    assert await store.mark_undone(999_999, at(6)) is False


async def test_list_audit_filters_orders_newest_first_and_limits(store: Store) -> None:
    a = await store.record_audit(audit("grade", minute=1))
    b = await store.record_audit(audit("grade", minute=2, submission_id="submission-2"))
    c = await store.record_audit(audit("grade", minute=3, teacher_id="teacher-2"))
    d = await store.record_audit(audit("excuse", minute=4))

    assert [item.id for item in await store.list_audit()] == [d.id, c.id, b.id, a.id]
    assert [item.id for item in await store.list_audit(teacher_id="teacher-1")] == [d.id, b.id, a.id]
    assert [item.id for item in await store.list_audit(submission_id="submission-1")] == [d.id, c.id, a.id]
    assert [item.id for item in await store.list_audit(submission_id="submission-1", teacher_id="teacher-1")] == [
        d.id,
        a.id,
    ]
    assert [item.id for item in await store.list_audit(limit=2)] == [d.id, c.id]
    assert await store.list_audit(teacher_id="nobody") == []
