"""Luigi's side of bench/thousand_tasks.py: the same tasks, run by Luigi's local scheduler."""

from __future__ import annotations

import os
from datetime import date, timedelta

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only

FIRST_DAY = date(2000, 1, 1)


class Noop(luigi.Task):  # type: ignore[misc]
    date = luigi.DateParameter()

    def run(self) -> None:
        return None


class Thousand(luigi.WrapperTask):  # type: ignore[misc]
    def requires(self) -> list[Noop]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Noop(date=FIRST_DAY + timedelta(days=n)) for n in range(count)]
