"""`python -m bench.serve SHAPE_JSON PLAN_JSON`: the sandbox with a benchmark school, in its own process
(so on a 2-core machine the emulator does not share an event loop with the clients being measured)."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from bench.school import SchoolShape, district_school
from sandbox.app import Sandbox
from sandbox.faults import FaultPlan

READY_PREFIX = "BENCH_SANDBOX_READY "


async def serve(shape: SchoolShape, plan: FaultPlan) -> None:
    sandbox = Sandbox(district_school(shape), faults=plan)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    async with sandbox:
        print(READY_PREFIX + json.dumps({"baseUrl": sandbox.base_url}), flush=True)
        await stopping.wait()


def main(argv: list[str]) -> int:
    shape_json, plan_json = argv
    shape = SchoolShape.from_json(json.loads(shape_json))
    asyncio.run(serve(shape, FaultPlan.from_json(json.loads(plan_json))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
