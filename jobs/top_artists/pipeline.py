# mypy: disable-error-code="no-untyped-call"
# (Most of Beam's API is unannotated; strict mode would flag every transform.)
"""The top N artists of one day: the golden path's Scio TopArtistsJob ported to Beam.

Run as ``python -m jobs.top_artists.pipeline`` with Scio-style camelCase options
(--endContentFact, --trackEntity, --textOutput, --bqOutput, --topN, optional --date,
--duckdbDir, --blocking, Dataflow's --runner, --project, --stagingLocation, ..., and
any of Beam's own options as Beam spells them: see jobs.top_artists.options).
A stream is a play of at least 30 s; each artist of the track is credited with it.
Exit code 0 on success; 1 after one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import apache_beam as beam
import fastavro
from apache_beam.io import fileio
from apache_beam.io.fileio import EmptyMatchTreatment, ReadableFile
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pvalue import PBegin, PCollection
from apache_beam.runners.runner import PipelineResult
from apache_beam.transforms import combiners
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

from jobs.top_artists.options import Parser, beam_options
from jobs.top_artists.warehouse_io import (
    Row,
    WarehouseOptions,
    read_table,
    use_emulators_without_credentials,
    write_table,
)
from orchestrator.errors import CharonError, UsageError
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec

MIN_STREAM_MS = 30_000
NAMESPACE = "top_artists"
COUNTERS = ("streams_read", "short_plays", "unknown_track_streams", "artists_ranked")
STREAMS_READ, SHORT_PLAYS, UNKNOWN_TRACK_STREAMS, ARTISTS_RANKED = COUNTERS

TRACK_ENTITY_COLUMNS = ("track_gid", "artist_gid", "artist_name")
OUTPUT_COLUMNS = (
    Column("date", "DATE"),
    Column("rank", "INT64"),
    Column("artist_gid", "STRING"),
    Column("artist_name", "STRING"),
    Column("streams", "INT64"),
)

Artist = tuple[str, str]  # (artist_gid, artist_name)
Ranked = tuple[str, str, int]  # (artist_gid, artist_name, streams)
Catalogue = dict[str, set[Artist]]  # track_gid to its artists
# ((track_gid, streams) several per track, TrackEntity rows)
Inputs = tuple[PCollection[tuple[str, int]], PCollection[Row]]


@dataclass(frozen=True)
class JobArgs:
    end_content_fact: str
    track_entity: TableSpec
    text_output: str
    bq_output: TableSpec
    top_n: int
    day: date
    blocking: bool
    warehouse: WarehouseOptions


def parse_args(argv: Sequence[str]) -> tuple[JobArgs, PipelineOptions]:
    job_parser = Parser(prog="top_artists", add_help=False, allow_abbrev=False)
    job_parser.add_argument("--endContentFact", required=True)
    job_parser.add_argument("--trackEntity", required=True, type=TableSpec.parse)
    job_parser.add_argument("--textOutput", required=True)
    job_parser.add_argument("--bqOutput", required=True, type=TableSpec.parse)
    job_parser.add_argument("--topN", required=True, type=int)
    job_parser.add_argument("--date", type=date.fromisoformat)
    job_parser.add_argument("--duckdbDir", type=Path)
    job_parser.add_argument("--blocking", action="store_true")
    known, rest = job_parser.parse_known_args(argv)
    if known.topN < 1:
        raise UsageError(f"--topN must be at least 1, not {known.topN}")
    job = JobArgs(
        end_content_fact=known.endContentFact,
        track_entity=known.trackEntity,
        text_output=known.textOutput,
        bq_output=known.bqOutput,
        top_n=known.topN,
        day=known.date or partition_day(known.trackEntity),
        blocking=known.blocking,
        warehouse=WarehouseOptions.from_environment(known.duckdbDir),
    )
    return job, beam_options(rest)


def partition_day(track_entity: TableSpec) -> date:
    """The day a ``..._YYYYMMDD`` table holds, for command lines without --date."""
    match = re.search(r"(\d{4})(\d{2})(\d{2})$", track_entity.table)
    with contextlib.suppress(ValueError):
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
    raise UsageError(f"pass --date: the table {track_entity} does not end in a YYYYMMDD date")


class _PerBundle(beam.DoFn):
    """Sums per key over a bundle in ``counts``, emitted when the bundle finishes.

    Summing here, not emitting one element per play or per track, is what keeps the
    job near the speed of decoding its files: Beam's cost is per element, and a
    million plays become a few ten thousand sums before the shuffle.
    """

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[Any] = Counter()

    def start_bundle(self) -> None:
        self.counts = Counter()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for key_count in self.counts.items():
            yield GlobalWindows.windowed_value(key_count)
        self.counts = Counter()


class _CountStreams(_PerBundle):
    """Read Avro files of plays in bulk, counting per track those long enough to be
    streams."""

    def __init__(self) -> None:
        super().__init__()
        self._read = Metrics.counter(NAMESPACE, STREAMS_READ)
        self._short = Metrics.counter(NAMESPACE, SHORT_PLAYS)

    def process(self, file: ReadableFile) -> None:
        read = kept = 0
        # The files' own codec applies inside them; Beam must not guess one by extension.
        with file.open(compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            for block in fastavro.block_reader(handle):
                records = cast(Iterable[Row], block)  # records, by the files' schema
                tracks = [record["track_gid"] for record in records
                          if record["ms_played"] >= MIN_STREAM_MS]
                self.counts.update(tracks)
                read += block.num_records
                kept += len(tracks)
        self._read.inc(read)
        self._short.inc(read - kept)


class ReadStreams(beam.PTransform[PBegin, PCollection[tuple[str, int]]]):
    """(track_gid, streams) from the Avro files matching a pattern, several per track."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self._pattern = pattern

    def expand(self, begin: PBegin) -> PCollection[tuple[str, int]]:
        streams: PCollection[tuple[str, int]] = (
            begin
            | "Match" >> fileio.MatchFiles(self._pattern, EmptyMatchTreatment.DISALLOW)
            # Apart, so that the files are spread over the workers, not read by one.
            | "Spread" >> beam.Reshuffle()
            | "Open" >> fileio.ReadMatches()
            | "CountPerTrack" >> beam.ParDo(_CountStreams())
        )
        return streams


class _Catalogue(beam.CombineFn):
    """TrackEntity rows to ONE dict: track_gid to the set of its (artist_gid, name).

    A set, so that a repeated row does not credit an artist twice; incomplete rows are
    skipped, as Scio's query does. A day's catalogue is small beside its plays, so the
    join is a hash join against it as a side input (Scio's hashJoin), not a shuffle of
    every track. It travels pickled: as a dict, Beam would decode it element by element
    and walk every object in it to weigh it for its side-input cache, seconds a bundle.
    """

    def create_accumulator(self) -> Catalogue:
        return {}

    def add_input(self, catalogue: Catalogue, row: Row) -> Catalogue:
        track, gid, name = row["track_gid"], row["artist_gid"], row["artist_name"]
        if track is not None and gid is not None and name is not None:
            catalogue.setdefault(track, set()).add((gid, name))
        return catalogue

    def merge_accumulators(self, catalogues: Iterable[Catalogue]) -> Catalogue:
        # Into the first, as Beam allows: copying a whole catalogue costs more than its rows.
        merged, *others = catalogues
        for catalogue in others:
            for track, artists in catalogue.items():
                merged.setdefault(track, set()).update(artists)
        return merged

    def extract_output(self, catalogue: Catalogue) -> bytes:
        return pickle.dumps(catalogue, protocol=pickle.HIGHEST_PROTOCOL)


class _CreditArtists(_PerBundle):
    """Give a track's streams to each of its artists, summed per artist over the bundle;
    drop tracks nobody knows."""

    def __init__(self) -> None:
        super().__init__()
        self._unknown = Metrics.counter(NAMESPACE, UNKNOWN_TRACK_STREAMS)
        self._pickled = b""
        self._catalogue: Catalogue = {}

    def process(self, track_streams: tuple[str, int], pickled: bytes) -> None:
        if pickled is not self._pickled:  # the same object for the whole bundle
            self._catalogue = pickle.loads(pickled)  # noqa: S301  (made by _Catalogue)
            self._pickled = pickled
        track, streams = track_streams
        artists = self._catalogue.get(track)
        if not artists:
            self._unknown.inc(streams)
            return
        for artist in artists:
            self.counts[artist] += streams


def rank_key(artist_streams: tuple[Artist, int]) -> tuple[int, str]:
    """Smallest first: most streams, then the smallest artist gid."""
    (artist_gid, _), streams = artist_streams
    return -streams, artist_gid


def ranked(top: list[tuple[Artist, int]]) -> list[Ranked]:
    Metrics.counter(NAMESPACE, ARTISTS_RANKED).inc(len(top))
    return [(gid, name, streams) for (gid, name), streams in top]


class TopArtists(beam.PTransform[Inputs, PCollection[list[Ranked]]]):
    """((track_gid, streams), TrackEntity rows) to ONE element: the ranked list of
    (gid, name, streams)."""

    def __init__(self, top_n: int) -> None:
        super().__init__()
        self._top_n = top_n

    def expand(self, inputs: Inputs) -> PCollection[list[Ranked]]:
        streams, track_entities = inputs
        catalogue = track_entities | "Catalogue" >> beam.CombineGlobally(_Catalogue())
        top: PCollection[list[Ranked]] = (
            streams
            | "CreditArtists" >> beam.ParDo(_CreditArtists(), beam.pvalue.AsSingleton(catalogue))
            | "StreamsPerArtist" >> beam.CombinePerKey(sum)
            | "Top" >> combiners.Top.Of(self._top_n, key=rank_key, reverse=True)
            | "Ranked" >> beam.Map(ranked)
        )
        return top


def text_lines(top: list[Ranked]) -> Iterator[str]:
    # One element for the whole file keeps the rank order WriteToText would not.
    if top:
        yield "\n".join(f"{gid}\t{name}\t{streams}" for gid, name, streams in top)


def table_rows(top: list[Ranked], day: date) -> Iterator[Row]:
    names = [column.name for column in OUTPUT_COLUMNS]
    for rank, (gid, name, streams) in enumerate(top, start=1):
        yield dict(zip(names, (day, rank, gid, name, streams), strict=True))


def build(pipeline: beam.Pipeline, job: JobArgs) -> None:
    plays = pipeline | "ReadEndContentFact" >> ReadStreams(job.end_content_fact)
    track_entities = pipeline | "ReadTrackEntity" >> read_table(
        job.track_entity, TRACK_ENTITY_COLUMNS, job.warehouse
    )
    top = (plays, track_entities) | "TopArtists" >> TopArtists(job.top_n)
    _ = (
        top
        | "TextLines" >> beam.FlatMap(text_lines)
        | "WriteText"
        >> beam.io.WriteToText(
            job.text_output.rstrip("/") + "/part", num_shards=1, shard_name_template=""
        )
    )
    _ = (
        top
        | "TableRows" >> beam.FlatMap(table_rows, job.day)
        | "WriteTable" >> write_table(job.bq_output, OUTPUT_COLUMNS, job.warehouse)
    )


def run(job: JobArgs, options: PipelineOptions) -> PipelineResult:
    use_emulators_without_credentials()
    pipeline = beam.Pipeline(options=options)
    build(pipeline, job)
    result = pipeline.run()
    runner = options.view_as(StandardOptions).runner
    # Metrics are only final once the job is; the local runners always finish first.
    if job.blocking or runner in (None, "DirectRunner"):
        result.wait_until_finish()
    return result


def counters(result: PipelineResult) -> dict[str, int]:
    found = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    totals = dict.fromkeys(COUNTERS, 0)
    for counter in found:
        totals[counter.key.metric.name] += counter.committed or 0
    return totals


def main(argv: Sequence[str] | None = None) -> int:
    # Beam logs a failing DoFn's traceback before re-raising; the error line says it.
    logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    try:
        job, options = parse_args(sys.argv[1:] if argv is None else argv)
        result = run(job, options)
        totals = counters(result)
    except Exception as exc:
        print(f"error: {summary(exc)}", file=sys.stderr)
        return 1
    for name, value in totals.items():
        print(f"{name.replace('_', ' ')}: {value}", file=sys.stderr)
    return 0


def summary(exc: Exception) -> str:
    """One line: charon's own messages as they are, others with their type name."""
    first = next(iter(str(exc).strip().splitlines()), "")
    if isinstance(exc, CharonError):
        return first
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
