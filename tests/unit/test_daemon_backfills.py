"""A backfill a daemon ran is taken over by one replica once that daemon is gone, never
while it lives, and never a command's. (Real processes stopped and killed:
tests/acceptance/test_daemon_backfill_cli.py.)"""

from __future__ import annotations

import dataclasses
from typing import Any

import anyio
import structlog

from orchestrator.core.backfill import backfill_record
from orchestrator.core.report import Report
from orchestrator.daemon.backfilling import backfill_days
from orchestrator.errors import StateStoreError
from orchestrator.intervals import parse_interval
from orchestrator.model import Backfill, BackfillOrder, BackfillState
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.task import Task
from orchestrator.testing.world import DaemonWorld
from tests.support.worlds import TODAY, publish_day, running
from tests.unit.test_replicas import replica_world

INTERVAL = "2018-09-01-2018-09-04"
TAKEN = "backfill taken over"


def daemons_backfill(world: DaemonWorld, owner: str) -> Backfill:
    """A running backfill of the world's workflow, as a daemon replica ``owner`` records it."""
    [workflow] = world.daemon.settings.workflows
    interval, order = parse_interval(INTERVAL), BackfillOrder.OLDEST
    roots = {day: root_task(workflow, day) for day in backfill_days(workflow, interval, order)}
    return dataclasses.replace(
        backfill_record("--module jobs.top_artists TopArtistsJob", INTERVAL, order, roots),
        workflow=workflow.name, max_parallel=2, owner=owner)


async def stored(world: DaemonWorld, backfill_id: str) -> Backfill:
    found = await world.state.get_backfill(backfill_id)
    assert found is not None
    return found


async def test_a_gone_replica_s_backfill_is_taken_over_by_one_replica_and_run() -> None:
    first = replica_world()
    second = first.with_daemon(first.daemon.settings, today=lambda: TODAY)
    record = await first.state.open_backfill(daemons_backfill(first, owner="gone"))
    with structlog.testing.capture_logs() as logs:
        async with running(first), running(second):
            await first.wait_for(lambda: len(first.daemon.membership.members) == 2)
            await second.wait_for(lambda: second.daemon.membership.heard)
            await first.daemon.backfills.take_over()
            await second.daemon.backfills.take_over()
            await first.wait_for(lambda: first.daemon.backfills.running is None
                                 and second.daemon.backfills.running is None)
    assert [entry["backfill"] for entry in logs if entry["event"] == TAKEN] == [record.id]
    ended = await stored(first, record.id)
    assert ended.owner == first.daemon.membership.replica
    # Its days' inputs are missing: evaluated, each ends so, and the backfill with them.
    assert (ended.state, len(ended.days)) == (BackfillState.FAILED, 3)


async def test_a_live_replica_s_backfill_a_command_s_and_another_definition_s_are_left(
) -> None:
    first = replica_world()
    second = first.with_daemon(first.daemon.settings, today=lambda: TODAY)
    async with running(first), running(second):
        await first.wait_for(lambda: len(first.daemon.membership.members) == 2)
        await second.wait_for(lambda: len(second.daemon.membership.members) == 2)
        live = await first.state.open_backfill(
            daemons_backfill(first, owner=first.daemon.membership.replica))
        commands = await first.state.open_backfill(dataclasses.replace(
            daemons_backfill(first, owner=""), id="bf-command", key="command", workflow=""))
        redefined = await first.state.open_backfill(dataclasses.replace(
            daemons_backfill(first, owner="gone"), id="bf-redefined", key="redefined"))
        await second.daemon.backfills.take_over()
        assert second.daemon.backfills.running is None
    for record in (live, commands, redefined):
        assert (await stored(first, record.id)).owner == record.owner


async def test_nothing_is_taken_over_before_the_live_replicas_are_known() -> None:
    world = replica_world()
    record = await world.state.open_backfill(daemons_backfill(world, owner="gone"))
    assert not world.daemon.membership.heard
    await world.daemon.backfills.take_over()
    assert (await stored(world, record.id)).owner == "gone"


async def test_a_replica_restarted_under_its_id_takes_its_backfill_back() -> None:
    world = replica_world()
    async with running(world):
        await world.wait_for(lambda: world.daemon.membership.heard)
        mine = world.daemon.membership.replica
        record = await world.state.open_backfill(daemons_backfill(world, owner=mine))
        await world.daemon.backfills.take_over()
        await world.wait_for(lambda: world.daemon.backfills.running is None)
    ended = await stored(world, record.id)
    assert (ended.owner, ended.state) == (mine, BackfillState.FAILED)


async def started_here(world: DaemonWorld) -> Backfill:
    """A backfill of the world's workflow, one day at a time, started through the
    running daemon once it knows the live replicas."""
    await world.wait_for(lambda: world.daemon.membership.heard)
    [workflow] = world.daemon.settings.workflows
    record = await world.daemon.backfills.start(
        workflow, parse_interval(INTERVAL), BackfillOrder.OLDEST, max_parallel=1)
    assert record is not None
    return record


async def test_a_backfill_a_store_outage_stopped_is_taken_back_and_ends() -> None:
    world = replica_world(timeout_seconds=1)
    state = world.daemon.adapters.state
    real = state.record_backfill_day
    failures = 1

    async def down_once(backfill_id: str, day: str, status: str, *, owner: str = "") -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise StateStoreError("the state store is restarting")
        await real(backfill_id, day, status, owner=owner)

    state.record_backfill_day = down_once  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            record = await started_here(world)
            await world.wait_for(lambda: any(entry["event"] == TAKEN for entry in logs))
            await world.wait_for(lambda: world.daemon.backfills.running is None)
    said = [entry for entry in logs if entry.get("backfill") == record.id]
    assert [entry["event"] for entry in said] == ["backfill stopped", TAKEN]
    # Why, not the task group it came out of.
    assert said[0]["error"] == "the state store is restarting"
    ended = await stored(world, record.id)
    assert (ended.state, len(ended.days)) == (BackfillState.FAILED, 3)


async def test_a_backfill_stopped_by_an_error_out_of_a_task_group_says_which() -> None:
    """An evaluation's error may come out of its task group, a group in the backfill's
    own: the log names it (a chaos run's said only "unhandled errors in a TaskGroup")."""
    world = replica_world(timeout_seconds=1)
    real = world.daemon.engine.run
    backfilled = {day.isoformat() for day in parse_interval(INTERVAL)}
    failures = 1

    async def fails_once_in_a_task_group(root: Task, *args: Any, **kwargs: Any) -> Report:
        nonlocal failures
        if failures and root.partition_label in backfilled:

            async def store_call() -> None:
                raise StateStoreError("connection was closed in the middle of operation")

            failures -= 1
            async with anyio.create_task_group() as group:
                group.start_soon(store_call)
        return await real(root, *args, **kwargs)

    world.daemon.engine.run = fails_once_in_a_task_group  # type: ignore[method-assign]
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            record = await started_here(world)
            await world.wait_for(lambda: any(entry["event"] == TAKEN for entry in logs))
            await world.wait_for(lambda: world.daemon.backfills.running is None)
    [stopped] = [entry for entry in logs if entry["event"] == "backfill stopped"]
    assert stopped["error"] == "connection was closed in the middle of operation"
    assert (await stored(world, record.id)).state is BackfillState.FAILED  # and it ended


async def test_a_backfill_cancelled_meanwhile_is_stopped_at_the_next_heartbeat() -> None:
    """Its day's job still going (held by the runner's gate): stopped then, not when the
    day ends, and no other day begins."""
    world = replica_world(timeout_seconds=1)
    world.runner.gate = anyio.Event()
    for day in ("2018-09-01", "2018-09-02", "2018-09-03"):
        await publish_day(world, day)
    with structlog.testing.capture_logs() as logs:
        async with running(world):
            record = await started_here(world)
            await world.wait_for(lambda: world.runner.running == 1)
            assert await world.state.cancel_backfill(record.id)
            await world.wait_for(lambda: world.daemon.backfills.running is None)
            assert not world.runner.gate.is_set()
    [stopped] = [entry for entry in logs if entry["event"] == "backfill stopped"]
    assert stopped["error"] == f"backfill {record.id} is cancelled now"
    assert len(world.runner.calls) == 1


async def test_a_backfill_that_ends_while_its_record_is_read_stops_nothing() -> None:
    """The heartbeat's look at the record began while the backfill ran, and the backfill
    ended before the answer came: a chaos run's daemon died of it."""
    world = replica_world(timeout_seconds=1)
    world.runner.gate = anyio.Event()
    await publish_day(world, "2018-09-01")
    looking, answer = anyio.Event(), anyio.Event()
    real = world.state.get_backfill

    async def slow_read(backfill_id: str) -> Backfill | None:
        looking.set()
        await answer.wait()
        return await real(backfill_id)

    async with running(world):
        record = await started_here(world)
        await world.wait_for(lambda: world.runner.running == 1)
        world.state.get_backfill = slow_read  # type: ignore[method-assign]
        await looking.wait()
        world.runner.gate.set()
        await world.wait_for(lambda: world.daemon.backfills.running is None)
        answer.set()
        await anyio.sleep(1)  # a heartbeat or two more, the daemon still up
        world.state.get_backfill = real  # type: ignore[method-assign]
    assert (await stored(world, record.id)).state is BackfillState.FAILED
