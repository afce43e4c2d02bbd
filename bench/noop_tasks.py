"""charon's side of bench/thousand_tasks.py: N partitions of a task whose run() does nothing."""

from __future__ import annotations

import os
from datetime import date, timedelta

from orchestrator.params import DateParameter
from orchestrator.runcontext import RunContext
from orchestrator.task import Task, WrapperTask

FIRST_DAY = date(2000, 1, 1)


class Noop(Task):
    date = DateParameter()

    async def run(self, context: RunContext) -> None:
        return None


class Thousand(WrapperTask):
    def requires(self) -> list[Task]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Noop(date=FIRST_DAY + timedelta(days=n)) for n in range(count)]
