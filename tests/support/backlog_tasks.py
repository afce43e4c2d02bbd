"""A workflow with a backlog of long runs (tests/acceptance/test_backlog_cli.py: beside
it, two_sources_tasks.FromRegistry, whose day should run at once)."""

from __future__ import annotations

import anyio

from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import LookupDaily, Task

SLOW_INPUT = "backlog.slow.input"
SLOW_SECONDS = 120


class Slow(Task):
    date = DateParameter()

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=SLOW_INPUT, partition=self.date, pattern="*")

    def output(self) -> RegistryTarget:
        return RegistryTarget("backlog.slow.output", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        await anyio.sleep(SLOW_SECONDS)
        await context.storage.write(f"{context.outputs['output']}/part", b"slow\n")

