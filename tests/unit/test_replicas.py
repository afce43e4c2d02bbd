"""Daemon replicas over one world share the watched days: what their sensors see change
is evaluated by the day's owner alone, and a replica that leaves hands its days over.
(Real processes killed and paused: tests/acceptance/test_replicas_cli.py.)"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

import anyio

from orchestrator.daemon.membership import Membership, rendezvous, watched
from orchestrator.owners import lease_owner
from orchestrator.testing.stores import InMemoryStateStore
from orchestrator.testing.world import DaemonWorld
from sensors.facts import Root
from tests.support.owners import ended_owner, paused_owner
from tests.support.worlds import TODAY, make_world, publish_day, running

DAYS = 24
WORKFLOW = "top_artists"


def replica_world(timeout_seconds: int = 4) -> DaemonWorld:
    """A daemon watching DAYS days, whose heartbeat runs out after ``timeout_seconds``."""
    world = make_world(max_runs=DAYS)
    settings = world.daemon.settings
    workflow = dataclasses.replace(settings.workflows[0], lookback_days=DAYS - 1)
    settings = dataclasses.replace(
        settings, workflows=(workflow,),
        daemon=dataclasses.replace(settings.daemon, replica_timeout_seconds=timeout_seconds))
    return world.with_daemon(settings, today=lambda: TODAY)


def watched_days() -> list[date]:
    return [TODAY - timedelta(days=n) for n in range(DAYS)]


def owned(world: DaemonWorld) -> int:
    return sum(world.daemon.membership.owns(Root(WORKFLOW, day)) for day in watched_days())


def launched(world: DaemonWorld) -> int:
    return int(world.daemon.metrics.launches.value(workflow=WORKFLOW))


async def publish_every_day(world: DaemonWorld) -> None:
    for day in watched_days():
        await publish_day(world, day.isoformat())


async def test_replicas_split_the_days_whose_inputs_their_sensors_see_arrive() -> None:
    first = replica_world()
    second = first.with_daemon(first.daemon.settings, today=lambda: TODAY)
    async with running(first), running(second):
        await first.wait_for(lambda: len(first.daemon.membership.members) == 2)
        assert first.daemon.membership.members == second.daemon.membership.members
        assert "charon_replicas 2" in first.daemon.metrics.render().splitlines()
        await publish_every_day(first)
        await first.wait_for(lambda: len(first.runner.calls) == DAYS)
        await anyio.sleep(0.2)  # time for a second launch of any day
    assert len(first.runner.calls) == DAYS
    assert (launched(first), launched(second)) == (owned(first), owned(second))
    assert min(launched(first), launched(second)) > 0  # both did some: 2^-23 to fail


async def test_a_replica_that_left_has_its_waiting_days_evaluated_by_the_others() -> None:
    """The second replica stops (its sensors and evaluations with it) while it still
    counts as live: the first leaves that replica's days alone, inputs or not, until the
    stopped replica leaves; then it evaluates them without another change to see."""
    first = replica_world()
    second = first.with_daemon(first.daemon.settings, today=lambda: TODAY)
    async with running(first):
        async with running(second):
            await first.wait_for(lambda: len(first.daemon.membership.members) == 2)
            await second.daemon.stop()
            await publish_every_day(first)
            await first.wait_for(lambda: launched(first) == owned(first))
            await anyio.sleep(0.3)
            assert len(first.runner.calls) == owned(first) < DAYS
        await first.wait_for(lambda: len(first.runner.calls) == DAYS)
        assert first.daemon.membership.members == (first.daemon.membership.replica,)
    assert launched(first) == DAYS
    runs = await first.state.list_runs()
    assert len({run.partition for run in runs}) == len(runs) == DAYS


async def test_a_replica_that_stops_beating_is_dropped_when_its_heartbeat_runs_out() -> None:
    first = replica_world(timeout_seconds=1)
    silent = "silent-replica"
    await first.state.heartbeat(silent, [watched(first.daemon.settings.workflows[0])],
                                timedelta(seconds=1))
    async with running(first):
        assert first.daemon.membership.members == tuple(sorted((first.daemon.engine.owner,
                                                                silent)))
        await first.wait_for(lambda: first.daemon.membership.members == (
            first.daemon.engine.owner,), timeout=3)
        await publish_every_day(first)
        await first.wait_for(lambda: len(first.runner.calls) == DAYS)


async def test_a_replica_restarted_under_its_id_takes_its_days_back_at_once() -> None:
    """Killed a moment ago, "replica-b" still counts as live for a long while: under a
    new id its days would wait that long for anyone to evaluate them."""
    first = replica_world(timeout_seconds=600)
    await first.state.heartbeat("replica-b", [watched(first.daemon.settings.workflows[0])],
                                timedelta(seconds=600))
    settings = first.daemon.settings
    restarted = first.with_daemon(dataclasses.replace(
        settings, daemon=dataclasses.replace(settings.daemon, replica_id="replica-b")),
        today=lambda: TODAY)
    async with running(first), running(restarted):
        assert restarted.daemon.membership.members == tuple(sorted(
            (first.daemon.engine.owner, "replica-b")))
        await publish_every_day(first)
        await first.wait_for(lambda: len(first.runner.calls) == DAYS)
    assert launched(restarted) == owned(restarted) > 0


async def test_replicas_defining_a_workflow_otherwise_or_not_at_all_own_none_of_its_days(
) -> None:
    """In the middle of a rolling change of the configuration, say: a replica that does
    not watch the workflow as the first does must not be given its days."""
    first = replica_world()
    settings = first.daemon.settings
    other = dataclasses.replace(settings.workflows[0], params=(("top_n", 5),))
    otherwise = first.with_daemon(dataclasses.replace(settings, workflows=(other,)),
                                  today=lambda: TODAY)
    elsewhere = first.with_daemon(dataclasses.replace(settings, workflows=()),
                                  today=lambda: TODAY)
    async with running(first), running(otherwise), running(elsewhere):
        await first.wait_for(lambda: len(first.daemon.membership.members) == 1 and len(
            otherwise.daemon.membership.members) == 1)
        await publish_every_day(first)
        # Each definition of the day runs once, by the replica defining it so.
        await first.wait_for(lambda: len(first.runner.calls) == 2 * DAYS)
    assert (launched(first), launched(otherwise), launched(elsewhere)) == (DAYS, DAYS, 0)


def test_a_replica_joining_or_leaving_moves_only_the_days_it_takes_or_gives_up() -> None:
    roots = [Root(WORKFLOW, date(2000, 1, 1) + timedelta(days=n)) for n in range(3000)]
    two, three = ("replica-a", "replica-b"), ("replica-a", "replica-b", "replica-c")
    for root in roots:
        if rendezvous(three, root) != "replica-c":
            assert rendezvous(three, root) == rendezvous(two, root)
    shares = Counter(rendezvous(three, root) for root in roots)
    assert all(800 < share < 1200 for share in shares.values()), shares  # a third each
    assert all(rendezvous(("only",), root) == "only" for root in roots)


class HangingStateStore(InMemoryStateStore):
    """A heartbeat that never comes back (a lock it waits for is never let go)."""

    async def heartbeat(self, replica: str, watched: Sequence[str],
                        ttl: timedelta) -> list[tuple[str, str]]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")


async def test_a_heartbeat_that_hangs_gives_up_within_the_replica_timeout() -> None:
    world = replica_world(timeout_seconds=1)
    membership = Membership(HangingStateStore(), "alone", timedelta(seconds=1),
                            world.daemon.settings.workflows)
    with anyio.fail_after(3):
        assert await membership.beat() is None
    assert membership.members == ("alone",)


async def test_a_replica_killed_on_this_machine_is_dropped_at_once_and_removed() -> None:
    """Its heartbeat has not run out, but its process is provably gone: its days are the
    others' at their next heartbeat, not in a replica timeout. A paused one stays."""
    workflows = replica_world().daemon.settings.workflows
    names = [watched(workflow) for workflow in workflows]
    state = InMemoryStateStore()
    hour = timedelta(hours=1)
    with paused_owner() as paused:
        killed = ended_owner()
        for replica in (killed, paused):
            await state.heartbeat(replica, names, hour)
        membership = Membership(state, lease_owner(), hour, workflows)
        await membership.beat()
        assert membership.members == tuple(sorted((membership.replica, paused)))
        assert membership.live == {membership.replica, paused}
        # Removed from the store: a replica of another machine stops counting it too.
        assert {replica for replica, _ in await state.heartbeat(paused, names, hour)} == {
            membership.replica, paused}
