"""charon's Luigi task ids (the CopyToTable markers) against Luigi's own, computed by real
Luigi 3.8.1 in its venv (one subprocess for the whole table)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from bench.luigi_venv import luigi_python
from jobs.luigi_top_artists import (
    AggregateArtistsSpark,
    ArtistToplistToDatabase,
    Top10Artists,
)
from orchestrator.tasks.luigi_ids import luigi_task_id, runner_variant_ids
from orchestrator.tasks.params import (
    BoolParameter,
    DateHourParameter,
    DateIntervalParameter,
    DateMinuteParameter,
    DateParameter,
    DateSecondParameter,
    IntParameter,
    Parameter,
)
from orchestrator.tasks.task import LookupDaily, Task

LUIGI_SIDE = Path(__file__).parents[1] / "support" / "luigi_task_ids.py"


class Mixed(Task):
    name = Parameter[str]()
    top_n = IntParameter()
    verbose = BoolParameter()
    day = DateParameter()
    note = Parameter[str]("unused", significant=False)


class Spelled(Task):
    date_interval = DateIntervalParameter()
    use_spark = BoolParameter(runner=True)


class Nothing(Task):
    pass


class Timed(Task):
    hour = DateHourParameter()
    minute = DateMinuteParameter()
    second = DateSecondParameter()


INTERVALS = ["2012", "2012-06", "2012-W05", "2012-W52", "2012-06-05", "2012-06-01-2012-06-30",
             "1999-12-31-2000-01-02"]
CASES: list[tuple[type[Task], dict[str, str]]] = [
    *[(ArtistToplistToDatabase, {"date_interval": interval}) for interval in INTERVALS],
    *[(Spelled, {"date_interval": interval, "use_spark": "true"}) for interval in INTERVALS],
    (Top10Artists, {"date_interval": "2012-07", "use_spark": "false"}),
    (AggregateArtistsSpark, {"date_interval": "2012-07"}),
    (LookupDaily, {"endpoint": "gs://bucket/EndContentFact", "partition": "2018-10-31"}),
    (Nothing, {}),
    (Timed, {"hour": "2013-07-10T19", "minute": "2013-7-1T9H5", "second": "2013-07-10T190738"}),
    (Mixed, {"name": "top artists", "top_n": "10", "verbose": "true", "day": "2012-06-05"}),
    (Mixed, {"name": "", "top_n": "-3", "verbose": "false", "day": "1900-01-01",
             "note": "not in the id"}),
    (Mixed, {"name": "a much longer name than sixteen chars", "top_n": "123456789012345678901",
             "verbose": "false", "day": "2200-12-31"}),
    (Mixed, {"name": 'quotes " and \\ and ünïcödé ✓ and\ttabs', "top_n": "0",
             "verbose": "true", "day": "2012-02-29"}),
]


def luigis_ids(cases: list[tuple[type[Task], dict[str, str]]], cwd: Path) -> list[str]:
    described = [
        [task_class.task_family,
         [[name, type(parameter).__name__, parameter.significant,
           None if parameter.required else parameter.serialize(parameter.default)]
          for name, parameter in task_class.parameters().items()],
         texts]
        for task_class, texts in cases
    ]
    done = subprocess.run([luigi_python(), str(LUIGI_SIDE)], input=json.dumps(described),
                          capture_output=True, text=True, check=False, cwd=cwd, timeout=120)
    assert done.returncode == 0, done.stderr
    ids: list[str] = json.loads(done.stdout)
    return ids


def test_charons_luigi_ids_are_luigis_for_every_parameter_type(tmp_path: Path) -> None:
    ours = [luigi_task_id(task_class(**texts)) for task_class, texts in CASES]
    assert ours == luigis_ids(CASES, tmp_path)


def test_a_runner_parameter_is_out_of_charons_identity_but_in_luigis_id() -> None:
    spark = Spelled(date_interval="2012-06", use_spark=True)
    in_process = Spelled(date_interval="2012-06")
    assert spark.task_id == in_process.task_id == "Spelled(date_interval=2012-06)"
    assert luigi_task_id(spark) != luigi_task_id(in_process)
    assert runner_variant_ids(spark) == runner_variant_ids(in_process) == [
        luigi_task_id(in_process), luigi_task_id(spark)]
    assert runner_variant_ids(Mixed(name="n", top_n=1, day="2012-06-05")) == [
        luigi_task_id(Mixed(name="n", top_n=1, day="2012-06-05"))]
