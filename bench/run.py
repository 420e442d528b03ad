"""`python -m bench.run [flags]` (or `python bench/run.py`): start the sandbox with Graph-like latency and throttling,
measure Gradebot and the naive client on the same work in one run, print a table and write bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import results_json, sweep_lines, table, write_json
from bench.scenarios import BenchOptions, run_all
from bench.school import SchoolShape
from sandbox.faults import (
    ASSIGNMENT_SERVICE_HOURLY_LIMIT,
    ASSIGNMENT_SERVICE_LIMIT,
    ASSIGNMENT_SERVICE_WINDOW_S,
    FaultPlan,
)

DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results" / "latest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Gradebot's Graph access against a naive N+1 client, measured on the sandbox in one run.",
    )
    school = parser.add_argument_group("school (scenario A uses the first teacher; C sweeps them all)")
    school.add_argument("--teachers", type=int, default=2, help="teachers in the district (default 2)")
    school.add_argument("--classes", type=int, default=2, help="classes per teacher (default 2)")
    school.add_argument("--assignments", type=int, default=8, help="assignments per class (default 8)")
    school.add_argument("--students", type=int, default=25, help="students per class (default 25)")
    school.add_argument("--seed", type=int, default=0, help="school generator seed")
    run = parser.add_argument_group("run")
    run.add_argument("--naive-teachers", type=int, default=None, help="teachers the naive sweep covers, then scaled")
    run.add_argument("--district-teachers", type=int, default=50, help="district size for the budget arithmetic")
    run.add_argument("--sandbox", choices=("subprocess", "in-process"), default="subprocess", help="where it runs")
    run.add_argument("--page-size", type=int, default=10, help="sandbox page size before @odata.nextLink")
    run.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="JSON results file")
    graph = parser.add_argument_group("Graph realism (the sandbox's own flags; no injected errors)")
    graph.add_argument("--latency-ms", type=float, default=20.0, help="fixed latency per round trip (default 20)")
    graph.add_argument(
        "--jitter-ms", type=float, default=40.0, help="plus uniform random [0, J) ms (default 40: 40 ± 20 ms in all)"
    )
    graph.add_argument(
        "--throttle-limit", type=int, default=ASSIGNMENT_SERVICE_LIMIT, help="requests per window per app (0 = off)"
    )
    graph.add_argument("--throttle-window-s", type=float, default=ASSIGNMENT_SERVICE_WINDOW_S, help="window length")
    graph.add_argument(
        "--throttle-hourly-limit", type=int, default=ASSIGNMENT_SERVICE_HOURLY_LIMIT, help="per hour (0 = off)"
    )
    graph.add_argument("--fault-seed", type=int, default=0, help="seed of the latency jitter")
    return parser


def options_from_args(args: argparse.Namespace) -> BenchOptions:
    shape = SchoolShape(args.teachers, args.classes, args.assignments, args.students, args.seed)
    plan = FaultPlan(
        latency_ms=args.latency_ms,
        jitter_ms=args.jitter_ms,
        throttle_limit=args.throttle_limit,
        throttle_window_s=args.throttle_window_s,
        throttle_hourly_limit=args.throttle_hourly_limit,
        seed=args.fault_seed,
    )
    return BenchOptions(
        shape=shape,
        plan=plan,
        mode=args.sandbox,
        page_size=args.page_size,
        naive_teachers=args.naive_teachers,
        district_teachers=args.district_teachers,
    )


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    plan = options.plan
    print(
        f"Sandbox latency {plan.latency_ms:g}–{plan.latency_ms + plan.jitter_ms:g} ms per round trip, throttle "
        f"{plan.throttle_limit} / {plan.throttle_window_s:g} s per app per tenant, school "
        f"{options.shape.describe()} (teachers × classes × assignments × students)",
        flush=True,
    )
    comparisons = asyncio.run(run_all(options, progress=lambda line: print(f"… {line}", flush=True)))
    print()
    print(table(comparisons))
    print()
    print(sweep_lines(next(c for c in comparisons if c.key == "sweep")))
    command = shlex.join(["python", "-m", "bench.run", *arguments])
    settings = {**asdict(options), "plan": plan.to_json()}
    write_json(args.output, results_json(comparisons, settings, command))
    print(f"\nResults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
