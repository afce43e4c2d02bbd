"""Tasks the benchmarks run: no-op partitions (thousand_tasks), a daily registry task, and
the leaves of a one-shot run (oneshot_leaves)."""

from __future__ import annotations

import os
import time
from datetime import date, timedelta

from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import LookupDaily, Task, WrapperTask

FIRST_DAY = date(2000, 1, 1)
INPUT_ENDPOINT = "bench.input"
OUTPUT_ENDPOINT = "bench.output"


class Noop(Task):
    date = DateParameter()

    async def run(self, context: RunContext) -> None:
        return None


class Thousand(WrapperTask):
    def requires(self) -> list[Task]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Noop(date=FIRST_DAY + timedelta(days=n)) for n in range(count)]


class Daily(Task):
    """A day's partition of a registry input to a registry output; run() writes one file."""

    date = DateParameter()

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=INPUT_ENDPOINT, partition=self.date, pattern="*")

    def output(self) -> RegistryTarget:
        return RegistryTarget(OUTPUT_ENDPOINT, self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        await context.storage.write(f"{context.outputs['output']}/part", b"done\n")


LEAF_FILE = "part"
LEAF_FIRST_DAY = date(1900, 1, 1)
"""The first leaf's day: 100,000 days from here stay within the days charon accepts."""


class Leaf(Task):
    """One leaf of bench/oneshot_leaves.py: reads its day's input file, publishes a copy."""

    date = DateParameter()

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=INPUT_ENDPOINT, partition=self.date, pattern=LEAF_FILE)

    def output(self) -> RegistryTarget:
        return RegistryTarget(OUTPUT_ENDPOINT, self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        data = await context.storage.read(context.inputs["input"].ref)
        await context.storage.write(f"{context.outputs['output']}/{LEAF_FILE}", data)


class Leaves(WrapperTask):
    def requires(self) -> list[Task]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Leaf(date=LEAF_FIRST_DAY + timedelta(days=n)) for n in range(count)]


class Stamped(Daily):
    """Daily whose output says when the run began, for a load bench timing from outside."""

    async def run(self, context: RunContext) -> None:
        stamp = f"{self.date.isoformat()} {time.time()!r}\n"
        await context.storage.write(f"{context.outputs['output']}/part", stamp.encode())
