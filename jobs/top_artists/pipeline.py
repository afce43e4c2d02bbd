# mypy: disable-error-code="no-untyped-call"
# (Most of Beam's API is unannotated; strict mode would flag every transform.)
"""The top N artists of one day: the golden path's Scio TopArtistsJob ported to Beam.

Run as ``python -m jobs.top_artists.pipeline`` with Scio-style camelCase options
(--endContentFact, --trackEntity, --textOutput, --bqOutput, --topN, optional --date,
--duckdbDir, --blocking, and Dataflow's --runner, --project, --stagingLocation, ...).
A stream is a play of at least 30 s; each artist of the track is credited with it.
Exit code 0 on success; 1 after one ``error: ...`` line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

import apache_beam as beam
from apache_beam.metrics.metric import Metrics, MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.pvalue import PCollection
from apache_beam.runners.runner import PipelineResult
from apache_beam.transforms import combiners

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

# Dataflow's camelCase option names to the attribute names of Beam's PipelineOptions.
_BEAM_OPTIONS: dict[str, tuple[str, type]] = {
    "runner": ("runner", str),
    "project": ("project", str),
    "region": ("region", str),
    "stagingLocation": ("staging_location", str),
    "tempLocation": ("temp_location", str),
    "autoscalingAlgorithm": ("autoscaling_algorithm", str),
    "maxNumWorkers": ("max_num_workers", int),
    "jobName": ("job_name", str),
}

Artist = tuple[str, str]  # (artist_gid, artist_name)
Ranked = tuple[str, str, int]  # (artist_gid, artist_name, streams)
Inputs = tuple[PCollection[Row], PCollection[Row]]  # (plays, TrackEntity rows)


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


class _Parser(argparse.ArgumentParser):
    # The launcher reads one "error:" line, not argparse's usage text and exit code 2.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def parse_args(argv: Sequence[str]) -> tuple[JobArgs, PipelineOptions]:
    job_parser = _Parser(prog="top_artists", add_help=False)
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


def beam_options(argv: Sequence[str]) -> PipelineOptions:
    parser = _Parser(prog="top_artists", add_help=False)
    for camel, (name, kind) in _BEAM_OPTIONS.items():
        parser.add_argument(f"--{camel}", dest=name, type=kind)
    parsed = vars(parser.parse_args(argv))
    given = {name: value for name, value in parsed.items() if value is not None}
    # flags=[]: without it Beam re-reads sys.argv and warns about every job option.
    return PipelineOptions(flags=[], **given)


def partition_day(track_entity: TableSpec) -> date:
    """The day a ``..._YYYYMMDD`` table holds, for command lines without --date."""
    match = re.search(r"(\d{4})(\d{2})(\d{2})$", track_entity.table)
    with contextlib.suppress(ValueError):
        if match:
            return date(int(match[1]), int(match[2]), int(match[3]))
    raise UsageError(f"pass --date: the table {track_entity} does not end in a YYYYMMDD date")


class _CountStreams(beam.DoFn):
    """Keep plays long enough to be streams, as (track_gid, 1)."""

    def __init__(self) -> None:
        super().__init__()
        self._read = Metrics.counter(NAMESPACE, STREAMS_READ)
        self._short = Metrics.counter(NAMESPACE, SHORT_PLAYS)

    def process(self, record: Row) -> Iterator[tuple[str, int]]:
        self._read.inc()
        if record["ms_played"] < MIN_STREAM_MS:
            self._short.inc()
            return
        yield record["track_gid"], 1


class _CreditArtists(beam.DoFn):
    """Give a track's streams to each of its artists; drop tracks nobody knows."""

    def __init__(self) -> None:
        super().__init__()
        self._unknown = Metrics.counter(NAMESPACE, UNKNOWN_TRACK_STREAMS)

    def process(self, joined: tuple[str, dict[str, Iterable[Any]]]) -> Iterator[tuple[Artist, int]]:
        _, grouped = joined
        streams = sum(grouped["streams"])
        if not streams:  # a catalogued track nobody played: no zero-stream artists
            return
        # A set, so that a repeated TrackEntity row does not credit an artist twice.
        artists: set[Artist] = set(grouped["artists"])
        if not artists:
            self._unknown.inc(streams)
        for artist in artists:
            yield artist, streams


def track_artist(row: Row) -> Iterator[tuple[str, Artist]]:
    """Key a TrackEntity row by track; incomplete rows are skipped, as Scio's query does."""
    if all(row[name] is not None for name in TRACK_ENTITY_COLUMNS):
        yield row["track_gid"], (row["artist_gid"], row["artist_name"])


def rank_key(artist_streams: tuple[Artist, int]) -> tuple[int, str]:
    """Smallest first: most streams, then the smallest artist gid."""
    (artist_gid, _), streams = artist_streams
    return -streams, artist_gid


def ranked(top: list[tuple[Artist, int]]) -> list[Ranked]:
    Metrics.counter(NAMESPACE, ARTISTS_RANKED).inc(len(top))
    return [(gid, name, streams) for (gid, name), streams in top]


class TopArtists(beam.PTransform[Inputs, PCollection[list[Ranked]]]):
    """(plays, TrackEntity rows) to ONE element: the ranked list of (gid, name, streams)."""

    def __init__(self, top_n: int) -> None:
        super().__init__()
        self._top_n = top_n

    def expand(self, inputs: Inputs) -> PCollection[list[Ranked]]:
        plays, track_entities = inputs
        streams = (
            plays
            | "Streams" >> beam.ParDo(_CountStreams())
            | "StreamsPerTrack" >> beam.CombinePerKey(sum)
        )
        artists = track_entities | "ArtistsByTrack" >> beam.FlatMap(track_artist)
        top: PCollection[list[Ranked]] = (
            {"streams": streams, "artists": artists}
            | "JoinByTrack" >> beam.CoGroupByKey()
            | "CreditArtists" >> beam.ParDo(_CreditArtists())
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
    plays = pipeline | "ReadEndContentFact" >> beam.io.ReadFromAvro(job.end_content_fact)
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
