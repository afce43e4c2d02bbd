from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import DebugOptions, DirectOptions

# Renamed so that pytest does not try to collect it as a test class.
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from jobs.top_artists.options import beam_options
from jobs.top_artists.pipeline import (
    ReadStreams,
    TopArtists,
    parse_args,
    partition_day,
    summary,
    table_rows,
    text_lines,
)
from jobs.top_artists.sample_data import avro_bytes, part_name, split
from orchestrator.errors import TableNotFound, UsageError
from orchestrator.tablespec import TableSpec

A, B, C, D = "a" * 32, "b" * 32, "c" * 32, "d" * 32
CATALOGUE: list[tuple[str, str, str | None]] = [
    ("t1", A, "Ann"),
    ("t2", B, "Bob"),
    ("t2", C, "Cid"),  # t2 has two artists: both get its streams
    ("t3", D, "Dee"),
]


def play(track: str, ms_played: int = 200_000) -> dict[str, Any]:
    return {"user_id": "u", "track_gid": track, "ms_played": ms_played, "timestamp": 0}


def assert_top(
    folder: Path,
    plays: list[dict[str, Any]],
    expected: list[tuple[str, str, int]],
    top_n: int = 10,
    catalogue: list[tuple[str, str, str | None]] = CATALOGUE,
) -> None:
    """The plays, in two Avro files, must give ONE element: ``expected``, in that order."""
    for index, part in enumerate(split(plays, 2)):
        (folder / part_name(index, 2)).write_bytes(avro_bytes(part))
    rows = [
        dict(zip(("track_gid", "artist_gid", "artist_name"), row, strict=True)) for row in catalogue
    ]
    with BeamTestPipeline() as pipeline:
        result = (
            pipeline | "Plays" >> ReadStreams(f"{folder}/*.avro"),
            pipeline | "Catalogue" >> beam.Create(rows),
        ) | TopArtists(top_n)
        assert_that(result, equal_to([expected]))


def test_every_artist_of_a_track_is_credited(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t2"), play("t2"), play("t1")],
               [(B, "Bob", 2), (C, "Cid", 2), (A, "Ann", 1)])


def test_a_stream_is_at_least_30_seconds(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t1", 29_999), play("t3", 30_000)], [(D, "Dee", 1)])


def test_streams_of_unknown_tracks_are_dropped(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t1"), play("nope"), play("nope")], [(A, "Ann", 1)])


def test_ties_go_to_the_smaller_artist_gid(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t3"), play("t1")], [(A, "Ann", 1), (D, "Dee", 1)])


def test_only_the_top_n_are_kept(tmp_path: Path) -> None:
    plays = [play("t3")] * 3 + [play("t1")] * 2 + [play("t2")]
    assert_top(tmp_path, plays, [(D, "Dee", 3), (A, "Ann", 2)], top_n=2)


def test_no_streams_give_an_empty_ranking(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t1", 10)], [])


def test_incomplete_and_repeated_catalogue_rows(tmp_path: Path) -> None:
    catalogue = [("t1", A, None), ("t3", D, "Dee"), ("t3", D, "Dee")]
    assert_top(tmp_path, [play("t1"), play("t3")], [(D, "Dee", 1)], catalogue=catalogue)


def test_an_empty_catalogue_credits_nobody(tmp_path: Path) -> None:
    assert_top(tmp_path, [play("t1"), play("t3")], [], catalogue=[])


def test_text_lines_are_one_element_in_rank_order() -> None:
    assert list(text_lines([(B, "Bob", 5), (A, "Ann", 2)])) == [f"{B}\tBob\t5\n{A}\tAnn\t2"]
    assert list(text_lines([])) == []


def test_table_rows_carry_the_day_and_rank() -> None:
    day = date(2018, 10, 31)
    assert list(table_rows([(B, "Bob", 5)], day)) == [
        {"date": day, "rank": 1, "artist_gid": B, "artist_name": "Bob", "streams": 5}
    ]


ARGS = [
    "--endContentFact=/s/x/*.avro",
    "--trackEntity=scio-playground:di_golden_path.track_entity_20181031",
    "--textOutput=/s/out",
    "--bqOutput=scio-playground:_incoming_EU._top_artists_daily20181031_2295469999",
    "--topN=100",
]


def test_parse_args_splits_job_and_dataflow_options() -> None:
    job, options = parse_args(
        [
            *ARGS,
            "--runner=DirectRunner",
            "--duckdbDir=/w",
            "--maxNumWorkers=25",
            "--blocking",
            "--stagingLocation=gs://b/s",
            "--autoscalingAlgorithm=THROUGHPUT_BASED",
        ]
    )
    assert job.day == date(2018, 10, 31)
    assert job.bq_output == TableSpec(
        "scio-playground", "_incoming_EU", "_top_artists_daily20181031_2295469999"
    )
    assert job.top_n == 100
    assert job.blocking
    assert str(job.warehouse.duckdb_dir) == "/w"
    assert options.get_all_options()["max_num_workers"] == 25
    assert options.get_all_options()["staging_location"] == "gs://b/s"
    assert options.get_all_options()["autoscaling_algorithm"] == "THROUGHPUT_BASED"


def test_date_option_wins_over_the_table_name() -> None:
    job, _ = parse_args([*ARGS, "--date=2018-11-01"])
    assert job.day == date(2018, 11, 1)


@pytest.mark.parametrize("table", ["track_entity", "track_entity_20181345", "t_2018103"])
def test_a_table_without_a_day_needs_date(table: str) -> None:
    with pytest.raises(UsageError, match="pass --date"):
        partition_day(TableSpec("scio-playground", "di_golden_path", table))


@pytest.mark.parametrize(
    "argv",
    [ARGS[:-1], [*ARGS[:-1], "--topN=0"], [*ARGS, "--bogus=1"], [*ARGS, "--maxNumWorkers=x"]],
)
def test_bad_command_lines_are_usage_errors(argv: list[str]) -> None:
    with pytest.raises(UsageError):
        parse_args(argv)


def test_beam_options_pass_through_to_the_pipeline() -> None:
    _, options = parse_args(
        [*ARGS, "--direct_num_workers=2", "--direct_running_mode=multi_processing",
         "--experiments=a", "--experiments=b"]
    )
    direct = options.view_as(DirectOptions)
    assert (direct.direct_num_workers, direct.direct_running_mode) == (2, "multi_processing")
    assert options.view_as(DebugOptions).experiments == ["a", "b"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("--direct_num_workers=two", r"^bad Beam option: argument --direct_num_workers: invalid"
                                     r" int value: 'two'$"),
        ("--direct_running_mode=fast", r"^bad Beam option: .*invalid choice: 'fast'"),
        ("--direct_num_workers", r"^bad Beam option: .*expected one argument$"),
        ("--direct_num_worker=2", r"^unknown option --direct_num_worker=2 \(neither"),
        ("stray", r"^unknown option stray "),
        # No abbreviations: a prefix of one of the job's options is not taken for it.
        ("--top=5", r"^unknown option --top=5 "),
    ],
)
def test_bad_beam_options_are_refused_clearly(option: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_args([*ARGS, option])


def test_unset_dataflow_options_are_left_to_beam() -> None:
    assert "project" not in {k for k, v in beam_options([]).get_all_options().items() if v}


def test_summary_is_one_line() -> None:
    assert summary(TableNotFound("table x not found\nmore")) == "table x not found"
    assert summary(EOFError("Expected 10 bytes")) == "EOFError: Expected 10 bytes"
    assert summary(ValueError()) == "ValueError"
