"""The sweep benchmark's quick run: every digest equals a full read, no 429, and a sweep costs a request or so per
class where a full read costs ~20 (counts only; timings are the benchmark's business)."""

from __future__ import annotations

from bench.sweep import QUICK, TITLE, measure


async def test_the_quick_sweep_benchmark_checks_its_digests_and_counts_its_requests() -> None:
    figures = {figure.name: figure for figure in await measure(quick=True)}
    assert TITLE
    assert figures["sweep_digests_equal"].value == 1 and figures["sweep_digests_equal"].met
    assert figures["sweep_throttled"].value == 0 and figures["sweep_throttled"].met
    assert figures["sweep_digests_sent"].value == QUICK.teachers * QUICK.school_days
    # One getRecentlyModifiedSubmissions per class and sweep, plus extra pages after busy days, the weekly
    # assignment re-read and new assignments: well under two; a full read of these classes costs ~20 each.
    assert 1.0 <= figures["sweep_requests_per_class"].value < 2.0
    # Roster reads (Graph budgets them apart): taughtClasses once per teacher, and a class's members (pages of 10)
    # when its digest names students, as student names are never stored.
    members_pages = -(-(QUICK.students + 1) // 10)
    roster = figures["sweep_roster_requests_per_class"].value
    assert 1 / QUICK.classes_per_teacher < roster <= 1 / QUICK.classes_per_teacher + members_pages
