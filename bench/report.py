"""The benchmark's output: a plain-text table of both approaches and their ratios, the throttle-budget lines for
a district sweep, and the same results as JSON."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import Comparison, Measurement

HEADER = (
    f"{'Scenario':<46} | {'Gradebot':^30} | {'Naive':^30} | {'Naive ÷ Gradebot':^22}",
    f"{'':<46} | {'time':>8} {'HTTP':>6} {'Graph':>7} {'429':>5} | {'time':>8} {'HTTP':>6} {'Graph':>7} {'429':>5} "
    f"| {'time':>6} {'HTTP':>6} {'Graph':>7}",
)


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def _cells(measurement: Measurement) -> str:
    throttled = "—" if measurement.scaled_from else str(measurement.throttled)
    return (
        f"{_seconds(measurement.seconds):>8} {measurement.http_requests:>6} {measurement.graph_requests:>7} "
        f"{throttled:>5}"
    )


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}×"


def table(comparisons: Sequence[Comparison]) -> str:
    """One row per scenario; HTTP = round trips, Graph = requests the throttle counts ($batch items one each)."""
    lines = [*HEADER, "-" * len(HEADER[1])]
    for comparison in comparisons:
        ratios = comparison.ratios()
        lines.append(
            f"{comparison.title:<46} | {_cells(comparison.gradebot)} | {_cells(comparison.naive)} | "
            f"{_ratio(ratios['time']):>6} {_ratio(ratios['httpRequests']):>6} {_ratio(ratios['graphRequests']):>7}"
        )
    lines.append("HTTP = round trips (a $batch is one); Graph = requests the throttle counts ($batch items one each).")
    for comparison in comparisons:
        if comparison.naive.scaled_from:
            lines.append(
                f"* naive {comparison.key}: measured on {comparison.naive.scaled_from} and scaled to all; its time is"
                " the larger of the scaled time and the least time Graph's budget allows for that many requests."
            )
    return "\n".join(lines)


def sweep_lines(comparison: Comparison) -> str:
    """What one reminder sweep costs against 350 requests / 10 s per app per tenant, measured and extrapolated."""
    details = comparison.details
    budget = details["budget"]
    limit, window = budget["limit"], budget["windowSeconds"]
    gradebot, naive = comparison.gradebot, comparison.naive
    verdict = "stayed inside" if gradebot.throttled == 0 else "went over"
    lines = [
        f"Reminder sweep ({details['teachers']} teachers): digests {details['digestsSent']}, nothing waiting "
        f"{details['nothingWaiting']}, failed {details['failedTeachers']}.",
        f"  Gradebot: {gradebot.graph_requests} Graph requests ({gradebot.batch_items} of them $batch items), peak "
        f"{gradebot.peak_window_requests} sent in one {window:g} s window, {gradebot.throttled} answered 429: it "
        f"{verdict} the sandbox's {limit} / {window:g} s.",
    ]
    if naive.scaled_from:
        lines.append(f"  Naive:    {naive.graph_requests} Graph requests (scaled from {naive.scaled_from}).")
    else:
        lines.append(
            f"  Naive:    {naive.graph_requests} Graph requests, peak {naive.peak_window_requests} sent in one window, "
            f"{naive.throttled} answered 429."
        )
    lines.append(
        f"Throttle budget for a district of {budget['districtTeachers']} teachers, from the answered requests per "
        "teacher above (sandbox = every Graph request; Graph itself puts only assignment-service requests "
        f"under {limit} / {window:g} s, rostering reads have their own larger budget):"
    )
    for name in ("gradebot", "naive"):
        side = budget[name]
        lines.append(
            f"  {name.capitalize():<9} {side['requestsPerTeacher']:g} requests/teacher "
            f"({side['assignmentServiceRequestsPerTeacher']:g} assignment service) · "
            f"{side['teachersPerWindow']:g} teachers per {window:g} s window "
            f"({side['assignmentServiceTeachersPerWindow']:g}) · {side['requestsPerSweep']} per sweep · "
            f"≥ {side['minimumSweepSeconds']:.0f} s per sweep · {side['shareOfHourlyBudget']:.0%} of the hourly "
            f"{budget['hourlyLimit']}"
        )
    return "\n".join(lines)


def results_json(comparisons: Sequence[Comparison], options: dict[str, Any], command: str) -> dict[str, Any]:
    return {
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "command": command,
        "options": options,
        "scenarios": [comparison.to_json() for comparison in comparisons],
    }


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
