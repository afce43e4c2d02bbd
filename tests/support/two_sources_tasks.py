"""Two workflows reading two sources: one a warehouse table's day, one a registry
partition's (tests/acceptance/test_hung_source_cli.py pauses the warehouse)."""

from __future__ import annotations

from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget, WarehouseTable
from orchestrator.tasks.task import ExternalTask, LookupDaily, Task

PROJECT = "scio-playground"
DATASET = "two_sources"
PLAYS = "two.sources.plays"


def table_of(day: str) -> str:
    return f"plays_{day.replace('-', '')}"


class PlaysTable(ExternalTask):
    date = DateParameter()

    def output(self) -> WarehouseTable:
        return WarehouseTable(PROJECT, DATASET, table_of(self.date.isoformat()))


class FromTable(Task):
    date = DateParameter()

    def requires(self) -> PlaysTable:
        return PlaysTable(date=self.date)

    def output(self) -> RegistryTarget:
        return RegistryTarget("two.sources.from.table", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        await context.storage.write(f"{context.outputs['output']}/part", b"from the table\n")


class FromRegistry(Task):
    date = DateParameter()

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=PLAYS, partition=self.date, pattern="*")

    def output(self) -> RegistryTarget:
        return RegistryTarget("two.sources.from.registry", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        await context.storage.write(f"{context.outputs['output']}/part", b"from the registry\n")
