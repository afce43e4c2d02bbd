"""The Luigi example's workflow on in-memory adapters: aggregate, top 10, CopyToTable."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from jobs.checkpoints import CHECKPOINT_EVERY
from jobs.luigi_top_artists import (
    ARTIST_STREAMS,
    TOP_ARTISTS,
    AggregateArtists,
    ArtistToplistToDatabase,
    Top10Artists,
    top_artists,
)
from jobs.luigi_top_artists.sample_data import streams_day
from orchestrator.core.report import Status
from orchestrator.errors import InvalidIdentifier, UsageError
from orchestrator.tasks.targets import PostgresTable, StorageTarget
from orchestrator.testing import (
    InMemoryStorage,
    ProcessCrashed,
)
from orchestrator.testing.world import World, build_world
from tests.support.reference_toplist import artist_counts, top10_rows

DATA = "/store"
JULY = [date(2012, 7, 1) + timedelta(days=n) for n in range(31)]


class NoWholeReads(InMemoryStorage):
    """Storage whose whole-object read of a day file fails: tasks must stream its lines."""

    async def read(self, uri: str) -> bytes:
        if uri.endswith(".tsv"):
            raise AssertionError(f"{uri} was loaded whole")
        return await super().read(uri)

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        data = await InMemoryStorage.read(self, uri)
        for line in data.decode().splitlines():
            yield line


async def write_days(world: World, days: list[date], events: int = 300) -> list[str]:
    texts = []
    for day in days:
        text = streams_day(day, events, seed=7)
        await world.storage.write(f"{DATA}/data/streams_{day:%Y_%m_%d}_faked.tsv", text.encode())
        texts.append(text)
    return texts


async def part(world: World, endpoint: str, partition: str) -> str:
    revision = await world.registry.latest(endpoint, partition)
    assert revision is not None
    return (await world.storage.read(f"{revision.uri}/part-00000")).decode()


def make_world(with_database: bool = True) -> World:
    return build_world(storage=lambda now: NoWholeReads(now=now), database=with_database,
                       output_prefix="/out", data_prefix=DATA, real_time=True)


@pytest.fixture
def world() -> World:
    return make_world()


async def test_the_aggregate_streams_every_day_and_equals_an_independent_count(
    world: World,
) -> None:
    texts = await write_days(world, JULY)
    report = await world.engine().run(AggregateArtists(date_interval="2012-07"))
    assert report.exit_code == 0
    lines = (await part(world, ARTIST_STREAMS, "2012-07")).splitlines()
    counted = {artist: int(count) for artist, count in (line.split("\t") for line in lines)}
    assert counted == artist_counts(texts)


async def test_top10_lines_equal_an_independent_ranking(world: World) -> None:
    texts = await write_days(world, JULY)
    report = await world.engine().run(Top10Artists(date_interval="2012-07"))
    assert report.exit_code == 0
    lines = [line.split("\t") for line in (await part(world, TOP_ARTISTS, "2012-07")).splitlines()]
    expected = top10_rows(artist_counts(texts), JULY[0], JULY[-1])
    assert lines == [[str(a), str(b), artist, str(n)] for a, b, artist, n in expected]
    assert lines[0][:2] == ["2012-07-01", "2012-08-01"]  # Luigi's date_a, date_b


def test_top_10_is_the_luigi_examples_nlargest_in_bounded_batches() -> None:
    counts = [(f"artist{n:05d}", n % 7) for n in range(25_000)]
    counts += [("zed", 6), ("abe", 6)]
    # What Luigi's Top10Artists.run does with the same pairs (ties: the larger artist).
    luigi = [(artist, streams) for streams, artist
             in heapq.nlargest(10, ((streams, artist) for artist, streams in counts))]
    top = top_artists(counts)
    assert top == luigi
    assert top[0] == ("zed", 6)
    assert top_artists([("b", 2), ("a", 2), ("c", 3)]) == [("c", 3), ("b", 2), ("a", 2)]


async def test_a_missing_day_holds_the_interval_back_and_names_it(world: World) -> None:
    await write_days(world, JULY[:-1])
    report = await world.engine().run(Top10Artists(date_interval="2012-07"))
    assert report.exit_code == 20
    assert report.missing == ["Streams(date=2012-07-31): storage data/streams_2012_07_31_faked.tsv"]
    assert await world.registry.latest(ARTIST_STREAMS, "2012-07") is None


async def test_a_malformed_line_fails_the_run_with_its_file_and_line(world: World) -> None:
    await world.storage.write(f"{DATA}/data/streams_2012_06_05_faked.tsv",
                              b"2012-06-05T00:00:01\tartist1\ttrack1\nbroken line\n")
    report = await world.engine().run(AggregateArtists(date_interval="2012-06-05"))
    outcome = report.outcomes["AggregateArtists(date_interval=2012-06-05)"]
    assert outcome.status is Status.FAILED
    assert "streams_2012_06_05_faked.tsv line 2" in outcome.detail
    assert await world.registry.latest(ARTIST_STREAMS, "2012-06-05") is None


async def test_copy_to_table_loads_the_top_10_once(world: World) -> None:
    texts = await write_days(world, JULY)
    task = ArtistToplistToDatabase(date_interval="2012-07")
    assert (await world.engine().run(task)).exit_code == 0
    assert world.database is not None
    rows = await world.database.read_rows("top10")
    expected = top10_rows(artist_counts(texts), JULY[0], JULY[-1])
    assert [tuple(row.values()) for row in rows] == expected
    assert await world.database.marker("top10", task.update_id) is not None

    again = await world.engine().run(task)
    assert again.outcomes[task.task_id].status is Status.COMPLETE
    assert len(await world.database.read_rows("top10")) == 10


def test_the_marker_is_the_task_id_luigi_gives_the_same_task() -> None:
    # Computed by Luigi 3.8.1 for its own example's task (tests/unit/test_luigi_ids.py
    # checks the algorithm against Luigi on many more).
    task = ArtistToplistToDatabase(date_interval="2012-07")
    assert task.update_id == "ArtistToplistToDatabase_2012_07_False_790779d4e7"
    assert task.output() == PostgresTable("top10", task.update_id)


async def test_either_runner_is_the_same_task_and_loads_the_table_once(world: World) -> None:
    await write_days(world, JULY)
    in_process = ArtistToplistToDatabase(date_interval="2012-07")
    on_spark = ArtistToplistToDatabase(date_interval="2012-07", use_spark=True)
    assert (await world.engine().run(in_process)).exit_code == 0
    # The Spark variant finds the aggregate and the top 10 complete (Spark never runs:
    # there is no spark-submit here) and only adds the marker Luigi would look for.
    report = await world.engine().run(on_spark)
    assert report.exit_code == 0, report.outcomes
    assert world.database is not None
    assert len(await world.database.read_rows("top10")) == 10
    assert await world.database.marker("top10", on_spark.update_id) is not None
    for endpoint in (ARTIST_STREAMS, TOP_ARTISTS):
        assert len(await world.registry.list(endpoint, "2012-07")) == 1
    again = await world.engine().run(on_spark)
    assert {outcome.status for outcome in again.outcomes.values()} <= {
        Status.COMPLETE, Status.AVAILABLE}


async def test_a_late_input_finds_the_load_complete_by_its_marker_and_runs_nothing(
    world: World,
) -> None:
    await write_days(world, JULY)
    task = ArtistToplistToDatabase(date_interval="2012-07")
    await world.engine().run(task)
    # A new revision of the top 10 gives the load a new fingerprint, but its marker says
    # it loaded once, as Luigi's CopyToTable: complete, not run (it was "done", having
    # copied nothing).
    await world.engine().run(Top10Artists(date_interval="2012-07"))
    revision = await world.registry.latest(TOP_ARTISTS, "2012-07")
    assert revision is not None
    await world.registry.publish(TOP_ARTISTS, "2012-07", revision.uri)
    report = await world.engine().run(task)
    assert report.outcomes[task.task_id].status is Status.COMPLETE
    assert len(await world.state.list_runs(task_id=task.task_id)) == 1
    assert world.database is not None
    assert len(await world.database.read_rows("top10")) == 10


async def test_a_crash_between_copy_and_commit_leaves_neither_rows_nor_marker(
    world: World,
) -> None:
    await write_days(world, JULY)
    assert world.database is not None
    world.database.fail_after_copy = True
    task = ArtistToplistToDatabase(date_interval="2012-07")
    # ProcessCrashed stands for the process dying: nothing in charon handles it.
    with pytest.raises(BaseExceptionGroup) as caught:
        await world.engine().run(task)
    assert caught.group_contains(ProcessCrashed, match="crashed after copying")
    assert await world.database.read_rows("top10") == []
    assert await world.database.marker("top10", task.update_id) is None


async def test_without_a_database_the_load_fails_clearly() -> None:
    world = make_world(with_database=False)
    await write_days(world, JULY)
    task = ArtistToplistToDatabase(date_interval="2012-07")
    report = await world.engine().run(task)
    outcome = report.outcomes[task.task_id]
    # Its marker cannot even be looked for: Luigi's scheduling error (complete() raised).
    assert outcome.status is Status.ERROR
    assert "CHARON_POSTGRES__DSN" in outcome.detail
    assert report.exit_code == 1


def test_targets_validate_their_names() -> None:
    assert StorageTarget("data/x.tsv").resolve("/root/") == "/root/data/x.tsv"
    assert StorageTarget("gs://bkt/x.tsv").resolve("/root") == "gs://bkt/x.tsv"
    with pytest.raises(UsageError):
        StorageTarget("data/x.tsv").resolve("")
    for bad in ("", "../etc/passwd", "a\nb"):
        with pytest.raises(InvalidIdentifier):
            StorageTarget(bad)
    assert PostgresTable("public.top10", "T(x=1)").table == "public.top10"
    for table in ("Top10", "top10; DROP TABLE x", "a.b.c", '"q"'):
        with pytest.raises(InvalidIdentifier):
            PostgresTable(table, "T")


def test_a_day_of_streams_stops_at_checkpoints_and_is_the_same_with_them() -> None:
    """Where a Ctrl-C stops ``charon sample-data --streams`` within a big day."""
    day, events = date(2012, 7, 1), 2 * CHECKPOINT_EVERY + 1
    made: list[int] = []
    assert streams_day(day, events, 7, made.append) == streams_day(day, events, 7)
    # Once while drawing the times, once while writing the lines.
    assert made == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY] * 2
