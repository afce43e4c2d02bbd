"""A year of daily inputs is looked up in a few batched calls, not one call per day.

The Luigi example's ``Top10Artists`` over ``2012`` requires 366 ``Streams`` files; the
fakes below count every lookup the engine makes of storage and the registry. Leaves
each reading a registry input take it from the evaluation's one lookup of them all.
"""

from __future__ import annotations

import builtins
from collections import Counter
from collections.abc import Sequence
from datetime import date, timedelta

import pytest

from bench.noop_tasks import INPUT_ENDPOINT, LEAF_FILE, OUTPUT_ENDPOINT, Leaves
from jobs.luigi_top_artists import Streams, Top10Artists, streams_path
from orchestrator.core.report import Status
from orchestrator.intervals import parse_interval
from orchestrator.model import Revision
from orchestrator.stores.storage.base import ObjectInfo
from orchestrator.testing import InMemoryRegistry, InMemoryStateStore
from orchestrator.testing.clock import Clock
from orchestrator.testing.data import InMemoryStorage
from orchestrator.testing.world import World, build_world

DATA = "/data"
YEAR = parse_interval("2012")
FEW = 4
"""Lookups of one kind an evaluation may make, whatever the number of days."""


class CountingStorage(InMemoryStorage):
    def __init__(self, now: Clock) -> None:
        super().__init__(now=now)
        self.calls: Counter[str] = Counter()

    async def exists(self, uri: str) -> bool:
        self.calls["exists"] += 1
        return await super().exists(uri)

    async def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        self.calls["list"] += 1
        return await super().list(prefix)

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        self.calls["objects"] += 1
        return await super().objects(uris)


class CountingRegistry(InMemoryRegistry):
    def __init__(self, now: Clock) -> None:
        super().__init__(now)
        self.calls: Counter[str] = Counter()

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        self.calls["latest"] += 1
        return await super().latest(endpoint, partition)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        self.calls["latest_many"] += 1
        return await super().latest_many(endpoint, partitions)



@pytest.fixture
def world() -> World[CountingRegistry, InMemoryStateStore]:
    return build_world(registry=CountingRegistry, storage=CountingStorage, data_prefix=DATA,
                       real_time=True)


def counting(world: World[CountingRegistry, InMemoryStateStore]) -> CountingStorage:
    assert isinstance(world.storage, CountingStorage)
    return world.storage


async def write_year(
    world: World[CountingRegistry, InMemoryStateStore], skip: date | None = None
) -> None:
    day = YEAR.date_a
    while day < YEAR.date_b:
        if day != skip:
            await world.storage.write(f"{DATA}/{streams_path(day)}", b"0\tabba\tsos\n")
        day += timedelta(days=1)


def lookups(world: World[CountingRegistry, InMemoryStateStore]) -> int:
    return sum(counting(world).calls.values()) + sum(world.registry.calls.values())


async def test_a_year_is_looked_up_in_a_few_calls_first_run_and_re_run(
    world: World[CountingRegistry, InMemoryStateStore],
) -> None:
    await write_year(world)
    task = Top10Artists(date_interval=YEAR)
    first = await world.engine().run(task)
    assert first.exit_code == 0
    assert first.outcomes[task.task_id].status is Status.DONE
    # Lookups only: the runs themselves list their inputs' folders to read them.
    assert counting(world).calls["objects"] <= FEW, counting(world).calls
    assert counting(world).calls["exists"] == 0, counting(world).calls
    counting(world).calls.clear()
    world.registry.calls.clear()

    again = await world.engine().run(task)
    assert again.outcomes[task.task_id].status is Status.COMPLETE
    # 366 days: on one call per day this was 732 storage listings.
    assert sum(counting(world).calls.values()) <= FEW, counting(world).calls
    assert lookups(world) <= 3 * FEW, (counting(world).calls, world.registry.calls)


async def test_a_missing_day_is_still_named_after_a_batched_lookup(
    world: World[CountingRegistry, InMemoryStateStore],
) -> None:
    missing = date(2012, 6, 30)
    await write_year(world, skip=missing)
    report = await world.engine().run(Top10Artists(date_interval=YEAR))
    assert report.exit_code == 20
    assert report.missing == [f"{Streams(date=missing).task_id}: storage {streams_path(missing)}"]
    assert sum(counting(world).calls.values()) == 1, counting(world).calls


LEAVES = 20


class LookupsByEndpoint(InMemoryRegistry):
    def __init__(self, now: Clock) -> None:
        super().__init__(now)
        self.looked_up: Counter[str] = Counter()

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        self.looked_up[endpoint] += 1
        return await super().latest(endpoint, partition)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        self.looked_up[endpoint] += 1
        return await super().latest_many(endpoint, partitions)


async def test_leaves_take_their_inputs_from_the_batched_lookup_of_their_external_tasks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bench/oneshot_leaves.py's leaves: each reads a day's registry input, publishes a copy."""
    monkeypatch.setenv("BENCH_TASKS", str(LEAVES))
    world = build_world(registry=LookupsByEndpoint, real_time=True)
    for leaf in Leaves().requires():
        day = leaf.partition_label
        await world.storage.write(f"/in/{day}/{LEAF_FILE}", day.encode())
        await world.registry.publish(INPUT_ENDPOINT, day, f"/in/{day}")
    assert (await world.engine().run(Leaves())).exit_code == 0
    world.registry.looked_up.clear()

    again = await world.engine().run(Leaves())
    assert all(outcome.status.ok for outcome in again.outcomes.values())
    # One batched lookup of every leaf's input, then each leaf looks its output up; on
    # a look of each leaf's own inputs too this was 21 lookups of the input endpoint.
    assert world.registry.looked_up == {INPUT_ENDPOINT: 1, OUTPUT_ENDPOINT: LEAVES}
