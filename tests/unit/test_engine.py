"""The engine against in-memory adapters and a fake job runner (our own JobRunner Protocol)."""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import ClassVar

import anyio.lowlevel
import pytest
import structlog

from jobs.top_artists import END_CONTENT_FACT, TopArtistsJob
from orchestrator.config import load_settings
from orchestrator.core.engine import EVALUATORS, Engine
from orchestrator.core.report import Outcome, Report, Status
from orchestrator.log import bound_context, merge_log_context
from orchestrator.model import Revision, RunState
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.params import DateParameter, IntParameter, Parameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import (
    ExternalTask,
    LookupDaily,
    SparkSubmitTask,
    Task,
    WrapperTask,
)
from orchestrator.testing import FakeJobRunner, InMemoryRegistry
from orchestrator.testing import job_options as options
from orchestrator.testing.world import World, build_world
from tests.support.worlds import publish_day

TRACK_ENTITY = TableSpec.parse("scio-playground:di_golden_path.track_entity_20181031")
FINAL = TableSpec.parse("scio-playground:charon.top_artists_daily20181031")
ENDPOINT = "di.golden.path.charon.top_artists"


@pytest.fixture
def world() -> World:
    return build_world(real_time=True)


JOB = TopArtistsJob(date="2018-10-31", top_n=10)


async def test_missing_inputs_exit_20_listing_them_and_launch_nothing(world: World) -> None:
    report = await world.engine().run(JOB)
    assert report.exit_code == 20
    assert len(report.missing) == 2
    assert any(END_CONTENT_FACT in line for line in report.missing)
    assert any(str(TRACK_ENTITY) in line for line in report.missing)
    assert world.runner.calls == []
    assert await world.state.list_runs() == []


async def test_an_evaluation_leaves_nothing_for_the_cyclic_collector(world: World) -> None:
    """A daemon evaluates every watched day: what an evaluation leaves in reference
    cycles (its graph, outcomes, task group) waits for the collector's full passes,
    each of which blocks the event loop for longer the more days are watched."""
    engine = world.engine()
    await engine.run(JOB)  # first uses fill caches of their own
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            await engine.run(JOB)
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_one_missing_input_is_the_only_one_listed(world: World) -> None:
    await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r1")
    report = await world.engine().run(JOB)
    assert report.exit_code == 20
    assert report.missing == [f"TrackEntity(date=2018-10-31): table {TRACK_ENTITY}"]


async def test_a_run_publishes_with_lineage_moves_the_table_and_drops_staging(
    world: World,
) -> None:
    input_revision = (await publish_day(world)).id
    report = await world.engine().run(JOB)
    assert report.exit_code == 0
    outcome = report.outcomes[JOB.task_id]
    assert outcome.status is Status.DONE
    [argv] = world.runner.calls
    given = options(argv)
    assert given["endContentFact"] == "/data/ecf/r1/*.avro"
    assert given["trackEntity"] == str(TRACK_ENTITY)
    assert given["textOutput"].startswith(f"/data/outputs/{ENDPOINT}/2018-10-31/")
    assert given["bqOutput"].startswith("scio-playground:_incoming_EU._top_artists_daily20181031_")

    [published] = await world.registry.list(ENDPOINT, "2018-10-31")
    assert published.uri == given["textOutput"]
    assert input_revision in published.lineage
    assert any(item.startswith(f"{TRACK_ENTITY}@") for item in published.lineage)
    assert await world.warehouse.read_rows(FINAL) == [{"artist_gid": "a1", "streams": 3}]
    assert await world.warehouse.table_info(TableSpec.parse(given["bqOutput"])) is None
    [run] = await world.state.list_runs()
    assert (run.state, run.job_id, run.outputs["textOutput"]) == (
        RunState.SUCCEEDED, "fake-1", published.id
    )


async def test_a_second_run_does_nothing(world: World) -> None:
    await publish_day(world)
    await world.engine().run(JOB)
    report = await world.engine().run(JOB)
    assert report.exit_code == 0
    assert report.outcomes[JOB.task_id].status is Status.COMPLETE
    assert len(world.runner.calls) == 1
    assert len(await world.registry.list(ENDPOINT, "2018-10-31")) == 1


async def test_a_new_input_revision_reruns_with_new_lineage(world: World) -> None:
    await publish_day(world)
    await world.engine().run(JOB)
    late = await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r2")
    report = await world.engine().run(JOB)
    assert report.outcomes[JOB.task_id].status is Status.DONE
    newest, older = await world.registry.list(ENDPOINT, "2018-10-31")
    assert late.id in newest.lineage
    assert late.id not in older.lineage
    assert options(world.runner.calls[-1])["endContentFact"] == "/data/ecf/r2/*.avro"


async def test_a_failing_job_leaves_nothing_visible(world: World) -> None:
    await publish_day(world)
    world.runner.fail_with = "pipeline crashed"
    report = await world.engine().run(JOB)
    assert report.exit_code == 1
    assert "pipeline crashed" in report.outcomes[JOB.task_id].detail
    given = options(world.runner.calls[0])
    assert await world.registry.list(ENDPOINT, "2018-10-31") == []
    assert await world.warehouse.table_info(FINAL) is None
    assert await world.warehouse.table_info(TableSpec.parse(given["bqOutput"])) is None
    assert await world.storage.list(given["textOutput"]) == []
    [run] = await world.state.list_runs()
    assert run.state is RunState.FAILED

    world.runner.fail_with = None
    report = await world.engine().run(JOB)
    assert report.exit_code == 0
    [run] = await world.state.list_runs()
    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 2)


async def test_a_job_that_writes_nothing_fails_validation(world: World) -> None:
    await publish_day(world)
    world.runner.write_outputs = False
    report = await world.engine().run(JOB)
    assert report.exit_code == 1
    assert "wrote nothing" in report.outcomes[JOB.task_id].detail
    assert await world.registry.list(ENDPOINT, "2018-10-31") == []


class Ranked(Task):
    """An in-process task downstream of the job: reads its text output, writes its own."""

    n = IntParameter()

    def requires(self) -> dict[str, Task]:
        return {"top": TopArtistsJob(date="2018-10-31", top_n=self.n)}

    def output(self) -> RegistryTarget:
        return RegistryTarget("charon.ranked", "2018-10-31")

    async def run(self, context: RunContext) -> None:
        source = context.inputs["top.textOutput"].ref.removesuffix("/*")
        text = await context.storage.read(f"{source}/part")
        await context.storage.write(f"{context.outputs['output']}/part", text.upper())


async def test_downstream_tasks_fire_after_their_upstream_publishes(world: World) -> None:
    await publish_day(world)
    report = await world.engine().run(Ranked(n=10))
    assert report.exit_code == 0
    [upstream] = await world.registry.list(ENDPOINT, "2018-10-31")
    [downstream] = await world.registry.list("charon.ranked", "2018-10-31")
    assert upstream.id in downstream.lineage
    assert any(item.startswith(f"{FINAL}@") for item in downstream.lineage)
    assert await world.storage.read(f"{downstream.uri}/part") == b"A1\tARTIST\t3\n"


class Fanout(WrapperTask):
    def requires(self) -> list[Task]:
        return [TopArtistsJob(date="2018-10-31", top_n=n) for n in range(1, 7)]


async def test_runs_respect_the_concurrency_limit(world: World) -> None:
    await publish_day(world)
    report = await world.engine(max_concurrent_runs=2).run(Fanout())
    assert all(
        report.outcomes[TopArtistsJob(date="2018-10-31", top_n=n).task_id].status is Status.DONE
        for n in range(1, 7)
    )
    assert len(world.runner.calls) == 6
    assert world.runner.most_running == 2


def test_exit_codes_follow_luigi() -> None:
    def report(*statuses: Status) -> Report:
        outcomes = {f"t{i}": Outcome(f"t{i}", s, "x") for i, s in enumerate(statuses)}
        return Report("t0", outcomes)

    assert report(Status.DONE).exit_code == 0
    assert report(Status.COMPLETE).exit_code == 0
    assert report(Status.BLOCKED, Status.MISSING).exit_code == 20
    assert report(Status.BLOCKED, Status.MISSING, Status.FAILED).exit_code == 1
    assert report(Status.FAILED).exit_code == 1


class SparkApp(SparkSubmitTask):
    app = "/apps/aggregate.py"

    def output(self) -> RegistryTarget:
        return RegistryTarget("charon.spark.out", "2018-10-31")


async def test_spark_jobs_run_locally_whatever_runs_beam_jobs(world: World) -> None:
    local = FakeJobRunner(world.warehouse, world.storage)
    engine = Engine(world.adapters, runner=world.runner, beam=load_settings({}).beam,
                    max_concurrent_runs=1, lease=timedelta(hours=1), local_runner=local)
    await engine.run(SparkApp())
    assert world.runner.calls == []
    [argv] = local.calls
    assert "/apps/aggregate.py" in argv


class LogsFromRun(Task):
    date = DateParameter()

    async def run(self, context: RunContext) -> None:
        structlog.get_logger("user").info("working")


class TwoDaysLogging(WrapperTask):
    def requires(self) -> list[Task]:
        return [LogsFromRun(date="2018-10-30"), LogsFromRun(date="2018-10-31")]


async def test_a_run_logs_with_its_task_partition_run_and_attempt(world: World) -> None:
    with structlog.testing.capture_logs(processors=[merge_log_context]) as logs:
        report = await world.engine().run(TwoDaysLogging())
    assert report.exit_code == 0
    working = [line for line in logs if line["event"] == "working"]
    runs = await world.state.list_runs()
    assert {
        (line["task"], line["partition"], line["run_id"], line["attempt"]) for line in working
    } == {(run.task_id, run.partition, run.id, 1) for run in runs}
    assert len(working) == 2
    assert bound_context() == {}


class SlowRegistry(InMemoryRegistry):
    """Counts the lookups in flight; each takes a few scheduling rounds."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.most_in_flight = 0

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        for _ in range(3):
            await anyio.lowlevel.checkpoint()
        self.in_flight -= 1
        return await super().latest(endpoint, partition)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        await anyio.lowlevel.checkpoint()
        self.in_flight -= 1
        return await super().latest_many(endpoint, partitions)


class ManyDays(WrapperTask):
    def requires(self) -> list[Task]:
        first = date(2018, 1, 1)
        return [
            LookupDaily(endpoint="bench.input", partition=first + timedelta(days=n))
            for n in range(EVALUATORS + 100)
        ]


async def test_an_evaluation_looks_up_a_bounded_number_of_inputs_at_once(world: World) -> None:
    registry = SlowRegistry()
    adapters = dataclasses.replace(world.adapters, registry=registry)
    engine = Engine(adapters, runner=world.runner, beam=load_settings({}).beam,
                    max_concurrent_runs=4, lease=timedelta(hours=1))
    report = await engine.run(ManyDays())
    assert len(report.missing) == EVALUATORS + 100  # every one was looked up
    # Together, in one batched lookup: never more than the evaluators at once.
    assert registry.most_in_flight == 1


class CountedDay(ExternalTask):
    day = DateParameter()
    asked: ClassVar[list[date]] = []

    def output(self) -> RegistryTarget:
        CountedDay.asked.append(self.day)
        return RegistryTarget("counted.input", self.day.isoformat())


class CountedDays(WrapperTask):
    def requires(self) -> list[Task]:
        return [CountedDay(day=date(2012, 1, 1) + timedelta(days=n)) for n in range(3)]


async def test_an_evaluation_asks_each_task_for_its_outputs_once(world: World) -> None:
    """output() follows from the parameters: a year of daily inputs is 366 calls of it,
    not one for each time the engine looks at an input."""
    CountedDay.asked.clear()
    for n in range(3):
        await world.registry.publish("counted.input", f"2012-01-0{n + 1}", f"/in/{n}")
    report = await world.engine().run(CountedDays())
    assert report.exit_code == 0
    assert sorted(CountedDay.asked) == [date(2012, 1, n) for n in (1, 2, 3)]


@dataclass
class Meeting:
    """Every Gathering run waits until all of them are running at once."""

    expected: int
    running: int = 0
    everyone: anyio.Event | None = None


MEETING = Meeting(expected=EVALUATORS + 50)


class Gathering(Task):
    n = IntParameter()

    async def run(self, context: RunContext) -> None:
        assert MEETING.everyone is not None
        MEETING.running += 1
        if MEETING.running == MEETING.expected:
            MEETING.everyone.set()
        await MEETING.everyone.wait()


class Crowd(WrapperTask):
    def requires(self) -> list[Task]:
        return [Gathering(n=n) for n in range(MEETING.expected)]


async def test_a_limit_above_the_evaluators_still_runs_that_many_at_once(world: World) -> None:
    MEETING.running, MEETING.everyone = 0, anyio.Event()
    with anyio.fail_after(10):
        report = await world.engine(max_concurrent_runs=MEETING.expected).run(Crowd())
    assert report.exit_code == 0
    assert MEETING.running == MEETING.expected


@dataclass
class Handshake:
    """Waiting runs wait until the Signal run has run."""

    signalled: anyio.Event | None = None


HANDSHAKE = Handshake()


class Start(Task):
    async def run(self, context: RunContext) -> None:
        return None


class Waiting(Task):
    name = Parameter[str]()

    def requires(self) -> Task | None:
        return Start() if self.name == "after start" else None

    async def run(self, context: RunContext) -> None:
        assert HANDSHAKE.signalled is not None
        await HANDSHAKE.signalled.wait()


class Signal(Task):
    def requires(self) -> Task:
        return Start()

    async def run(self, context: RunContext) -> None:
        assert HANDSHAKE.signalled is not None
        HANDSHAKE.signalled.set()


class WaitAndSignal(WrapperTask):
    def requires(self) -> list[Task]:
        return [Waiting(name="from the start"), Waiting(name="after start"), Signal()]


async def test_nodes_ready_together_start_together_while_others_still_run(world: World) -> None:
    """Start's finish readies two nodes while a third still runs: both must start."""
    HANDSHAKE.signalled = anyio.Event()
    with anyio.fail_after(5):
        report = await world.engine().run(WaitAndSignal())
    assert report.exit_code == 0
