"""`python -m bench [--quick] [SCENARIO…]`: run the benchmark scenarios (all by default), print one `name value unit`
line per figure, then a table against the targets with the machine, and write bench/results/latest.json."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from bench.figures import Figure, Scenario

SCENARIOS = {
    "p1": "bench.p1",
    "save": "bench.save",
    "server": "bench.server",
    "size": "bench.size",
    "sweep": "bench.sweep",
}
"""Scenario name → module (each has TITLE and `async def measure(quick) -> list[Figure]`)."""
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {"cores": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "platform": platform.platform()}


def table(results: dict[str, list[Figure]], host: dict[str, Any]) -> str:
    rows = [("figure", "value", "unit", "target", "met")]
    for figures in results.values():
        for figure in figures:
            value = figure.line().split(" ")[1]
            met = "" if figure.met is None else "yes" if figure.met else "NO"
            rows.append((figure.name, value, figure.unit, figure.target, met))
    widths = [max(len(row[column]) for row in rows) for column in range(5)]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    lines.append(f"machine: {host['cores']} cores, {host['cpu']}, Python {host['python']}")
    return "\n".join(lines)


async def run(names: list[str], quick: bool) -> tuple[dict[str, list[Figure]], list[str]]:
    """Every named scenario, one after another; a failed quick check is noted and the others still run."""
    results: dict[str, list[Figure]] = {}
    failures: list[str] = []
    for name in names:
        scenario = cast(Scenario, importlib.import_module(SCENARIOS[name]))
        print(f"# {scenario.TITLE}", file=sys.stderr, flush=True)
        try:
            results[name] = await scenario.measure(quick)
        except AssertionError as exc:
            failures.append(f"{name}: {exc}")
            continue
        for figure in results[name]:
            print(figure.line(), flush=True)
    return results, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"any of {', '.join(SCENARIOS)} (all)")
    parser.add_argument("--quick", action="store_true", help="seconds, not minutes: checks counts, never times")
    args = parser.parse_args(argv)
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    names = args.scenarios or list(SCENARIOS)
    results, failures = asyncio.run(run(names, args.quick))
    host = machine()
    print()
    print(table(results, host))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "generatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "machine": host,
        "figures": [figure.__dict__ for figures in results.values() for figure in figures],
        "failures": failures,
    }
    RESULTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
