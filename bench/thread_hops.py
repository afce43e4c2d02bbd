"""What a thread hop costs on this machine, and how many a one-shot leaf makes.

A store's call (SQLite, local storage, a run's log) runs in a worker thread, and
in-process ``run()`` code runs on an event loop of its own (orchestrator.core.task_loop):
each such call wakes another thread and is woken back. This prints:
  1. the price of one hop: ``anyio.to_thread.run_sync`` of a no-op, --hops times one
     after another and 4 at once, and a crossing to a second event loop's thread and
     back (``run_coroutine_threadsafe``, as a ``run()``'s storage call makes), in wall
     time and CPU (user and system) a hop, min / median / max of --repeat rounds;
  2. what a one-shot run makes of them: ``charon run --module bench.noop_tasks Leaves``
     of --tasks leaves on the embedded defaults (as bench/oneshot_leaves.py), in this
     process, with each worker-thread trip counted by the function it ran and each
     cross-thread wake-up counted (``call_soon_threadsafe``, both directions of every
     trip and crossing); the process's CPU a leaf, and the part of it the hops come to
     at the price measured in 1.
Usage: .venv/bin/python bench/thread_hops.py [--hops 5000] [--repeat 5] [--tasks 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from bench.oneshot_leaves import count_outputs, make_templates
from orchestrator.cli.main import run_cli

Round = Callable[[int], Awaitable[None]]


def _cpu() -> tuple[float, float]:
    times = os.times()
    return times.user, times.system


Price = tuple[float, float, float]
"""Microseconds a hop: wall, user CPU, system CPU."""


async def _priced(run_round: Round, hops: int) -> Price:
    (user0, system0), start = _cpu(), time.perf_counter()
    await run_round(hops)
    (user1, system1), wall = _cpu(), time.perf_counter() - start
    return wall / hops * 1e6, (user1 - user0) / hops * 1e6, (system1 - system0) / hops * 1e6


async def _one_after_another(hops: int) -> None:
    for _ in range(hops):
        await anyio.to_thread.run_sync(int)


async def _four_at_once(hops: int) -> None:
    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(_one_after_another, hops // 4)


async def _nothing() -> None:
    return None


async def _crossings(hops: int) -> None:
    """To a second loop's thread and back, awaited without blocking either loop."""
    started, other = threading.Event(), asyncio.new_event_loop()

    def serve() -> None:
        started.set()
        other.run_forever()

    thread = threading.Thread(target=serve)
    thread.start()
    started.wait()
    try:
        for _ in range(hops):
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(_nothing(), other))
    finally:
        other.call_soon_threadsafe(other.stop)
        await anyio.to_thread.run_sync(thread.join)
        other.close()


def price(hops: int, repeat: int) -> dict[str, list[Price]]:
    rounds: dict[str, Round] = {"worker-thread trip, one at a time": _one_after_another,
                                "worker-thread trip, 4 at once": _four_at_once,
                                "crossing to a second loop and back": _crossings}
    measured: dict[str, list[Price]] = {name: [] for name in rounds}
    for _ in range(repeat):
        for name, run_round in rounds.items():
            measured[name].append(anyio.run(_priced, run_round, hops))
    return measured


class Counted:
    """Counts worker-thread trips by function and cross-thread wake-ups while it is on."""

    def __init__(self) -> None:
        self.trips = Counter[str]()
        self.wakeups = 0
        self._run_sync = anyio.to_thread.run_sync
        self._wake = asyncio.BaseEventLoop.call_soon_threadsafe
        self._lock = threading.Lock()

    def __enter__(self) -> Counted:
        run_sync, wake, counted = self._run_sync, self._wake, self

        async def counting_run_sync(function: Callable[..., Any], *args: Any,
                                    **kwargs: Any) -> Any:
            name = getattr(function, "__qualname__", type(function).__qualname__)
            counted.trips[name] += 1
            return await run_sync(function, *args, **kwargs)

        def counting_wake(loop: asyncio.BaseEventLoop, *args: Any, **kwargs: Any) -> Any:
            with counted._lock:  # called from every thread
                counted.wakeups += 1
            return wake(loop, *args, **kwargs)

        # Replaced where charon's modules look them up at each call; put back on exit.
        setattr(anyio.to_thread, "run_sync", counting_run_sync)  # noqa: B010
        setattr(asyncio.BaseEventLoop, "call_soon_threadsafe", counting_wake)  # noqa: B010
        return self

    def __exit__(self, *_: object) -> None:
        setattr(anyio.to_thread, "run_sync", self._run_sync)  # noqa: B010
        setattr(asyncio.BaseEventLoop, "call_soon_threadsafe", self._wake)  # noqa: B010


def one_shot(tasks: int) -> tuple[Counted, float, float]:
    """``charon run`` of ``tasks`` leaves in this process: the counts, CPU and wall time."""
    with tempfile.TemporaryDirectory() as scratch:
        template, _ = make_templates(tasks, Path(scratch))
        home = Path(scratch) / "home"
        home.mkdir()
        shutil.copy(template / "registry.sqlite", home)
        os.environ.update(CHARON_HOME=str(home), CHARON_LOG__LEVEL="warning",
                          BENCH_TASKS=str(tasks),
                          CHARON_STORAGE__ROOT=str(template / "storage"))
        (user0, system0), start = _cpu(), time.perf_counter()
        with Counted() as counted, contextlib.redirect_stdout(io.StringIO()):
            code = run_cli(["run", "--module", "bench.noop_tasks", "Leaves"])
        (user1, system1), wall = _cpu(), time.perf_counter() - start
        if code != 0 or count_outputs(template / "storage" / "outputs") != tasks:
            raise SystemExit(f"charon run exited {code}")
        return counted, (user1 - user0) + (system1 - system0), wall


def spread(values: list[float]) -> str:
    return f"{min(values):6.1f} / {statistics.median(values):6.1f} / {max(values):6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hops", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=1000)
    args = parser.parse_args()
    measured = price(args.hops, args.repeat)
    print(f"a hop, µs (min / median / max of {args.repeat} rounds of {args.hops}):")
    print(f"  {'':36}{'wall':>24}{'user CPU':>24}{'system CPU':>24}")
    for name, rounds in measured.items():
        columns = [spread([each[n] for each in rounds]) for n in range(3)]
        print(f"  {name:36}" + "".join(f"{column:>24}" for column in columns))
    trip_cpu = statistics.median(u + s for _, u, s in measured["worker-thread trip, one at a time"])
    counted, cpu, wall = one_shot(args.tasks)
    trips = sum(counted.trips.values())
    print(f"\none-shot run of {args.tasks} leaves in process: {wall:.2f} s, "
          f"{cpu / args.tasks * 1000:.2f} ms of CPU a leaf")
    print(f"  worker-thread trips a leaf: {trips / args.tasks:.1f}; cross-thread wake-ups a "
          f"leaf: {counted.wakeups / args.tasks:.1f}")
    for name, count in counted.trips.most_common():
        if count >= args.tasks / 100:  # not the few of start-up and shutdown
            print(f"    {count / args.tasks:6.2f}  {name}")
    hops_cpu = trips / args.tasks * trip_cpu / 1000
    print(f"  the trips alone, at {trip_cpu:.0f} µs of CPU each: {hops_cpu:.2f} ms a leaf, "
          f"{hops_cpu / (cpu / args.tasks * 1000):.0%} of its CPU")
    print(f"reproduce: .venv/bin/python bench/thread_hops.py --hops {args.hops} "
          f"--repeat {args.repeat} --tasks {args.tasks}")


if __name__ == "__main__":
    main()
