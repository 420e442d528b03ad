"""`python -m tests.soak [--long] [--engine sqlite|postgres|both]`: run the soak and print one line per count
(`soak_writes 1000`, `soak_lost 0`, …); the exit status is 1 when anything was lost or written twice."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from tests.soak.databases import REQUIRE_POSTGRES, Engine, postgres_unreachable
from tests.soak.run import failures, run_engines, soak_config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__)
    parser.add_argument("--long", action="store_true", help="the full soak: 1,000 writes per engine")
    parser.add_argument("--engine", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--writes", type=int, help="override the number of typed writes per engine")
    parser.add_argument("--seed", type=int, default=1, help="seed of the teachers' choices and of the faults")
    parser.add_argument("--keep", type=Path, help="keep logs and soak.json (what was judged) in this folder")
    args = parser.parse_args(argv)
    engines: list[Engine] = ["sqlite", "postgres"] if args.engine == "both" else [args.engine]
    if "postgres" in engines and (reason := postgres_unreachable()) is not None:
        if REQUIRE_POSTGRES or args.engine == "postgres":
            print(f"soak: {reason}", file=sys.stderr)
            return 2
        print(f"soak: skipping PostgreSQL: {reason}", file=sys.stderr)
        engines.remove("postgres")
    configs = [soak_config(engine, long=args.long, writes=args.writes, seed=args.seed) for engine in engines]
    with tempfile.TemporaryDirectory(prefix="gradebot-soak-") as scratch:
        reports = asyncio.run(run_engines(configs, args.keep or Path(scratch)))
    for report in reports:
        print(f"soak_engine {report.engine}")
        print("\n".join(report.lines()))
        for problem in report.problems:
            print(f"soak_problem {problem}")
    return 1 if any(failures(report) for report in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
