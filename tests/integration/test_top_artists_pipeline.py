from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from jobs.top_artists.sample_data import (
    TRACK_ENTITY_COLUMNS,
    SampleDay,
    avro_bytes,
    generate_day,
    part_name,
    split,
)
from orchestrator.stores.warehouse import duckdb_files
from orchestrator.tablespec import TableSpec
from tests.support.reference import top_artists

pytestmark = pytest.mark.slow

DAY = date(2018, 10, 31)
OUTPUT = TableSpec("scio-playground", "_incoming_EU", "_top_artists_daily20181031_2295469999")
FILES = 4


@dataclass(frozen=True)
class Inputs:
    avro_folder: Path
    warehouse: Path
    track_entity: str


@pytest.fixture(scope="module")
def sample() -> SampleDay:
    return generate_day(DAY, 20_000, seed=11)


@pytest.fixture(scope="module")
def avro_folder(sample: SampleDay, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("revision")
    for index, records in enumerate(split(sample.streams, FILES)):
        (folder / part_name(index, FILES)).write_bytes(avro_bytes(records))
    return folder


@pytest.fixture
def inputs(sample: SampleDay, avro_folder: Path, tmp_path: Path) -> Inputs:
    """The day's Avro files and a fresh warehouse holding only its TrackEntity table."""
    spec = TableSpec.parse(sample.track_entity_spec)
    warehouse = tmp_path / "warehouse"
    connection = duckdb_files.connect(warehouse, spec.project)
    try:
        columns = [(column.name, column.type) for column in TRACK_ENTITY_COLUMNS]
        duckdb_files.replace_table(connection, spec, columns, sample.track_entities)
    finally:
        connection.close()
    return Inputs(avro_folder, warehouse, sample.track_entity_spec)


def run_pipeline(
    avro_glob: str, inputs: Inputs, text_output: Path, *beam_options: str
) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "jobs.top_artists.pipeline",
        "--runner=DirectRunner",
        f"--duckdbDir={inputs.warehouse}",
        "--project=scio-playground",
        "--region=europe-west1",
        "--stagingLocation=gs://scio-playground/staging",
        "--tempLocation=gs://scio-playground/tmp",
        "--autoscalingAlgorithm=THROUGHPUT_BASED",
        "--maxNumWorkers=25",
        "--blocking",
        f"--endContentFact={avro_glob}",
        f"--trackEntity={inputs.track_entity}",
        f"--textOutput={text_output}",
        f"--bqOutput={OUTPUT}",
        "--topN=100",
        *beam_options,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=100, check=False)


def output_rows(warehouse: Path) -> list[tuple[object, ...]] | None:
    """The output table ordered by rank, or None when it does not exist."""
    path = duckdb_files.database_path(warehouse, OUTPUT.project)
    connection = duckdb.connect(str(path), read_only=True)
    try:
        columns = "date, rank, artist_gid, artist_name, streams"
        query = f"SELECT {columns} FROM {duckdb_files.quoted(OUTPUT)} ORDER BY rank"  # noqa: S608
        return connection.execute(query).fetchall()
    except duckdb.CatalogException:
        return None
    finally:
        connection.close()


@pytest.mark.parametrize(
    "beam_options",
    [(), ("--direct_num_workers=2", "--direct_running_mode=multi_processing")],
    ids=["default", "two-processes"],
)
def test_the_pipeline_matches_the_reference(
    inputs: Inputs, tmp_path: Path, beam_options: tuple[str, ...]
) -> None:
    avro_glob = f"{inputs.avro_folder}/*.avro"
    text_output = tmp_path / "outputs" / "random"

    finished = run_pipeline(avro_glob, inputs, text_output, *beam_options)

    assert finished.returncode == 0, finished.stderr
    expected = top_artists(avro_glob, inputs.warehouse, inputs.track_entity, 100)
    assert len(expected) == 100
    lines = (text_output / "part").read_text().splitlines()
    assert lines == [f"{gid}\t{name}\t{streams}" for gid, name, streams in expected]
    assert output_rows(inputs.warehouse) == [
        (DAY, rank, gid, name, streams)
        for rank, (gid, name, streams) in enumerate(expected, start=1)
    ]
    assert "streams read: 20000" in finished.stderr
    assert "artists ranked: 100" in finished.stderr


def test_a_corrupt_avro_file_fails_cleanly(inputs: Inputs, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in inputs.avro_folder.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    corrupt = broken / part_name(1, FILES)
    corrupt.write_bytes(corrupt.read_bytes()[: corrupt.stat().st_size // 2])

    finished = run_pipeline(f"{broken}/*.avro", inputs, tmp_path / "out")

    assert finished.returncode == 1
    errors = [line for line in finished.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, finished.stderr
    assert "Traceback" not in finished.stderr
    assert output_rows(inputs.warehouse) is None


def test_a_bad_beam_option_fails_before_anything_runs(inputs: Inputs, tmp_path: Path) -> None:
    finished = run_pipeline(f"{inputs.avro_folder}/*.avro", inputs, tmp_path / "out",
                            "--direct_running_mode=fast")

    assert finished.returncode == 1
    assert finished.stderr.splitlines() == [
        "error: bad Beam option: argument --direct_running_mode: invalid choice: 'fast' "
        "(choose from 'in_memory', 'multi_threading', 'multi_processing')"
    ]
    assert output_rows(inputs.warehouse) is None


def test_a_pattern_matching_no_file_fails_not_an_empty_ranking(
    inputs: Inputs, tmp_path: Path
) -> None:
    pattern = f"{tmp_path / 'nothing'}/*.avro"

    finished = run_pipeline(pattern, inputs, tmp_path / "out")

    assert finished.returncode == 1
    errors = [line for line in finished.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, finished.stderr
    assert pattern in errors[0]
    assert output_rows(inputs.warehouse) is None
