"""Config and IO choice for Google Cloud: no emulator needed."""

from __future__ import annotations

import apache_beam as beam
import pytest

from jobs.top_artists.pipeline import OUTPUT_COLUMNS, parse_args
from jobs.top_artists.warehouse_io import WarehouseOptions, read_table, write_table
from orchestrator.config import load_settings
from orchestrator.errors import ConfigError
from orchestrator.tablespec import TableSpec

SPEC = TableSpec("scio-playground", "charon", "top_artists_daily20181031")


def test_cloud_kinds_are_accepted() -> None:
    settings = load_settings({
        "CHARON_WAREHOUSE__KIND": "bigquery", "CHARON_WAREHOUSE__PROJECT": "billing-project",
        "CHARON_STORAGE__KIND": "gcs", "CHARON_STORAGE__OUTPUT_PREFIX": "gs://bucket/out",
    })
    assert (settings.warehouse.kind, settings.warehouse.project) == ("bigquery", "billing-project")
    assert (settings.storage.kind, settings.storage.output_prefix) == ("gcs", "gs://bucket/out")


def test_each_adapter_switches_on_its_own() -> None:
    settings = load_settings({"CHARON_WAREHOUSE__KIND": "bigquery"})
    assert (settings.warehouse.kind, settings.storage.kind) == ("bigquery", "local")


@pytest.mark.parametrize("prefix", ["", "/data/outputs", "gs://", "s3://bucket/x"])
def test_gcs_needs_a_gs_output_prefix(prefix: str) -> None:
    with pytest.raises(ConfigError, match=r"storage.output_prefix.*gs://bucket/path"):
        load_settings({"CHARON_STORAGE__KIND": "gcs", "CHARON_STORAGE__OUTPUT_PREFIX": prefix})


def test_job_io_follows_the_options(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BIGQUERY_EMULATOR_HOST", raising=False)
    argv = ["--endContentFact=gs://b/x/*.avro", f"--trackEntity={SPEC}", "--textOutput=gs://b/o",
            f"--bqOutput={SPEC}", "--topN=3"]
    job, _ = parse_args(argv)
    assert job.warehouse == WarehouseOptions()
    assert isinstance(read_table(SPEC, ["artist_gid"], job.warehouse), beam.io.ReadFromBigQuery)
    assert type(write_table(SPEC, OUTPUT_COLUMNS, job.warehouse)).__name__ == "_WriteBigQuery"
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9050")
    job, _ = parse_args(argv)
    assert job.warehouse.bigquery_emulator == "127.0.0.1:9050"
    # Beam's BigQuery IO cannot reach the emulator: the REST reader is used instead.
    assert _reader_of(read_table(SPEC, ["artist_gid"], job.warehouse)) == "bigquery_rest_rows"
    job, _ = parse_args([*argv, "--duckdbDir=/tmp/wh"])
    assert _reader_of(write_table(SPEC, OUTPUT_COLUMNS, job.warehouse)) == "replace_duckdb_table"


def _reader_of(transform: object) -> str:
    """The function a run-time read or replace transform calls, by name."""
    for attribute in ("_read", "_replace"):
        if (function := getattr(transform, attribute, None)) is not None:
            return str(function.func.__name__)
    return type(transform).__name__
