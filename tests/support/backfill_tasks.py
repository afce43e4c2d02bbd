"""A quick daily task for backfill tests: each run writes its day's output and appends
its day to the file ``BACKFILL_RUNS_LOG`` names, so a test counts the runs of each day."""

from __future__ import annotations

import os

import anyio

from orchestrator.tasks.params import DateParameter, IntParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import Task

ENDPOINT = "backfill.daily"


class DailyCount(Task):
    """A day's count, written after ``BACKFILL_RUN_SECONDS`` (default 0)."""

    date = DateParameter()
    top_n = IntParameter(default=10)

    def output(self) -> RegistryTarget:
        return RegistryTarget(ENDPOINT, self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        log = os.environ.get("BACKFILL_RUNS_LOG")
        if log:
            async with await anyio.Path(log).open("a") as runs:
                await runs.write(f"{self.date}\n")
        await anyio.sleep(float(os.environ.get("BACKFILL_RUN_SECONDS", "0")))
        await context.storage.write(f"{context.outputs['output']}/part", b"done\n")
