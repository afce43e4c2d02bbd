"""Luigi's side of bench/thousand_tasks.py and bench/oneshot_leaves.py: the same tasks, run
by Luigi's local scheduler."""

from __future__ import annotations

import os
from datetime import date, timedelta

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only

FIRST_DAY = date(2000, 1, 1)
LEAF_FIRST_DAY = date(1900, 1, 1)  # as bench/noop_tasks.py's


class Noop(luigi.Task):  # type: ignore[misc]
    date = luigi.DateParameter()

    def run(self) -> None:
        return None


class Thousand(luigi.WrapperTask):  # type: ignore[misc]
    def requires(self) -> list[Noop]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Noop(date=FIRST_DAY + timedelta(days=n)) for n in range(count)]


class Input(luigi.ExternalTask):  # type: ignore[misc]
    """A leaf's input: a local file bench/oneshot_leaves.py made beforehand."""

    date = luigi.DateParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"in/{self.date:%Y-%m-%d}/part")


class Leaf(luigi.Task):  # type: ignore[misc]
    """Reads its day's input file and writes a copy to its own local file target."""

    date = luigi.DateParameter()

    def requires(self) -> Input:
        return Input(date=self.date)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"out/{self.date:%Y-%m-%d}/part")

    def run(self) -> None:
        with self.input().open("r") as source, self.output().open("w") as sink:
            sink.write(source.read())


class Leaves(luigi.WrapperTask):  # type: ignore[misc]
    def requires(self) -> list[Leaf]:
        count = int(os.environ.get("BENCH_TASKS", "1000"))
        return [Leaf(date=LEAF_FIRST_DAY + timedelta(days=n)) for n in range(count)]
