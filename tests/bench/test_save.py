"""bench/save.py in quick mode: one Save (and the next card) on the sandbox costs no more Graph requests and round
trips than the reworked path does, figures named as CI reads them; counts only, never times."""

from __future__ import annotations

from bench import save
from bench.timeline import Timeline


async def test_a_save_costs_at_most_the_reworked_counts() -> None:
    figures = {figure.name: figure for figure in await save.measure(quick=True)}
    assert set(figures) == {"save_graph_requests", "save_round_trips"}
    requests, trips = figures["save_graph_requests"], figures["save_round_trips"]
    assert requests.unit == "req" and trips.unit == "rtt"
    assert 0 < requests.value <= save.QUICK_GRAPH_REQUESTS < save.BEFORE_GRAPH_REQUESTS
    assert 0 < trips.value <= save.QUICK_ROUND_TRIPS <= save.BEFORE_ROUND_TRIPS / 2
    assert f"before: {save.BEFORE_GRAPH_REQUESTS}" in requests.target and trips.met is True


def test_round_trips_count_the_longest_chain_of_exchanges() -> None:
    def chain(spans: list[tuple[float, float]]) -> int:
        timeline = Timeline()
        timeline.spans.extend(spans)
        return timeline.critical_path()

    assert chain([]) == 0
    assert chain([(0.0, 1.0), (0.1, 1.1)]) == 1  # sent together: one round trip
    assert chain([(0.0, 1.0), (1.0, 2.0), (0.5, 2.5), (2.5, 3.0)]) == 3
