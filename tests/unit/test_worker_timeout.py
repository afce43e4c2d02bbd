"""A task's ``worker_timeout`` (Luigi's): a job or a run() that takes longer is stopped,
and its run fails as any failure does, retried by the next evaluation."""

from __future__ import annotations

from typing import ClassVar

import anyio
import pytest

from jobs.top_artists import TopArtistsJob
from orchestrator.core.report import Status
from orchestrator.errors import UsageError
from orchestrator.model import RunState
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import Task
from orchestrator.testing import job_options as options
from orchestrator.testing.world import World, build_world
from tests.support.worlds import publish_day

ENDPOINT = "di.golden.path.charon.top_artists"


@pytest.fixture
def world() -> World:
    return build_world(real_time=True)


class QuickTopArtists(TopArtistsJob):
    variant_of = TopArtistsJob
    worker_timeout = 0.2


class Stuck(Task):
    """Its run() never ends of itself."""

    date = DateParameter()
    worker_timeout: ClassVar[float | None] = 0.2

    def output(self) -> RegistryTarget:
        return RegistryTarget("stuck.output", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        await anyio.sleep_forever()


async def test_a_job_past_its_worker_timeout_is_cancelled_and_its_run_fails(
    world: World,
) -> None:
    await publish_day(world)
    world.runner.gate = anyio.Event()  # the job never ends of itself
    job = QuickTopArtists(date="2018-10-31", top_n=10)
    with anyio.fail_after(5):
        report = await world.engine().run(job)
    outcome = report.outcomes[job.task_id]
    assert outcome.status is Status.FAILED
    assert "stopped after 0.2 s, its worker_timeout" in outcome.detail
    assert world.runner.cancelled == ["fake-1"]
    assert world.runner.running == 0
    [run] = await world.state.list_runs()
    assert (run.state, run.failures) == (RunState.FAILED, 1)
    staging = TableSpec.parse(options(world.runner.calls[0])["bqOutput"])
    assert await world.warehouse.table_info(staging) is None  # its staging discarded
    assert await world.registry.list(ENDPOINT, "2018-10-31") == []

    world.runner.gate.set()  # the next attempt's job ends in time
    report = await world.engine().run(job)
    assert report.outcomes[job.task_id].status is Status.DONE


async def test_a_run_past_its_worker_timeout_is_stopped_and_fails(world: World) -> None:
    task = Stuck(date="2020-01-01")
    with anyio.fail_after(5):
        report = await world.engine().run(task)
    assert report.outcomes[task.task_id].status is Status.FAILED
    assert "worker_timeout" in report.outcomes[task.task_id].detail
    assert await world.registry.list("stuck.output", "2020-01-01") == []


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "60", True])
def test_a_worker_timeout_that_is_not_a_positive_number_is_refused(timeout: object) -> None:
    with pytest.raises(UsageError, match="worker_timeout must be a positive number"):
        type("Bad", (Task,), {"worker_timeout": timeout})
