"""Completeness as Luigi defines it, on the Luigi example over in-memory adapters: an output
that is gone makes its task run again, its dependents follow when their inputs moved on,
and an input with no data is an error rather than an empty answer."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from jobs.luigi_top_artists import (
    ARTIST_STREAMS,
    TOP_ARTISTS,
    AggregateArtists,
    ArtistToplistToDatabase,
    Top10Artists,
)
from orchestrator.core.policy import Policy
from orchestrator.core.report import Report, Status
from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import Task
from orchestrator.testing.world import World, build_world
from tests.unit.test_top_artists_example import DATA, write_days

# Days 1 to 6: the interval covers them whether its end day counts (charon until now) or
# not (Luigi's custom intervals).
DAYS = [date(2012, 7, 1) + timedelta(days=n) for n in range(6)]
INTERVAL = "2012-07-01-2012-07-06"
LOAD = ArtistToplistToDatabase(date_interval=INTERVAL)
AGGREGATE = AggregateArtists(date_interval=INTERVAL)
TOP10 = Top10Artists(date_interval=INTERVAL)


@pytest.fixture
def world() -> World:
    return build_world(database=True, output_prefix="/out", data_prefix=DATA, real_time=True)


async def delete_latest(world: World, endpoint: str) -> None:
    """The output's file removed from storage, its registry revision left in place."""
    revision = await world.registry.latest(endpoint, INTERVAL)
    assert revision is not None
    assert await world.storage.delete_prefix(revision.uri + "/") == 1


def statuses(report: Report) -> dict[str, Status]:
    return {task_id: outcome.status for task_id, outcome in report.outcomes.items()
            if not task_id.startswith("Streams(")}


async def test_outputs_deleted_below_a_complete_task_stay_deleted_as_in_luigi(
    world: World,
) -> None:
    """Luigi asks a complete task nothing more: what it was built from is not rebuilt."""
    await write_days(world, DAYS)
    await world.engine().run(LOAD)
    await delete_latest(world, ARTIST_STREAMS)
    await delete_latest(world, TOP_ARTISTS)

    report = await world.engine().run(LOAD)

    assert statuses(report) == {task.task_id: Status.COMPLETE
                                for task in (AGGREGATE, TOP10, LOAD)}
    assert "rebuilt when it is asked for" in report.outcomes[AGGREGATE.task_id].detail
    assert len(await world.registry.list(ARTIST_STREAMS, INTERVAL)) == 1
    assert len(await world.registry.list(TOP_ARTISTS, INTERVAL)) == 1


async def test_a_deleted_aggregate_asked_for_is_rebuilt_alone(world: World) -> None:
    await write_days(world, DAYS)
    await world.engine().run(TOP10)
    await delete_latest(world, ARTIST_STREAMS)

    report = await world.engine().run(AGGREGATE)

    assert statuses(report) == {AGGREGATE.task_id: Status.DONE}
    assert len(await world.registry.list(ARTIST_STREAMS, INTERVAL)) == 2


async def test_a_deleted_aggregate_under_a_complete_top10_is_left_as_in_luigi(
    world: World,
) -> None:
    await write_days(world, DAYS)
    await world.engine().run(TOP10)
    await delete_latest(world, ARTIST_STREAMS)

    report = await world.engine().run(TOP10)

    assert statuses(report) == {AGGREGATE.task_id: Status.COMPLETE,
                                TOP10.task_id: Status.COMPLETE}
    assert len(await world.registry.list(ARTIST_STREAMS, INTERVAL)) == 1


async def test_a_deleted_top10_asked_for_is_rebuilt_with_the_aggregate_it_reads(
    world: World,
) -> None:
    """Both deleted: the top 10 must run, and it reads the aggregate, so the aggregate is
    built again first and the top 10 reads the new revision (its files exist)."""
    await write_days(world, DAYS)
    await world.engine().run(LOAD)
    before = await world.registry.latest(TOP_ARTISTS, INTERVAL)
    assert before is not None
    top10_text = await world.storage.read(f"{before.uri}/part-00000")
    await delete_latest(world, ARTIST_STREAMS)
    await delete_latest(world, TOP_ARTISTS)

    report = await world.engine().run(TOP10)

    assert statuses(report) == {AGGREGATE.task_id: Status.DONE, TOP10.task_id: Status.DONE}
    aggregate = await world.registry.latest(ARTIST_STREAMS, INTERVAL)
    after = await world.registry.latest(TOP_ARTISTS, INTERVAL)
    assert aggregate is not None
    assert after is not None
    assert list(after.lineage) == [aggregate.id]
    assert await world.storage.read(f"{after.uri}/part-00000") == top10_text


async def test_a_deleted_top10_asked_for_is_rebuilt_alone(world: World) -> None:
    await write_days(world, DAYS)
    await world.engine().run(LOAD)
    await delete_latest(world, TOP_ARTISTS)

    report = await world.engine().run(TOP10)

    assert statuses(report) == {AGGREGATE.task_id: Status.COMPLETE, TOP10.task_id: Status.DONE}
    assert len(await world.registry.list(ARTIST_STREAMS, INTERVAL)) == 1
    assert len(await world.registry.list(TOP_ARTISTS, INTERVAL)) == 2


async def test_a_dry_run_says_the_kept_gone_input_would_be_rebuilt(world: World) -> None:
    await write_days(world, DAYS)
    await world.engine().run(TOP10)
    await delete_latest(world, ARTIST_STREAMS)
    await delete_latest(world, TOP_ARTISTS)

    report = await world.engine().run(TOP10, Policy(dry_run=True))

    assert statuses(report) == {AGGREGATE.task_id: Status.WOULD_RUN,
                                TOP10.task_id: Status.WOULD_RUN}
    assert len(await world.registry.list(ARTIST_STREAMS, INTERVAL)) == 1


async def test_a_lost_marker_loads_the_table_again(world: World) -> None:
    await write_days(world, DAYS)
    await world.engine().run(LOAD)
    assert world.database is not None
    world.database.markers.clear()
    world.database.tables.clear()

    report = await world.engine().run(LOAD)

    assert report.outcomes[LOAD.task_id].status is Status.DONE
    assert len(await world.database.read_rows("top10")) == 10


async def test_an_empty_aggregate_fails_the_top10_instead_of_publishing_an_empty_one(
    world: World,
) -> None:
    for day in DAYS:  # days without a single stream: the aggregate is an empty file
        await world.storage.write(f"{DATA}/data/streams_{day:%Y_%m_%d}_faked.tsv", b"")

    report = await world.engine().run(LOAD)

    outcome = report.outcomes[TOP10.task_id]
    assert outcome.status is Status.FAILED
    assert "input 'input' is empty" in outcome.detail
    assert await world.registry.list(TOP_ARTISTS, INTERVAL) == []
    assert report.outcomes[LOAD.task_id].status is Status.BLOCKED
    assert report.exit_code == 1


class Source(Task):
    date = DateParameter()

    def output(self) -> RegistryTarget:
        return RegistryTarget("test.source", self.date.isoformat(), pattern="part-*")

    async def run(self, context: RunContext) -> None:
        await context.storage.write(f"{context.outputs['output']}/other", b"not a part\n")


class Counting(Task):
    """Counts its input's lines; zero is a valid answer for it."""

    date = DateParameter()
    allow_empty_inputs = True

    def requires(self) -> Task:
        return Source(date=self.date)

    def output(self) -> RegistryTarget:
        return RegistryTarget("test.counted", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        count = len([line async for line in context.lines("input")])
        await context.storage.write(f"{context.outputs['output']}/part", f"{count}\n".encode())


async def test_a_task_that_allows_empty_inputs_gets_them(world: World) -> None:
    task = Counting(date="2012-07-01")
    report = await world.engine().run(task)
    assert report.outcomes[task.task_id].status is Status.DONE
    revision = await world.registry.latest("test.counted", "2012-07-01")
    assert revision is not None
    assert await world.storage.read(f"{revision.uri}/part") == b"0\n"
