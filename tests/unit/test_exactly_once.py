"""Every (task, partition) is published once per input state, whatever happens to the
workers running it: the seven ways a chaos run broke that promise, each replayed here
against in-memory stores, with two engines standing for two replicas."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import anyio
import pytest

from jobs.top_artists import END_CONTENT_FACT, TopArtistsJob
from orchestrator.core.report import Status
from orchestrator.errors import RegistryError
from orchestrator.model import Revision, Run, RunState
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import Task, WrapperTask
from orchestrator.testing import (
    Clock,
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    ProcessCrashed,
)
from orchestrator.testing.world import World, build_world
from tests.support.worlds import FlakyStateStore, make_world, output_revisions, publish_day

LEASE = timedelta(minutes=10)
DAY = "2018-10-31"
JOB = TopArtistsJob(date=DAY, top_n=10)
OUTPUT = "di.golden.path.charon.top_artists"
TRACK_ENTITY = TableSpec.parse("scio-playground:di_golden_path.track_entity_20181031")


class HoldingRegistry(InMemoryRegistry):
    """Holds the next publish of the job's output, as a worker paused at that moment
    (SIGSTOP) or a slow registry would; or fails it, as a registry outage would."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(now=clock)
        self._release: anyio.Event | None = None
        self._after_insert = False
        self.held = anyio.Event()
        self.fail_next_output: str | None = None

    def hold_next_output(self, *, after_insert: bool = False) -> anyio.Event:
        """Hold the next publish of the output until the returned event is set: before
        it reaches the registry, or after its revision is in but before it answers."""
        self._release, self._after_insert = anyio.Event(), after_insert
        return self._release

    async def publish(self, endpoint: str, partition: str, uri: str,
                      lineage: Sequence[str] = (), *,
                      idempotency_key: str | None = None) -> Revision:
        release = None
        if endpoint == OUTPUT:
            if self.fail_next_output:
                error, self.fail_next_output = self.fail_next_output, None
                raise RegistryError(error)
            release, self._release = self._release, None
        if release is not None and not self._after_insert:
            self.held.set()
            await release.wait()
        revision = await super().publish(endpoint, partition, uri, lineage,
                                         idempotency_key=idempotency_key)
        if release is not None and self._after_insert:
            self.held.set()
            await release.wait()
        return revision


Replicas = World[HoldingRegistry, InMemoryStateStore]
"""Workers whose engines share the stores, on a clock the tests move."""


@pytest.fixture
async def world() -> Replicas:
    world = build_world(registry=HoldingRegistry, lease=LEASE, max_concurrent_runs=2)
    await publish_day(world)
    return world


async def late_revision(world: Replicas) -> Revision:
    return await world.registry.publish(END_CONTENT_FACT, DAY, "/data/ecf/r2")


async def wait_until(condition: object, timeout: float = 5) -> None:
    assert callable(condition)
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.005)


async def staged_folders(world: Replicas) -> set[str]:
    """Every output folder in storage (a revision's folder or a run's staging)."""
    return {info.uri.rsplit("/", 1)[0] for info in await world.storage.list("/data/outputs/")}


async def incoming_tables(world: Replicas) -> list[str]:
    found = await world.warehouse.list_tables("scio-playground", "_incoming_EU")
    return [info.spec for info in found]


# 1. Daemons died on their own: a store error inside an evaluation left the daemon as an
#    ExceptionGroup, which the daemon did not catch.


async def test_a_store_error_in_an_evaluation_does_not_stop_the_daemon() -> None:
    world = make_world(state=FlakyStateStore)
    state = world.state
    state.broken = True
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world)
        await world.wait_for(lambda: any(s.error for s in world.daemon.roots.values()))
        status = await world.daemon.status()
        assert status["sources"]["evaluations"]["up"] is False
        assert "restarting" in status["sources"]["evaluations"]["last_error"]
        [partition] = [p for p in status["partitions"] if p["partition"] == DAY]
        assert "restarting" in partition["error"]
        state.broken = False  # back: the daemon tries again by itself, with backoff
        await world.wait_for(lambda: world.runner.calls != [])
        await world.wait_for(lambda: world.runner.running == 0)

        async def published() -> bool:
            return len(await output_revisions(world)) == 1

        with anyio.fail_after(5):
            while not await published():
                await anyio.sleep(0.01)
        await world.daemon.stop()
    assert world.daemon.metrics.evaluation_errors.value(workflow="top_artists") >= 1


# 2a. A run stopped after publication began was recorded FAILED, and the next claim
#     started it from scratch: one input set, two output revisions.


async def test_a_run_stopped_while_publishing_is_resumed_not_redone(world: Replicas) -> None:
    world.registry.hold_next_output(after_insert=True)
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await world.registry.held.wait()  # its revision is in, its answer not back yet
        group.cancel_scope.cancel()  # SIGTERM, or an evaluation cut short
    [run] = await world.state.list_runs()
    assert (run.state, run.lease_owner) == (RunState.PUBLISHING, None)  # released

    report = await world.run("worker-b", JOB)
    assert report.outcomes[JOB.task_id].status is Status.DONE
    [revision] = await output_revisions(world)
    [run] = await world.state.list_runs()
    assert (run.state, run.attempt, run.outputs["textOutput"]) == (
        RunState.SUCCEEDED, 2, revision.id,
    )  # fmt: skip
    assert len(world.runner.calls) == 1  # the job was not run again
    assert await staged_folders(world) == {revision.uri}


# 2b. A worker paused past its lease woke up and published after another replica had
#     taken the run over: two revisions of one input set.


async def test_a_worker_paused_past_its_lease_does_not_publish_twice(world: Replicas) -> None:
    release = world.registry.hold_next_output()  # A stops right before its registry write
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await world.registry.held.wait()
        world.advance(LEASE + timedelta(seconds=1))
        await world.run("worker-b", JOB)  # takes the publishing run over and finishes it
        assert world.outcome("worker-b", JOB) is Status.DONE
        release.set()  # A wakes up and carries on from where it stopped
    assert world.outcome("worker-a", JOB) is Status.WAITING
    assert len(world.runner.calls) == 1
    [revision] = await output_revisions(world)
    [run] = await world.state.list_runs()
    assert (run.state, run.attempt, run.outputs["textOutput"]) == (
        RunState.SUCCEEDED, 2, revision.id,
    )  # fmt: skip


# 3. Stale latest: two input states of one day ran at once, and the older published
#    last; nothing checked before publishing that the inputs were still the latest.


async def test_a_run_whose_inputs_changed_while_it_ran_is_not_published(world: Replicas) -> None:
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await wait_until(lambda: world.runner.running == 1)
        late = await late_revision(world)
        world.runner.gate.set()
    assert world.outcome("worker-a", JOB) is Status.DONE
    assert len(world.runner.calls) == 2  # the stale job's output was dropped, not published
    [revision] = await output_revisions(world)
    assert late.id in revision.lineage
    states = sorted(run.state for run in await world.state.list_runs())
    assert states == [RunState.SUCCEEDED, RunState.SUPERSEDED]
    assert await staged_folders(world) == {revision.uri}
    assert await incoming_tables(world) == []


async def test_replicas_never_publish_an_older_input_state_last(world: Replicas) -> None:
    slow = FakeJobRunner(world.warehouse, world.storage, gate=anyio.Event())
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: world.run("worker-a", JOB, runner=slow))
        await wait_until(lambda: slow.running == 1)
        late = await late_revision(world)
        await world.run("worker-b", JOB)  # newer inputs: supersedes A's run and publishes
        assert world.outcome("worker-b", JOB) is Status.DONE
        assert slow.gate is not None
        slow.gate.set()  # A's job finishes after B published
    [revision] = await output_revisions(world)
    assert late.id in revision.lineage
    assert await world.registry.latest(OUTPUT, DAY) == revision
    assert await staged_folders(world) == {revision.uri}
    assert await incoming_tables(world) == []


# 4. Overlapping executions: a worker paused past its lease kept its job running when
#    it woke, while the replica that took the run over ran it too.


async def test_a_job_left_running_by_a_lost_owner_is_stopped_before_it_runs_again(
    world: Replicas,
) -> None:
    world.runner.finds_jobs_by_name = False  # a local job: it cannot be followed
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await wait_until(lambda: world.runner.running == 1)
        world.advance(LEASE + timedelta(seconds=1))  # A is paused past its lease
        group.start_soon(world.run, "worker-b", JOB)
        await wait_until(lambda: len(world.runner.calls) == 2)
        world.runner.gate.set()
    assert world.runner.reaped == ["fake-1"]
    assert world.runner.most_running == 1
    assert world.outcome("worker-b", JOB) is Status.DONE
    assert world.outcome("worker-a", JOB) is not Status.DONE
    [revision] = await output_revisions(world)
    assert await staged_folders(world) == {revision.uri}


async def test_a_worker_stops_its_job_when_its_lease_cannot_be_renewed(world: Replicas) -> None:
    world.runner.gate = anyio.Event()
    short = timedelta(seconds=0.3)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: world.run("worker-a", JOB, lease=short))
        await wait_until(lambda: world.runner.running == 1)
        world.advance(short)  # the lease runs out on the store's clock
        await wait_until(lambda: world.runner.running == 0)  # stopped, without a rival
    assert world.outcome("worker-a", JOB) is Status.WAITING
    assert await output_revisions(world) == []


# 5. Leftovers: output folders of runs that failed after publishing began, runs left
#    publishing forever.


async def test_a_failed_publication_is_resumed_and_leaves_nothing_behind(world: Replicas) -> None:
    world.registry.fail_next_output = "the registry service is down"
    first = await world.run("worker-a", JOB)
    outcome = first.outcomes[JOB.task_id]
    assert outcome.status is Status.ERROR
    assert "to be resumed" in outcome.detail
    [run] = await world.state.list_runs()
    assert (run.state, run.lease_owner) == (RunState.PUBLISHING, None)

    await world.run("worker-b", JOB)
    assert world.outcome("worker-b", JOB) is Status.DONE
    assert len(world.runner.calls) == 1
    [revision] = await output_revisions(world)
    [run] = await world.state.list_runs()
    assert (run.state, run.outputs["textOutput"]) == (RunState.SUCCEEDED, revision.id)
    assert await staged_folders(world) == {revision.uri}
    assert await incoming_tables(world) == []


# 6. Runs that never end: a run whose owner died stayed active after newer inputs
#    arrived, since runs were claimed per input state.


async def test_newer_inputs_end_the_run_of_a_dead_owner(world: Replicas) -> None:
    world.runner.crash_after_start = True
    with pytest.raises(BaseExceptionGroup) as crashed:
        await world.run("worker-a", JOB)
    assert crashed.group_contains(ProcessCrashed)
    world.runner.crash_after_start = False
    late = await late_revision(world)
    await world.run("worker-b", JOB)  # its lease is still live: it does not wait for it
    assert world.outcome("worker-b", JOB) is Status.DONE
    runs = await world.state.list_runs()
    assert sorted(run.state for run in runs) == [RunState.SUCCEEDED, RunState.SUPERSEDED]
    assert not [run for run in runs if run.state.active]
    [revision] = await output_revisions(world)
    assert late.id in revision.lineage


# Also seen: one replica claimed work it had no place to run, and renewed its leases
# while it waited; the others idled.


class Days(WrapperTask):
    def requires(self) -> list[Task]:
        return [TopArtistsJob(date="2018-10-30", top_n=10), JOB]


async def test_a_run_is_claimed_only_with_a_place_free_to_run_it(world: Replicas) -> None:
    await world.warehouse.create_table(
        TableSpec.parse("scio-playground:di_golden_path.track_entity_20181030"),
        [Column("track_gid", "STRING")], [("t1",)],
    )
    await world.registry.publish(END_CONTENT_FACT, "2018-10-30", "/data/ecf/r0")
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: world.run("worker-a", Days(), max_concurrent_runs=1))
        await wait_until(lambda: world.runner.running == 1)
        await anyio.sleep(0.05)
        assert len(await world.state.list_runs()) == 1  # the other day is not claimed
        world.runner.gate.set()
    assert world.outcome("worker-a", Days()) is Status.COMPLETE
    assert len(await world.state.list_runs()) == 2


# Also seen: after SIGTERM a daemon went on starting the runs it had claimed, and
# "hand over" was "fail".


async def test_shutdown_claims_nothing_more_and_releases_what_is_running() -> None:
    world = make_world(max_runs=1)
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world, "2018-10-30")
        await publish_day(world, "2018-10-31")
        await world.wait_for(lambda: world.runner.running == 1)
        await world.daemon.stop()  # the job outlives the grace period
    [run] = await world.state.list_runs()  # the other day was never claimed
    assert (run.state, run.lease_owner) == (RunState.RUNNING, None)
    assert "resumed" in (run.error or "")
    assert world.runner.running == 0


# Also seen: failed runs were retried only when a new trigger arrived.


async def test_the_daemon_retries_a_failed_run_with_backoff_up_to_its_limit() -> None:
    world = make_world(max_attempts=2, retry_delay_seconds=1)
    world.runner.fail_with = "out of memory"
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(lambda: len(world.runner.calls) == 2, timeout=5)
        await anyio.sleep(1.5)  # past where a third try would be: the limit holds
        await world.daemon.stop()
    assert len(world.runner.calls) == 2
    [run] = await world.state.list_runs()
    assert (run.state, run.failures, run.error) == (RunState.FAILED, 2, "out of memory")


# Also seen: the lease keeper shared the event loop with CPU-bound run() methods.


class Crunch(Task):
    """Task code that computes for a second without awaiting anything."""

    def output(self) -> RegistryTarget:
        return RegistryTarget("charon.crunched", DAY)

    async def run(self, context: RunContext) -> None:
        time.sleep(1.0)  # noqa: ASYNC251  # the blocking task code under test
        await context.storage.write(f"{context.outputs['output']}/part", b"done\n")


async def test_cpu_bound_task_code_stalls_neither_the_loop_nor_the_lease() -> None:
    world = build_world(real_time=True)  # leases run out in real time here
    state = world.state
    engine = world.engine(max_concurrent_runs=1, lease=timedelta(seconds=0.3))
    gaps: list[float] = []

    async def tick() -> None:
        last = time.monotonic()
        while True:
            await anyio.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        report = await engine.run(Crunch())
        group.cancel_scope.cancel()
    assert report.outcomes[Crunch().task_id].status is Status.DONE
    assert max(gaps) < 0.25
    [run] = await state.list_runs()
    assert run.state is RunState.SUCCEEDED


# Found by the chaos run: a replica paused between its lookup and its claim claimed the
# older inputs, superseding the newer inputs' run, and ran the older ones again beside
# the job their own first run had left running.


class PausingStateStore(InMemoryStateStore):
    """Holds the next claim of one worker, as a process paused right before it would be."""

    def __init__(self, now: Clock) -> None:
        super().__init__(now=now)
        self.pause_owner: str | None = None
        self.paused = anyio.Event()
        self.resume = anyio.Event()

    async def claim(self, **request: Any) -> Run:
        if request["owner"] == self.pause_owner:
            self.pause_owner = None
            self.paused.set()
            await self.resume.wait()
        return await super().claim(**request)


async def test_a_claim_with_inputs_older_than_a_run_of_the_task_looks_them_up_again() -> None:
    world = build_world(registry=HoldingRegistry, state=PausingStateStore, lease=LEASE,
                        max_concurrent_runs=2)
    await publish_day(world)
    state = world.state
    state.pause_owner = "worker-a"
    slow = FakeJobRunner(world.warehouse, world.storage, gate=anyio.Event())
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await state.paused.wait()  # A looked the first revision up, then stopped
        late = await late_revision(world)
        group.start_soon(lambda: world.run("worker-b", JOB, runner=slow))
        await wait_until(lambda: slow.running == 1)  # B runs the newer inputs
        state.resume.set()  # A wakes and claims with what it looked up before
        await anyio.sleep(0.05)
        assert slow.gate is not None
        slow.gate.set()
    assert world.runner.calls == []  # A never ran the older inputs
    assert world.outcome("worker-b", JOB) is Status.DONE
    assert world.outcome("worker-a", JOB) in (Status.COMPLETE, Status.WAITING)
    runs = await state.list_runs()
    assert [run.state for run in runs] == [RunState.SUCCEEDED]
    [revision] = await output_revisions(world)
    assert late.id in revision.lineage


# Found by the chaos run: an outage around the job (here the registry, at the check of
# the inputs before publishing) failed the run, using one of its retries up.


class FlakyLookups(HoldingRegistry):
    fail_lookups = 0

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        if endpoint == END_CONTENT_FACT and self.fail_lookups:
            self.fail_lookups -= 1
            raise RegistryError("the registry service is restarting")
        return await super().latest(endpoint, partition)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        if endpoint == END_CONTENT_FACT and self.fail_lookups:
            self.fail_lookups -= 1
            raise RegistryError("the registry service is restarting")
        return await super().latest_many(endpoint, partitions)


async def test_an_outage_around_the_job_releases_the_run_and_uses_no_retry() -> None:
    world = build_world(registry=FlakyLookups, lease=LEASE, max_concurrent_runs=2)
    first = await publish_day(world)
    registry = world.registry

    async def fail_the_check_after_the_job() -> None:
        await wait_until(lambda: len(world.runner.calls) == 1)
        registry.fail_lookups = 1

    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(world.run, "worker-a", JOB)
        await fail_the_check_after_the_job()
        world.runner.gate.set()
    assert world.outcome("worker-a", JOB) is Status.ERROR
    [run] = await world.state.list_runs()
    assert (run.state, run.failures, run.lease_owner) == (RunState.RUNNING, 0, None)

    await world.run("worker-b", JOB)
    assert world.outcome("worker-b", JOB) is Status.DONE
    [revision] = await output_revisions(world)
    assert first.id in revision.lineage
    [run] = await world.state.list_runs()
    assert (run.state, run.failures) == (RunState.SUCCEEDED, 0)
    assert await staged_folders(world) == {revision.uri}
