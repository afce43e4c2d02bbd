"""A restarted engine finishes what a crashed one started, without doing anything twice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import anyio
import pytest

from jobs.top_artists import TopArtistsJob
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.report import Status
from orchestrator.errors import RunConflict, StateStoreError
from orchestrator.model import Revision, Run, RunState
from orchestrator.tablespec import TableSpec
from orchestrator.testing import (
    InMemoryRegistry,
    InMemoryStateStore,
    ProcessCrashed,
)
from orchestrator.testing.world import World as InMemoryWorld
from orchestrator.testing.world import build_world
from tests.support.worlds import publish_day

LEASE = timedelta(minutes=10)
JOB = TopArtistsJob(date="2018-10-31", top_n=10)
OUTPUT = "di.golden.path.charon.top_artists"
FINAL = TableSpec.parse("scio-playground:charon.top_artists_daily20181031")


class CrashingRegistry(InMemoryRegistry):
    """Dies (as a process would) on the first publish of the job's output."""

    crash_next_output = True

    async def publish(self, endpoint: str, partition: str, uri: str,
                      lineage: Sequence[str] = (), *,
                      idempotency_key: str | None = None) -> Revision:
        if endpoint == OUTPUT and self.crash_next_output:
            self.crash_next_output = False
            raise ProcessCrashed("between the table move and the publish")
        return await super().publish(endpoint, partition, uri, lineage,
                                     idempotency_key=idempotency_key)


class CrashingStateStore(InMemoryStateStore):
    """Dies right after publication, before the success is recorded; or fails then."""

    crash_next_success = False
    fail_next_success = False

    async def succeed(self, run_id: str, attempt: int, outputs: Mapping[str, str]) -> Run:
        if self.crash_next_success:
            self.crash_next_success = False
            raise ProcessCrashed("before recording success")
        if self.fail_next_success:
            self.fail_next_success = False
            raise StateStoreError("database is locked")
        return await super().succeed(run_id, attempt, outputs)


World = InMemoryWorld[CrashingRegistry, CrashingStateStore]


@pytest.fixture
async def world() -> World:
    world = build_world(registry=CrashingRegistry, state=CrashingStateStore, lease=LEASE,
                        max_concurrent_runs=2)
    world.registry.crash_next_output = False
    await publish_day(world)
    return world


async def crash_once(world: World) -> None:
    with pytest.raises(BaseExceptionGroup) as crashed:
        await world.engine().run(JOB)
    assert crashed.group_contains(ProcessCrashed)
    world.advance(LEASE + timedelta(seconds=1))


async def run_to_success(world: World) -> Run:
    report = await world.engine().run(JOB)
    outcome = report.outcomes[JOB.task_id]
    assert outcome.status is Status.DONE, outcome.detail
    [run] = await world.state.list_runs()
    return run


async def test_a_restarted_engine_reattaches_to_the_running_job(world: World) -> None:
    world.runner.crash_after_start = True
    await crash_once(world)
    [crashed] = await world.state.list_runs()
    assert (crashed.state, crashed.job_id) == (RunState.RUNNING, "fake-1")
    assert crashed.staged  # recorded before the job started

    world.runner.crash_after_start = False
    run = await run_to_success(world)
    assert world.runner.reattached == ["fake-1"]
    assert len(world.runner.calls) == 1  # never a second job for the same run
    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 2)
    [revision] = await world.registry.list(OUTPUT, "2018-10-31")
    assert revision.uri == crashed.staged["textOutput"]


async def test_a_job_that_cannot_be_followed_is_cleaned_up_and_launched_again(
    world: World,
) -> None:
    world.runner.crash_after_start = True
    await crash_once(world)
    [crashed] = await world.state.list_runs()
    world.runner.reattachable.clear()  # the job died with its process
    world.runner.crash_after_start = False
    run = await run_to_success(world)
    assert len(world.runner.calls) == 2
    assert run.staged != crashed.staged
    [revision] = await world.registry.list(OUTPUT, "2018-10-31")
    assert revision.uri == run.staged["textOutput"]


async def test_a_crash_between_the_move_and_the_publish_neither_copies_twice_nor_loses_it(
    world: World,
) -> None:
    world.registry.crash_next_output = True
    await crash_once(world)
    [crashed] = await world.state.list_runs()
    assert crashed.state is RunState.PUBLISHING
    moved = await world.warehouse.table_info(FINAL)
    assert moved is not None

    run = await run_to_success(world)
    assert len(world.runner.calls) == 1  # the job is not run again
    again = await world.warehouse.table_info(FINAL)
    assert again == moved  # the retried move found the first copy: no second copy
    [revision] = await world.registry.list(OUTPUT, "2018-10-31")
    assert run.outputs["textOutput"] == revision.id


async def test_a_crash_after_publishing_reuses_the_revision(world: World) -> None:
    world.state.crash_next_success = True
    await crash_once(world)
    [published] = await world.registry.list(OUTPUT, "2018-10-31")

    run = await run_to_success(world)
    assert await world.registry.list(OUTPUT, "2018-10-31") == [published]
    assert run.outputs["textOutput"] == published.id


async def test_a_failure_after_publishing_began_keeps_it_and_resumes_it(world: World) -> None:
    """A revision, once published, may already be read downstream: its data stays, and
    the run is finished with those same outputs, never published again."""
    world.state.fail_next_success = True
    report = await world.engine().run(JOB)
    assert report.outcomes[JOB.task_id].status is Status.ERROR
    [published] = await world.registry.list(OUTPUT, "2018-10-31")
    assert await world.adapters.storage.list(published.uri)
    assert await world.warehouse.table_info(FINAL) is not None
    [released] = await world.state.list_runs()
    assert (released.state, released.lease_owner) == (RunState.PUBLISHING, None)

    run = await run_to_success(world)
    assert run.state is RunState.SUCCEEDED
    assert await world.registry.list(OUTPUT, "2018-10-31") == [published]
    assert run.outputs["textOutput"] == published.id
    assert len(world.runner.calls) == 1


async def test_a_crash_before_the_job_id_was_recorded_relaunches_to_the_same_places(
    world: World,
) -> None:
    """A job submitted just before the crash can then be found by its name."""
    real_set_job_id = world.state.set_job_id

    async def crash_instead(run_id: str, attempt: int, job_id: str) -> Run:
        raise ProcessCrashed("before the job id was recorded")

    world.state.set_job_id = crash_instead  # type: ignore[method-assign]
    await crash_once(world)
    [crashed] = await world.state.list_runs()
    assert crashed.staged
    assert crashed.job_id is None

    world.state.set_job_id = real_set_job_id  # type: ignore[method-assign]
    run = await run_to_success(world)
    assert len(world.runner.calls) == 2
    assert world.runner.job_names[0] == world.runner.job_names[1]
    assert run.staged == crashed.staged


async def test_an_outage_recording_the_job_id_releases_the_run_without_failing_it(
    world: World,
) -> None:
    """The job goes down with the write that failed: the run itself did not fail, so the
    outage costs it none of its retries (seen in the chaos run, a connection cut)."""
    real_set_job_id = world.state.set_job_id

    async def outage(run_id: str, attempt: int, job_id: str) -> Run:
        raise StateStoreError("the connection was closed in the middle of operation")

    world.state.set_job_id = outage  # type: ignore[method-assign]
    report = await world.engine().run(JOB)
    assert report.outcomes[JOB.task_id].status is Status.ERROR
    [released] = await world.state.list_runs()
    assert (released.state, released.lease_owner, released.failures) == (
        RunState.RUNNING, None, 0)

    world.state.set_job_id = real_set_job_id  # type: ignore[method-assign]
    run = await run_to_success(world)
    assert (run.failures, run.attempt) == (0, 2)


async def test_a_long_job_keeps_its_lease(world: World) -> None:
    world.runner.gate = anyio.Event()
    engine = Engine(world.adapters, runner=world.runner, beam=load_settings({}).beam,
                    max_concurrent_runs=1, lease=timedelta(seconds=0.3))
    async with anyio.create_task_group() as group:
        group.start_soon(engine.run, JOB)
        with anyio.fail_after(5):
            while world.runner.running == 0:
                await anyio.sleep(0.01)
        # Nearly three leases pass on the store's clock, with time for the keeper to
        # renew in between: without renewal the lease would long have run out.
        for _ in range(3):
            world.advance(timedelta(seconds=0.27))
            await anyio.sleep(0.25)
        with pytest.raises(RunConflict):
            await world.state.claim(
                task_id=JOB.task_id, family="TopArtistsJob", partition="2018-10-31",
                fingerprint=(await world.state.list_runs())[0].fingerprint, inputs=[],
                owner="another-worker", lease=LEASE,
            )
        world.runner.gate.set()
    [run] = await world.state.list_runs()
    assert run.state is RunState.SUCCEEDED


async def test_a_run_whose_lease_is_lost_stops_and_leaves_its_staging(world: World) -> None:
    world.runner.gate = anyio.Event()

    async def refused(run_id: str, attempt: int, lease: timedelta) -> Run:
        raise RunConflict("another worker took the run over")

    world.state.renew = refused  # type: ignore[method-assign]
    engine = Engine(world.adapters, runner=world.runner, beam=load_settings({}).beam,
                    max_concurrent_runs=1, lease=timedelta(seconds=0.15))
    with anyio.fail_after(5):
        report = await engine.run(JOB)
    outcome = report.outcomes[JOB.task_id]
    assert outcome.status is Status.WAITING
    assert "lease" in outcome.detail
    [run] = await world.state.list_runs()
    # Neither failed nor cleaned up: the run, its job and its staging now belong to the
    # worker that took it over.
    assert run.state is RunState.RUNNING
    assert set(run.staged) == {"textOutput", "bqOutput"}
    assert run.job_id == "fake-1"
    assert world.runner.cancelled == []
    assert await world.registry.list(OUTPUT, "2018-10-31") == []
