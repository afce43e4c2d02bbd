"""The daemon against in-memory adapters: sensing, firing, late data, limits, shutdown."""

from __future__ import annotations

import dataclasses
import gc
import os
import signal
import time
from collections import Counter
from datetime import date, timedelta
from functools import partial

import anyio
import pytest
import structlog

from jobs.top_artists import END_CONTENT_FACT, TopArtistsJob
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.report import Outcome, Report
from orchestrator.daemon.daemon import MAX_CONCURRENT_EVALUATIONS
from orchestrator.daemon.watch import Watchlist
from orchestrator.errors import RegistryError, SourceNotAnswering, TaskCodeError, WarehouseError
from orchestrator.model import Revision, RunState
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.task import Task
from orchestrator.testing import FakeJobRunner, ProcessCrashed
from orchestrator.testing.world import DaemonWorld, build_world
from sensors.facts import Root, Trigger, registry_key
from tests.support.worlds import TODAY, make_world, output_revisions, publish_day, running


async def test_the_last_input_arriving_fires_the_run() -> None:
    async with running(make_world()) as world:
        await world.warehouse.create_table(
            TableSpec.parse("scio-playground:di_golden_path.track_entity_20181031"),
            [Column("track_gid", "STRING")], [("t1",)],
        )
        await anyio.sleep(0.05)
        assert world.runner.calls == []
        revision = await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r1")
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(lambda: world.runner.running == 0)
        await anyio.sleep(0.05)
        [published] = await output_revisions(world)
        assert revision.id in published.lineage
        assert world.daemon.metrics.launches.value(workflow="top_artists") == 1
        [latency] = world.daemon.metrics.trigger_latency.observations
        assert 0 < latency < 5  # timed from the publish's trigger to the launch


async def revisions(world: DaemonWorld, count: int) -> list[Revision]:
    with anyio.fail_after(5):
        while len(found := await output_revisions(world)) != count:
            await anyio.sleep(0.01)
    return found


async def test_a_late_revision_reruns_with_new_lineage() -> None:
    async with running(make_world()) as world:
        await publish_day(world)
        await revisions(world, 1)
        late = await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r2")
        await world.wait_for(lambda: len(world.runner.calls) == 2)
        newest, _ = await revisions(world, 2)
        assert late.id in newest.lineage


async def test_a_late_revision_during_the_run_replaces_it_before_it_publishes() -> None:
    async with running(make_world()) as world:
        world.runner.gate = anyio.Event()
        await publish_day(world)
        await world.wait_for(lambda: world.runner.running == 1)
        late = await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r2")
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 2)
        [only] = await revisions(world, 1)
        assert late.id in only.lineage


async def test_policy_ignore_keeps_the_first_result() -> None:
    world = make_world(policy="ignore")
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(lambda: world.runner.running == 0)
        await anyio.sleep(0.05)
        await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r2")
        await anyio.sleep(0.2)
        await world.daemon.stop()
    assert len(world.runner.calls) == 1
    assert len(await output_revisions(world)) == 1


async def test_the_workflow_limit_holds_runs_back() -> None:
    world = make_world(max_runs=1)
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world, "2018-10-30")
        await publish_day(world, "2018-10-31")
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await anyio.sleep(0.1)
        assert len(world.runner.calls) == 1
        status = await world.daemon.status()
        assert status["workflows"][0]["running"] == 1
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 2)
        await world.daemon.stop()
    assert world.runner.most_running == 1


@pytest.mark.parametrize(("workflow_runs", "engine_runs"), [(1, 4), (100, 1)])
async def test_days_at_a_limit_wait_without_holding_an_evaluator(
        workflow_runs: int, engine_runs: int) -> None:
    """A hundred days ready and one run at a time, under the workflow's limit or the
    engine's: the other 99 end their evaluations, waiting, rather than each hold one of
    the evaluators every workflow shares, and each runs in turn as a run gives its
    place back (none is forgotten)."""
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(100)]
    world = make_world(max_runs=workflow_runs, engine_runs=engine_runs,
                       lookback_days=len(days))
    world.runner.gate = anyio.Event()
    async with running(world):
        for day in days:
            await publish_day(world, day)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        # Their evaluations end as they find no place: waited for, not slept on (a
        # loaded machine took longer than a tenth of a second).
        await world.wait_for(lambda: sum(
            state.ready for state in world.daemon.roots.values()) == len(days) - 1 and sum(
            state.evaluating for state in world.daemon.roots.values()) == 1, timeout=10)
        assert (await world.daemon.status())["totals"]["waiting"] == len(days) - 1
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == len(days), timeout=60)
    assert world.runner.most_running == 1


async def test_a_day_waiting_for_a_place_a_user_s_run_held_runs_when_it_ends() -> None:
    """The engine's one place is held by a run the daemon did not start (a backfill's,
    through the daemon's engine): the day that found no place runs as that run ends."""
    world = make_world(engine_runs=1, lookback_days=1)
    world.runner.gate = anyio.Event()
    elsewhere = (TODAY - timedelta(days=30)).isoformat()  # not a day the daemon watches
    async with running(world), anyio.create_task_group() as group:
        await publish_day(world, elsewhere)
        group.start_soon(world.daemon.engine.run, TopArtistsJob(date=elsewhere, top_n=10))
        await world.wait_for(lambda: world.runner.running == 1)
        await publish_day(world, TODAY.isoformat())
        await world.wait_for(lambda: world.daemon.roots[Root("top_artists", TODAY)].ready)
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 2, timeout=10)


async def test_runs_the_daemon_did_not_start_wait_in_line_with_its_days() -> None:
    """A backfill through the daemon's engine, one place: its next run, asked for after
    a day of the daemon's found no place, runs after that day, not before (a run
    waiting for the engine's limit took each place given back, and a backfill kept the
    daemon's days waiting until it ended)."""
    world = make_world(engine_runs=1, lookback_days=1)
    world.runner.gate = anyio.Event()
    backfill = [(TODAY - timedelta(days=30 + n)).isoformat() for n in range(3)]
    engine = world.daemon.engine
    async with running(world), anyio.create_task_group() as group:
        for day in backfill:
            await publish_day(world, day)
        group.start_soon(engine.run, TopArtistsJob(date=backfill[0], top_n=10))
        await world.wait_for(lambda: world.runner.running == 1)
        group.start_soon(engine.run, TopArtistsJob(date=backfill[1], top_n=10))
        await anyio.sleep(0.05)
        await publish_day(world, TODAY.isoformat())
        await world.wait_for(lambda: world.daemon.roots[Root("top_artists", TODAY)].ready)
        group.start_soon(engine.run, TopArtistsJob(date=backfill[2], top_n=10))
        await anyio.sleep(0.05)
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 4, timeout=10)
    launched = [next(day for day in [*backfill, TODAY.isoformat()]
                     if day.replace("-", "") in " ".join(call)) for call in world.runner.calls]
    assert launched == [backfill[0], backfill[1], TODAY.isoformat(), backfill[2]]


async def test_a_waiting_day_another_worker_ran_meanwhile_passes_its_turn_on() -> None:
    """Days 2 and 3 wait, in that order, for day 1's place. Day 2 is run meanwhile by
    another worker (a user's ``charon run``): when the place comes free, day 3 runs,
    rather than wait for a run that will never give a place back."""
    world = make_world(max_runs=1, lookback_days=3)
    world.runner.gate = anyio.Event()
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(3)]
    async with running(world):
        def waiting(ready: int) -> bool:
            return len(world.runner.calls) == 1 and sum(
                state.ready for state in world.daemon.roots.values()) == ready

        for at, day in enumerate(days):  # one at a time: they wait in this order
            await publish_day(world, day)
            await world.wait_for(partial(waiting, at))
        other_worker = Engine(world.daemon.adapters,
                              runner=FakeJobRunner(world.warehouse, world.storage),
                              beam=load_settings({}).beam, max_concurrent_runs=1,
                              lease=timedelta(minutes=1))
        await other_worker.run(TopArtistsJob(date=days[1], top_n=10))
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 2, timeout=10)
    ran = [" ".join(call) for call in world.runner.calls]
    assert [day for day in days if any(day in call for call in ran)] == [days[0], days[2]]


async def test_running_jobs_leave_the_evaluators_to_everything_else() -> None:
    """An engine allowed more runs at once than the daemon has evaluators besides: every
    place is taken (each run's evaluation waits on its job), and a day that comes in
    meanwhile is still evaluated."""
    runs = MAX_CONCURRENT_EVALUATIONS + 6
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(runs + 1)]
    world = make_world(max_runs=runs, engine_runs=runs, lookback_days=len(days))
    world.runner.gate = anyio.Event()
    async with running(world):
        for day in days[:runs]:
            await publish_day(world, day)
        await world.wait_for(lambda: world.runner.running == runs, timeout=20)
        await publish_day(world, days[-1])
        await world.wait_for(lambda: world.daemon.roots[Root("top_artists", date.fromisoformat(
            days[-1]))].ready, timeout=10)
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == len(days), timeout=30)


async def test_status_says_what_each_partition_waits_for() -> None:
    async with running(make_world()) as world:
        await world.wait_for(lambda: all(s.verdict for s in world.daemon.roots.values()))
        status = await world.daemon.status()
        assert [p["partition"] for p in status["partitions"]] == ["2018-10-31", "2018-10-30"]
        waiting = status["partitions"][0]["waiting_for"]
        assert any(END_CONTENT_FACT in line for line in waiting)
        assert any("track_entity_20181031" in line for line in waiting)


async def test_a_run_requested_for_a_day_outside_the_window_fires() -> None:
    world = make_world()
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world, "2018-01-15")
        await anyio.sleep(0.1)
        assert world.runner.calls == []
        assert world.daemon.accept(
            Trigger("webhook", roots=(Root("top_artists", date(2018, 1, 15)),))
        )
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.daemon.stop()


@pytest.mark.parametrize(("error", "said"), [
    (RegistryError("registry unavailable"), "sensor poll failed"),
    # A bug, or an answer no adapter foresaw: it ended the daemon before.
    (KeyError("revisions"), "sensor poll crashed"),
], ids=["an outage", "an error no adapter foresaw"])
async def test_a_failing_source_is_retried_and_never_stops_the_daemon(
    error: Exception, said: str
) -> None:
    world = make_world()
    failures = 3
    real_changes = world.registry.changes

    async def flaky_changes(since_seq: int, limit: int = 1000) -> list[Revision]:
        nonlocal failures
        if failures:
            failures -= 1
            raise error
        return await real_changes(since_seq, limit)

    world.registry.changes = flaky_changes  # type: ignore[method-assign]
    await world.warehouse.create_table(
        TableSpec.parse("scio-playground:di_golden_path.track_entity_20181031"),
        [Column("track_gid", "STRING")], [("t1",)],
    )
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            # The table's fact taken and every evaluation done: the daemon is idle.
            await world.wait_for(lambda: bool(world.daemon.roots) and all(
                state.verdict and not state.evaluating for state in world.daemon.roots.values()
            ) and world.daemon.metrics.triggers.value(source="warehouse") == 1)
            # Only the registry feed can tell the daemon about this revision.
            await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r1")
            await world.wait_for(lambda: len(world.runner.calls) == 1, timeout=10)
    assert world.daemon.metrics.sensor_errors.value(sensor="registry") == 3
    assert world.daemon.metrics.sources["registry"].failures == 0  # up again
    assert [entry["event"] for entry in logs if entry.get("sensor") == "registry"] == [said] * 3


def warehouse_fails(world: DaemonWorld, error: Exception) -> None:
    """Every lookup and listing of the world's warehouse raises ``error``."""

    async def fail(*args: object) -> None:
        raise error

    world.warehouse.table_info = fail  # type: ignore[method-assign,assignment]
    world.warehouse.list_tables = fail  # type: ignore[method-assign,assignment]


async def test_a_day_failing_again_and_again_is_said_once_then_counted() -> None:
    world = make_world()
    warehouse_fails(world, WarehouseError("BigQuery answered 503"))
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            # Retried with the backoff: 20 ms, 40 ms, 80 ms... (polls every 10 ms here).
            await world.wait_for(lambda: any(
                state.errors >= 6 for state in world.daemon.roots.values()), timeout=20)
    said = [entry for entry in logs if entry["event"] == "evaluation failed; trying again later"]
    assert sorted(entry["root"] for entry in said) == sorted(map(str, world.daemon.roots))
    assert {entry["failures"] for entry in said} == {1}  # each day's first, and no other
    again = [entry for entry in logs
             if entry["event"] == "evaluations failed; each tried again later"]
    assert 1 <= len(again) <= 2  # one at once, the rest counted for 10 s
    assert again[0]["log_level"] == "warning"
    assert "BigQuery answered 503" in again[0]["error"]


async def test_days_a_silent_source_fails_are_counted_from_their_first_failure() -> None:
    """The source's guard says it once for them all: the days' failures, first ones too,
    are counted into one line, not said a line a day."""
    world = make_world(lookback_days=20)
    warehouse_fails(world, SourceNotAnswering(
        "the warehouse is not answering (no answer within 30 s)"))
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            await world.wait_for(lambda: len(world.daemon.roots) > 1 and all(
                state.errors >= 2 for state in world.daemon.roots.values()), timeout=20)
    assert not [entry for entry in logs
                if entry["event"] == "evaluation failed; trying again later"]
    counted = [entry for entry in logs
               if entry["event"] == "evaluations failed; each tried again later"]
    assert 1 <= len(counted) <= 3
    assert "the warehouse is not answering" in counted[0]["error"]


async def test_shutdown_lets_a_running_job_finish_within_the_grace_period() -> None:
    world = make_world()
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world)
        await world.wait_for(lambda: world.runner.running == 1)
        group.start_soon(world.daemon.stop)
        await anyio.sleep(0.1)
        world.runner.gate.set()
    [run] = await world.state.list_runs()
    assert run.state is RunState.SUCCEEDED


async def test_shutdown_stops_a_job_past_the_grace_period_and_hands_its_run_over() -> None:
    world = make_world()
    world.runner.gate = anyio.Event()
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world)
        await world.wait_for(lambda: world.runner.running == 1)
        await world.daemon.stop()
    [run] = await world.state.list_runs()
    assert (run.state, run.lease_owner, run.failures) == (RunState.RUNNING, None, 0)
    assert await output_revisions(world) == []
    world.runner.gate.set()
    engine = Engine(world.daemon.adapters, runner=world.runner, beam=load_settings({}).beam,
                    max_concurrent_runs=1, lease=timedelta(minutes=1))
    await engine.run(TopArtistsJob(date="2018-10-31", top_n=10))  # at once, no lease to wait
    [run] = await world.state.list_runs()
    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 2)
    assert len(await output_revisions(world)) == 1


def test_target_keys_index_the_roots_they_affect_once_their_graphs_are_indexed() -> None:
    """Reading the window resolves no graph: a root's first evaluation indexes it, and
    until then every key may be watched (a webhook for it is taken, not refused)."""
    watch = make_world().daemon.watch
    key = registry_key(END_CONTENT_FACT, "2018-10-31")
    added = watch.refresh(TODAY)
    assert watch.roots_for([key]) == set()
    assert watch.watches("registry:nothing.reads.this:2018-10-31")
    for root in added:
        watch.index(root)
    assert watch.roots_for([key]) == {Root("top_artists", TODAY)}
    assert not watch.watches("registry:nothing.reads.this:2018-10-31")
    assert watch.watches(key)


async def test_a_run_held_by_a_dead_replica_is_taken_over_when_its_lease_runs_out() -> None:
    """Another daemon claimed the day with a short lease and died mid-job."""
    world = make_world()
    await publish_day(world)
    dead_replica = Engine(world.daemon.adapters, runner=world.runner,
                          beam=load_settings({}).beam, max_concurrent_runs=1,
                          lease=timedelta(seconds=0.5))
    world.runner.crash_after_start = True
    with pytest.raises(BaseExceptionGroup) as crashed:
        await dead_replica.run(TopArtistsJob(date="2018-10-31", top_n=10))
    assert crashed.group_contains(ProcessCrashed)
    world.runner.crash_after_start = False

    async with running(world):
        await world.wait_for(lambda: world.runner.reattached == ["fake-1"])
        with anyio.fail_after(5):
            while not await output_revisions(world):
                await anyio.sleep(0.01)
    [run] = await world.state.list_runs()
    assert (run.state, run.attempt) == (RunState.SUCCEEDED, 2)
    assert len(world.runner.calls) == 1  # reattached, never launched twice


async def test_a_second_signal_ends_the_grace_period_at_once() -> None:
    world = make_world(grace_seconds=30)
    world.runner.gate = anyio.Event()
    with anyio.fail_after(10):  # far less than the 30 s grace
        async with anyio.create_task_group() as group:
            await group.start(world.daemon.run)
            await publish_day(world)
            await world.wait_for(lambda: world.runner.running == 1)
            os.kill(os.getpid(), signal.SIGTERM)
            await world.wait_for(lambda: world.daemon.stopping)
            await anyio.sleep(0.1)
            assert world.runner.running == 1  # the grace period: the job goes on
            os.kill(os.getpid(), signal.SIGTERM)
    [run] = await world.state.list_runs()
    assert (run.state, run.lease_owner) == (RunState.RUNNING, None)  # released


async def test_a_sweep_of_thousands_of_days_runs_on_a_bounded_pool_of_tasks() -> None:
    """Every watched day is evaluated at start-up, by a fixed pool of evaluators taking
    them from a queue: the tasks alive at once do not grow with the days watched."""
    days = 3000
    before = evaluated_objects()
    world = make_world()
    workflow = dataclasses.replace(world.daemon.settings.workflows[0], lookback_days=days - 1)
    settings = dataclasses.replace(world.daemon.settings, workflows=(workflow,))
    world = build_world(real_time=True).with_daemon(settings, today=lambda: TODAY)
    most = 0

    async def count_tasks() -> None:
        nonlocal most
        while True:
            most = max(most, len(anyio.get_running_tasks()))
            await anyio.sleep(0.001)

    async with anyio.create_task_group() as counting:
        counting.start_soon(count_tasks)
        async with running(world):
            await world.wait_for(lambda: len(world.daemon.roots) == days and all(
                state.verdict for state in world.daemon.roots.values()), timeout=60)
        counting.cancel_scope.cancel()
    # Each evaluation holds a few tasks of its own (its task group, its lease keeper).
    assert most < MAX_CONCURRENT_EVALUATIONS * 5 < days
    # What the daemon keeps of a day is its verdict: no report, outcome or task object
    # (counted against what other tests left alive before this one began).
    kept = evaluated_objects() - before
    assert sum(state.verdict is not None for state in world.daemon.roots.values()) == days
    assert kept.total() < days / 10, kept


def evaluated_objects() -> Counter[str]:
    """The reports, outcomes and tasks alive, by type."""
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects()
                   if isinstance(o, Report | Outcome | Task))


def test_the_window_gains_only_the_days_since_it_was_last_looked_at() -> None:
    """The minute-by-minute check: nothing new the same day; the next day adds just it."""
    watch = make_world().daemon.watch
    assert [root.day for root in watch.refresh(TODAY)] == [TODAY - timedelta(days=1), TODAY]
    assert watch.refresh(TODAY) == []
    tomorrow = TODAY + timedelta(days=1)
    assert watch.refresh(tomorrow) == [Root("top_artists", tomorrow)]
    assert watch.refresh(TODAY) == []  # a clock set back takes nothing away, adds nothing
    assert len(watch.roots) == 3


async def test_a_blocked_event_loop_shows_in_the_metrics() -> None:
    async with running(make_world()) as world:
        await anyio.sleep(0.15)
        # Blocking the loop on purpose: this is what the probe is there to see.
        time.sleep(0.4)  # noqa: ASYNC251
        await anyio.sleep(0.25)
        metrics = world.daemon.metrics
        assert metrics.loop_lag_max.value() >= 0.25
        assert "charon_event_loop_lag_seconds_bucket" in metrics.render()


def test_roots_added_one_by_one_keep_every_listing_in_order() -> None:
    """A day asked for or brought in by the window goes in its place in the sorted
    listings, which a page may be walking meanwhile (it keeps the list it took)."""
    watch = make_world().daemon.watch
    watch.refresh(TODAY)
    taken = watch.newest_first()
    days = [TODAY - timedelta(days=400), TODAY + timedelta(days=1), TODAY - timedelta(days=1)]
    for day in days:
        watch.add(Root("top_artists", day))
    every = [TODAY - timedelta(days=400), TODAY - timedelta(days=1), TODAY,
             TODAY + timedelta(days=1)]
    assert [root.day for root in watch.roots] == every
    assert [root.day for root in watch.newest_first()] == every[::-1]
    assert watch.days_newest_first() == every[::-1]
    assert [root.day for root in taken] == [TODAY, TODAY - timedelta(days=1)]


class Unbuildable(TopArtistsJob):
    """A workflow task whose requires() fails for every day."""

    def requires(self) -> dict[str, Task]:
        raise RuntimeError("no inputs for this day")


def test_a_root_whose_graph_cannot_be_built_stops_keeping_every_key_watched() -> None:
    workflow = dataclasses.replace(make_world().daemon.settings.workflows[0],
                                   module=__name__, task="Unbuildable")
    watch = Watchlist([workflow])
    [root, *others] = watch.refresh(TODAY)
    for each in (root, *others):
        with pytest.raises(TaskCodeError, match=r"requires\(\) raised RuntimeError: no inputs"):
            watch.index(each)
    assert not watch.watches(registry_key(END_CONTENT_FACT, "2018-10-31"))
    with pytest.raises(TaskCodeError):
        watch.index(root)  # tried again, and still counted once
    assert not watch.indexing


def test_a_workflows_roots_are_its_own_oldest_first_whatever_else_is_watched() -> None:
    """What the graph page steps through and the charts page draws: found by bisection
    in the sorted roots, never by walking every watched day."""
    [top] = make_world().daemon.settings.workflows
    other = dataclasses.replace(top, name="a_first", lookback_days=5)
    watch = Watchlist([dataclasses.replace(top, lookback_days=2), other])
    watch.refresh(TODAY)
    watch.add(Root("top_artists", date(2017, 1, 1)))  # asked for, outside the window
    assert [(r.workflow, r.day.isoformat()) for r in watch.of_workflow("top_artists")] == [
        ("top_artists", "2017-01-01"), ("top_artists", "2018-10-29"),
        ("top_artists", "2018-10-30"), ("top_artists", "2018-10-31")]
    assert len(watch.of_workflow("a_first")) == 6
    assert watch.of_workflow("nobody") == []
