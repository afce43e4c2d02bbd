"""The Luigi top-artists example (Luigi's ``examples/top_artists.py``), ported line by line.

Run it the Luigi way::

    charon sample-data --streams --date-interval 2012-07
    charon run --module jobs.luigi_top_artists AggregateArtists --date-interval 2012-07
    charon run --module jobs.luigi_top_artists Top10Artists --date-interval 2012-07 [--use-spark]
    CHARON_POSTGRES__DSN=postgresql://postgres@127.0.0.1:5432/toplists \\
        charon run --module jobs.luigi_top_artists ArtistToplistToDatabase --date-interval 2012-07

Every file this chain writes is tab-separated: ``timestamp artist track`` (Streams),
``artist count`` (the aggregates), ``date_from date_to artist streams`` (the top 10).
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from datetime import date
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.tasks.copy_to_table import CopyToTable
from orchestrator.tasks.params import BoolParameter, DateIntervalParameter, DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget, StorageTarget
from orchestrator.tasks.task import ExternalTask, SparkSubmitTask, Task

ARTIST_STREAMS = "charon.examples.artist_streams"
TOP_ARTISTS = "charon.examples.top_artists"
PART = "part-00000"
TOP_N = 10
_BATCH = 10_000


def streams_path(day: date) -> str:
    """Where a day's streams live, relative to the storage root (the Luigi example's path)."""
    return f"data/streams_{day:%Y_%m_%d}_faked.tsv"


class Streams(ExternalTask):
    """A day of stream logs, ``timestamp artist track`` per line, made outside charon."""

    date = DateParameter()

    def output(self) -> StorageTarget:
        return StorageTarget(streams_path(self.date))


class AggregateArtists(Task):
    """Streams per artist over the interval, counted in process, one file at a time."""

    date_interval = DateIntervalParameter()

    def output(self) -> RegistryTarget:
        return RegistryTarget(ARTIST_STREAMS, str(self.date_interval), pattern="part-*")

    def requires(self) -> list[Task]:
        return [Streams(date=day) for day in self.date_interval]

    async def run(self, context: RunContext) -> None:
        artist_count: Counter[str] = Counter()
        for key in context.inputs:
            for uri in await context.files(key):
                async for artist in _artists(context, uri):
                    artist_count[artist] += 1
        text = "".join(f"{artist}\t{count}\n" for artist, count in sorted(artist_count.items()))
        await context.storage.write(f"{context.outputs['output']}/{PART}", text.encode())


async def _artists(context: RunContext, uri: str) -> AsyncIterator[str]:
    """The artist of each line, streamed; a malformed line names its file and number."""
    number = 0
    async for line in context.storage.read_lines(uri):
        number += 1
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3:
            raise UsageError(f"{uri} line {number}: expected 'timestamp artist track'")
        yield fields[1]


class AggregateArtistsSpark(SparkSubmitTask):
    """The same aggregation as a Spark job (``jobs/luigi_top_artists/spark_job.py``).

    The same task as AggregateArtists, computed another way: an interval aggregated by
    either is complete for both, and both publish the same partition.
    """

    date_interval = DateIntervalParameter()
    variant_of = AggregateArtists

    app = str(Path(__file__).with_name("spark_job.py"))
    master = "local[*]"

    def output(self) -> RegistryTarget:
        # Spark writes a folder of part files: the folder becomes the revision.
        return RegistryTarget(ARTIST_STREAMS, str(self.date_interval), pattern="part-*")

    def requires(self) -> list[Task]:
        return [Streams(date=day) for day in self.date_interval]

    def app_options(self, context: RunContext) -> list[str]:
        return [",".join(i.ref for i in context.inputs.values()), context.outputs["output"]]


class TopN:
    """The n artists with the most streams, in bounded memory, ordered as the Luigi
    example's ``nlargest`` over ``(streams, artist)`` pairs orders them: a tie goes to
    the artist that sorts last, so both write the same top 10 byte for byte.

    Pairs are kept in batches that shrink back to n, so an input of any size can be fed
    one pair at a time (the Luigi example's ``nlargest`` over an iterator).
    """

    def __init__(self, n: int = TOP_N) -> None:
        self._n = n
        self._kept: list[tuple[str, int]] = []

    def add(self, artist: str, streams: int) -> None:
        self._kept.append((artist, streams))
        if len(self._kept) >= _BATCH:
            self._kept = self.result()

    def result(self) -> list[tuple[str, int]]:
        return heapq.nlargest(self._n, self._kept, key=lambda pair: (pair[1], pair[0]))


def top_artists(counts: Iterable[tuple[str, int]], n: int = TOP_N) -> list[tuple[str, int]]:
    top = TopN(n)
    for artist, streams in counts:
        top.add(artist, streams)
    return top.result()


class Top10Artists(Task):
    """The interval's 10 most streamed artists: ``date_from date_to artist streams``.

    As in Luigi, ``date_to`` is the interval's ``date_b``: the day after its last day.
    """

    date_interval = DateIntervalParameter()
    use_spark = BoolParameter(runner=True)

    def requires(self) -> Task:
        if self.use_spark:
            return AggregateArtistsSpark(date_interval=self.date_interval)
        return AggregateArtists(date_interval=self.date_interval)

    def output(self) -> RegistryTarget:
        return RegistryTarget(TOP_ARTISTS, str(self.date_interval))

    async def run(self, context: RunContext) -> None:
        top = TopN(TOP_N)
        async for artist, streams in self._input_iterator(context):
            top.add(artist, streams)
        interval = self.date_interval
        text = "".join(
            f"{interval.date_a}\t{interval.date_b}\t{artist}\t{streams}\n"
            for artist, streams in top.result()
        )
        await context.storage.write(f"{context.outputs['output']}/{PART}", text.encode())

    async def _input_iterator(self, context: RunContext) -> AsyncIterator[tuple[str, int]]:
        async for line in context.lines("input"):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                raise UsageError(f"{self.task_family}: expected 'artist count', got {line!r}")
            yield fields[0], int(fields[1])


class ArtistToplistToDatabase(CopyToTable):
    """The top 10 loaded into PostgreSQL; the connection is ``[postgres] dsn``."""

    date_interval = DateIntervalParameter()
    use_spark = BoolParameter(runner=True)

    table = "top10"
    columns = (
        ("date_from", "DATE"),
        ("date_to", "DATE"),
        ("artist", "TEXT"),
        ("streams", "INT"),
    )

    def requires(self) -> Task:
        return Top10Artists(date_interval=self.date_interval, use_spark=self.use_spark)
