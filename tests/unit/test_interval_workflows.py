"""Luigi's interval spellings, interval workflows in the daemon, the CLI's flags, spark-submit."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import anyio
import pytest

from jobs.luigi_top_artists import (
    TOP_ARTISTS,
    AggregateArtists,
    AggregateArtistsSpark,
    Streams,
    Top10Artists,
)
from jobs.luigi_top_artists.sample_data import streams_day
from orchestrator.adapters import build_engine, local_job_runner
from orchestrator.cli.main import parse_task
from orchestrator.config import load_settings
from orchestrator.core.ports import Adapters
from orchestrator.daemon.daemon import Daemon
from orchestrator.errors import ConfigError, UsageError
from orchestrator.intervals import parse_interval, period_interval
from orchestrator.model import InputRevision
from orchestrator.tasks.commands import spark_command
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.runcontext import RunContext
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
)
from orchestrator.workflows import WorkflowSettings, parse_workflows
from sensors.facts import Root


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


@pytest.mark.parametrize(
    ("spelling", "first", "last"),
    [
        ("2012-06", "2012-06-01", "2012-06-30"),
        ("2012-W05", "2012-01-30", "2012-02-05"),
        ("2012", "2012-01-01", "2012-12-31"),
        ("2012-06-01-2012-07-01", "2012-06-01", "2012-06-30"),
        ("2012-06-05-2012-06-11", "2012-06-05", "2012-06-10"),
        ("2012-06-05", "2012-06-05", "2012-06-05"),
        ("2012-02", "2012-02-01", "2012-02-29"),
    ],
)
def test_each_luigi_spelling_resolves_to_its_days(spelling: str, first: str, last: str) -> None:
    interval = parse_interval(spelling)
    assert list(interval) == days(first, last)
    assert str(interval) == spelling
    assert (interval.date_a, interval.date_b) == (date.fromisoformat(first),
                                                  date.fromisoformat(last) + timedelta(days=1))
    task = AggregateArtists(date_interval=spelling)
    assert task.requires() == [Streams(date=day) for day in days(first, last)]
    assert task.task_id == f"AggregateArtists(date_interval={spelling})"


@pytest.mark.parametrize("bad", ["2012-13", "2012-W54", "2012-06-30-2012-06-01", "June",
                                 "2012-06-05-2012-06-05"])
def test_bad_intervals_are_usage_errors(bad: str) -> None:
    with pytest.raises(UsageError, match="invalid date interval"):
        AggregateArtists(date_interval=bad)


def test_each_period_gives_the_interval_containing_a_day() -> None:
    day = date(2012, 7, 4)
    assert str(period_interval("day", day)) == "2012-07-04"
    assert str(period_interval("week", day)) == "2012-W27"
    assert str(period_interval("month", day)) == "2012-07"
    assert str(period_interval("year", day)) == "2012"
    with pytest.raises(UsageError):
        period_interval("fortnight", day)


@pytest.mark.parametrize("period", ["day", "week", "month", "year"])
@pytest.mark.parametrize("day", [date(1900, 1, 1), date(2200, 12, 29), date(2200, 12, 31)])
def test_the_period_of_any_day_in_range_parses_back(period: str, day: date) -> None:
    # The ISO week of 2200-12-31 is 2201-W01: the daemon spells it, so it must parse.
    interval = period_interval(period, day)
    assert parse_interval(str(interval)) == interval
    workflow = WorkflowSettings(name="top10", module="jobs.luigi_top_artists",
                                task="Top10Artists", partition_param="date_interval",
                                period=period)
    assert root_task(workflow, day).partition_label == str(interval)


def test_an_interval_workflow_has_one_root_per_period_overlapping_its_window() -> None:
    workflow = WorkflowSettings(name="top10", module="jobs.luigi_top_artists",
                                task="Top10Artists", partition_param="date_interval",
                                period="month", lookback_days=3)
    assert workflow.partition_days(date(2012, 7, 2)) == [date(2012, 6, 1), date(2012, 7, 1)]
    assert root_task(workflow, date(2012, 7, 15)) == Top10Artists(date_interval="2012-07")
    weekly = dataclasses.replace(workflow, period="week")
    assert weekly.partition_days(date(2012, 7, 2)) == [date(2012, 6, 25), date(2012, 7, 2)]
    assert root_task(weekly, date(2012, 7, 4)) == Top10Artists(date_interval="2012-W27")
    daily = dataclasses.replace(workflow, period="day")
    assert root_task(daily, date(2012, 7, 4)) == Top10Artists(date_interval="2012-07-04")
    with pytest.raises(ConfigError, match="period"):
        parse_workflows([{"module": "m", "task": "T", "period": "fortnight"}])


def test_bool_parameters_are_flags_on_the_command_line() -> None:
    module, family = "jobs.luigi_top_artists", "Top10Artists"
    flagged = parse_task(module, family, ["--date-interval", "2012-07", "--use-spark"])
    assert flagged == Top10Artists(date_interval="2012-07", use_spark=True)
    assert not parse_task(module, family, ["--date-interval", "2012-07"]).param_values[
        "use_spark"]
    spelled = parse_task(module, family, ["--use-spark=false", "--date_interval=2012-W05"])
    assert spelled == Top10Artists(date_interval="2012-W05", use_spark=False)


def test_the_spark_command_follows_luigis_example() -> None:
    task = AggregateArtistsSpark(date_interval="2012-07-01-2012-07-03")
    inputs = {
        "0": InputRevision("0", "/s/data/streams_2012_07_01_faked.tsv", "r0"),
        "1": InputRevision("1", "/s/data/streams_2012_07_02_faked.tsv", "r1"),
    }
    context = RunContext(inputs, {"output": "/s/out/x"}, InMemoryStorage(), InMemoryWarehouse())
    argv = spark_command(task, context, job_name="charon-job", python="/venv/python")
    assert argv[0].endswith("spark-submit")
    assert argv[1:] == [
        "--master", "local[*]", "--name", "charon-job",
        "--conf", "spark.ui.enabled=false", "--conf", "spark.log.level=WARN",
        "--conf", "spark.pyspark.python=/venv/python",
        "--conf", "spark.pyspark.driver.python=/venv/python",
        task.app,
        "/s/data/streams_2012_07_01_faked.tsv,/s/data/streams_2012_07_02_faked.tsv",
        "/s/out/x",
    ]
    assert task.app.endswith("jobs/luigi_top_artists/spark_job.py")


def test_the_postgres_dsn_comes_from_config_or_environment() -> None:
    assert load_settings({}).postgres.dsn == ""
    dsn = "postgresql://postgres@127.0.0.1:5432/toplists"
    assert load_settings({"CHARON_POSTGRES__DSN": dsn}).postgres.dsn == dsn


async def test_the_daemon_fires_a_monthly_interval_when_its_last_day_arrives() -> None:
    registry, storage, state = InMemoryRegistry(), InMemoryStorage(), InMemoryStateStore()
    warehouse = InMemoryWarehouse()
    adapters = Adapters(registry, warehouse, storage, state, "/out", None, "/store")
    workflow = WorkflowSettings(name="top10", module="jobs.luigi_top_artists",
                                task="Top10Artists", partition_param="date_interval",
                                period="month", lookback_days=2)
    settings = dataclasses.replace(
        load_settings({"CHARON_DAEMON__POLL_INTERVAL_MS": "10"}), workflows=(workflow,)
    )
    runner = FakeJobRunner(warehouse, storage)
    daemon = Daemon(settings, adapters,
                    build_engine(adapters, settings, runner, local_runner=local_job_runner()),
                    today=lambda: date(2012, 7, 31))

    async def write(day: date) -> None:
        await storage.write(f"/store/data/streams_{day:%Y_%m_%d}_faked.tsv",
                            streams_day(day, 50).encode())

    async def wait_for(condition: object) -> None:
        with anyio.fail_after(5):
            while not callable(condition) or not condition():
                await anyio.sleep(0.01)

    for day in days("2012-07-01", "2012-07-30"):
        await write(day)
    async with anyio.create_task_group() as group:
        await group.start(daemon.run)
        root = Root("top10", date(2012, 7, 1))
        await wait_for(lambda: daemon.metrics.sensor_polls.value(sensor="storage") >= 2
                       and root in daemon.roots and not daemon.roots[root].evaluating)
        assert await registry.latest(TOP_ARTISTS, "2012-07") is None
        status = await daemon.status()
        [partition] = status["partitions"]
        assert partition["partition"] == "2012-07"
        assert any("streams_2012_07_31" in line for line in partition["waiting_for"])

        await write(date(2012, 7, 31))
        with anyio.fail_after(5):
            while await registry.latest(TOP_ARTISTS, "2012-07") is None:
                await anyio.sleep(0.01)
        await daemon.stop()
    assert daemon.metrics.launches.value(workflow="top10") == 2  # aggregate, then top 10
