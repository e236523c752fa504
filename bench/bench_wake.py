"""What an event-loop wake-up and a hop to a request thread cost this host in CPU,
back to back and after an idle pause (as a worker sees them at a low message rate).

Each figure is the process's CPU per iteration, the median of ``--reps`` runs of
``--wakes`` iterations. An iteration is: ``hops`` calls to a single-thread
executor (asgiref's ``sync_to_async`` under a ``ThreadSensitiveContext``, as the
ASGI handler makes them, or ``loop.run_in_executor`` directly), then a sleep of
``--gap-ms`` on a uvloop loop (the sleep's own wake-up is counted, the time
asleep is not CPU). The no-hop row is the price of waking alone.

    .venv/bin/python bench/bench_wake.py
    .venv/bin/python bench/bench_wake.py --gap-ms 20 --wakes 300

Figures of 2026-12-06 (gap 130 ms), calm host / an hour later: a wake alone 230 /
391 us; with one asgiref hop 540 / 1086 us, with a direct run_in_executor 390 /
928 us; back to back a hop is 97 / 133 us (asgiref) or 67 / 86 us (direct). Yet a
chat turn's CPU did not change when its two hops went direct (bench_turn
--gap-ms 130, the two versions side by side): the turn pays for the cold caches
once, whichever call meets them first.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

import uvloop
from asgiref.sync import ThreadSensitiveContext, sync_to_async

EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="request")


def _nothing() -> None:
    return None


async def _asgiref_hop() -> None:
    await sync_to_async(_nothing)()


async def _direct_hop() -> None:
    await asyncio.get_running_loop().run_in_executor(EXECUTOR, _nothing)


HOPS: dict[str, Callable[[], Awaitable[None]]] = {
    "asgiref": _asgiref_hop,
    "direct": _direct_hop,
}


async def _run(
    hop: Callable[[], Awaitable[None]], hops: int, wakes: int, gap: float
) -> float:
    async with ThreadSensitiveContext(executor=EXECUTOR):
        for _ in range(20):  # the thread exists and the code paths are compiled
            await hop()
        started = time.process_time()
        for _ in range(wakes):
            for _ in range(hops):
                await hop()
            if gap:
                await asyncio.sleep(gap)
        return (time.process_time() - started) / wakes * 1e6


def measure(kind: str, hops: int, wakes: int, gap: float, reps: int) -> float:
    runs = [uvloop.run(_run(HOPS[kind], hops, wakes, gap)) for _ in range(reps)]
    return statistics.median(runs)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gap-ms", type=float, default=130.0)
    parser.add_argument("--wakes", type=int, default=60)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    gap = args.gap_ms / 1000
    print(f"after {args.gap_ms:.0f} ms idle, CPU per wake (median of {args.reps}):")
    print(
        f"  no hop            {measure('direct', 0, args.wakes, gap, args.reps):6.0f} us"
    )
    for kind in HOPS:
        for hops in (1, 2):
            cpu = measure(kind, hops, args.wakes, gap, args.reps)
            print(f"  {hops} hop(s) {kind:<8} {cpu:6.0f} us")
    print("back to back, CPU per hop:")
    for kind in HOPS:
        print(f"  {kind:<8}          {measure(kind, 1, 3000, 0.0, args.reps):6.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
