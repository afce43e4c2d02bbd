"""Days asked of the daemon (a webhook's run request, the API's trigger) are kept in the
state store until an evaluation of them ends: a daemon that dies before evaluating one
loses nothing, since another replica, or the same one restarted, takes it up. (A real
daemon SIGKILLed after its 202: tests/acceptance/test_daemon_outages.py.)"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from functools import partial
from typing import Any

import anyio

from orchestrator.daemon.membership import watched
from orchestrator.model import Asked, Rerun, RunState
from orchestrator.testing.world import DaemonWorld
from sensors.facts import Root, Trigger
from tests.support.worlds import TODAY, FlakyStateStore, make_world, publish_day, running

WORKFLOW = "top_artists"
OUTSIDE = date(2018, 3, 1)
"""A day outside the daemon's window: nothing but its request evaluates it."""


async def none_kept(world: DaemonWorld) -> None:
    with anyio.fail_after(5):
        while await world.state.asked():
            await anyio.sleep(0.005)


def daemon_world(**daemon_settings: Any) -> DaemonWorld:
    """A world whose daemon has these ``daemon.*`` settings."""
    world = make_world()
    settings = world.daemon.settings
    daemon = dataclasses.replace(settings.daemon, **daemon_settings)
    return world.with_daemon(dataclasses.replace(settings, daemon=daemon), today=lambda: TODAY)


def settled(world: DaemonWorld) -> bool:
    return not any(state.evaluating for state in world.daemon.roots.values())


def launched_outside(world: DaemonWorld) -> bool:
    return any(OUTSIDE.strftime("%Y%m%d") in " ".join(call) for call in world.runner.calls)


async def test_a_request_whose_replica_is_gone_is_taken_up_and_served() -> None:
    world = make_world()
    await publish_day(world, OUTSIDE.isoformat())
    await world.state.ask(Asked("asked-1", WORKFLOW, OUTSIDE, "a-replica-long-gone"))
    async with running(world):
        await world.wait_for(lambda: launched_outside(world))
        await none_kept(world)


async def test_a_replica_restarted_under_its_id_takes_its_own_requests_back() -> None:
    world = daemon_world(replica_id="charon-0")
    await publish_day(world, OUTSIDE.isoformat())
    await world.state.ask(Asked("asked-1", WORKFLOW, OUTSIDE, "charon-0"))
    async with running(world):
        await world.wait_for(lambda: launched_outside(world))
        await none_kept(world)


async def test_a_live_replicas_request_is_left_to_it_until_it_is_gone() -> None:
    world = daemon_world(replica_timeout_seconds=1)
    settings = world.daemon.settings
    await publish_day(world, OUTSIDE.isoformat())
    # Another replica, live for a second more, took the request and beats no more.
    await world.state.heartbeat("other", [watched(settings.workflows[0])],
                                timedelta(seconds=1))
    await world.state.ask(Asked("asked-1", WORKFLOW, OUTSIDE, "other"))
    async with running(world):
        assert len(world.daemon.membership.members) == 2
        await anyio.sleep(0.3)
        assert not launched_outside(world)
        await world.wait_for(lambda: launched_outside(world))
        await none_kept(world)


async def test_a_request_stays_kept_while_its_evaluations_fail() -> None:
    world = make_world(state=FlakyStateStore)
    world.state.broken = True
    await publish_day(world, OUTSIDE.isoformat())
    await world.state.ask(Asked("asked-1", WORKFLOW, OUTSIDE, "a-replica-long-gone"))
    async with running(world):
        await world.wait_for(lambda: any(
            state.errors >= 2 for root, state in world.daemon.roots.items()
            if root.day == OUTSIDE))
        assert [asked.id for asked in await world.state.asked()] == ["asked-1"]
        world.state.broken = False
        await world.wait_for(lambda: launched_outside(world))
        await none_kept(world)


async def test_a_kept_rerun_runs_its_run_again_once_however_often_it_is_served() -> None:
    """Served by a replica that then dies before forgetting it, a re-run is served again
    by the next: the claim restarts only the generation the user saw, so the run is
    not run a third time."""
    world = make_world()
    async with running(world):
        await publish_day(world)
        await world.wait_for(lambda: bool(world.runner.calls))
        with anyio.fail_after(5):
            while not (runs := await world.state.list_runs(state=RunState.SUCCEEDED)):
                await anyio.sleep(0.005)
    [run] = runs
    asked = Asked("asked-1", WORKFLOW, TODAY, "a-replica-long-gone",
                  Rerun(run.task_id, run.fingerprint, run.generation))
    for _served in range(2):
        await world.state.ask(asked)
        world = world.with_daemon(world.daemon.settings, today=lambda: TODAY)
        async with running(world):
            await none_kept(world)
            await world.wait_for(partial(settled, world))
    assert len(world.runner.calls) == 2
    [rerun] = await world.state.list_runs(state=RunState.SUCCEEDED)
    assert (rerun.id, rerun.generation) == (run.id, run.generation + 1)


def is_ready(world: DaemonWorld, root: Root) -> bool:
    """Whether ``root`` has all it needs and waits for its workflow's place."""
    return (state := world.daemon.roots.get(root)) is not None and state.ready


async def ask_for(world: DaemonWorld, root: Root, rerun: Rerun | None = None) -> None:
    """What the daemon's API does for a trigger (or a re-run) of ``root``."""
    asked = world.daemon.asking.new(root, rerun)
    await world.state.ask(asked)
    if rerun is None:
        assert world.daemon.take(Trigger("api", roots=(root,), asked=(asked.id,)))
    else:
        assert world.daemon.rerun(rerun, asked.id)


async def test_a_request_for_a_day_waiting_for_its_workflow_s_place_is_kept_until_it_runs(
) -> None:
    world = make_world(max_runs=1)
    world.runner.gate = anyio.Event()
    await publish_day(world, OUTSIDE.isoformat())
    async with running(world):
        await publish_day(world)
        await world.wait_for(lambda: len(world.runner.calls) == 1)  # the place is taken
        outside = Root(WORKFLOW, OUTSIDE)
        await ask_for(world, outside)
        await world.wait_for(partial(is_ready, world, outside))
        assert len(await world.state.asked()) == 1  # a daemon killed now loses nothing
        world.runner.gate.set()
        await world.wait_for(lambda: launched_outside(world))
        await none_kept(world)


async def test_a_re_run_of_a_day_waiting_for_its_workflow_s_place_runs_in_its_turn() -> None:
    world = make_world(max_runs=1, lookback_days=2)
    today, yesterday = TODAY.isoformat(), (TODAY - timedelta(days=1)).isoformat()
    async with running(world):
        await publish_day(world, today)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(partial(settled, world))
        [run] = await world.state.list_runs()
        world.runner.gate = anyio.Event()
        await publish_day(world, yesterday)
        await world.wait_for(lambda: len(world.runner.calls) == 2)  # the place is taken
        root = Root(WORKFLOW, TODAY)
        await ask_for(world, root, Rerun(run.task_id, run.fingerprint, run.generation))
        await world.wait_for(partial(is_ready, world, root))
        world.runner.gate.set()
        await world.wait_for(lambda: len(world.runner.calls) == 3)
        await none_kept(world)
    assert [" ".join(call).count(TODAY.strftime("%Y%m%d")) > 0
            for call in world.runner.calls] == [True, False, True]


async def test_a_re_run_whose_evaluation_fails_runs_once_the_store_answers() -> None:
    """The store fails the evaluation a user's re-run asked for: the re-run is not
    dropped with it, but runs when the evaluation is tried again."""
    world = make_world(state=FlakyStateStore)
    async with running(world):
        await publish_day(world)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(partial(settled, world))
        [run] = await world.state.list_runs()
        world.state.broken = True
        root = Root(WORKFLOW, TODAY)
        await ask_for(world, root, Rerun(run.task_id, run.fingerprint, run.generation))
        await world.wait_for(lambda: world.daemon.roots[root].errors >= 2)
        world.state.broken = False
        await world.wait_for(lambda: len(world.runner.calls) == 2)
        await none_kept(world)
