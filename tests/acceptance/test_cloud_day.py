"""A top-artists day on the emulators: BigQuery (bqemulator) and GCS (gcp-storage-emulator).

The orchestrator runs as the ``charon`` command with ``warehouse.kind = "bigquery"``
and ``storage.kind = "gcs"``; the Beam job runs on the DirectRunner, reading the
EndContentFact Avro files from gs:// with Beam's own GCS IO and the TrackEntity table
over BigQuery's REST API (Beam's BigQuery IO cannot reach an emulator: see README).
The final table must hold exactly the rows the embedded run computes from the same
sample data.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import anyio
import duckdb
import pytest

from orchestrator.stores.storage.gcs import GcsStorage
from orchestrator.stores.warehouse.bigquery import BigQueryWarehouse
from orchestrator.tablespec import TableSpec
from tests.acceptance.conftest import CHARON, Cli
from tests.support.emulators import (  # noqa: F401  (pytest finds fixtures by their imported names)
    BUCKET,
    Emulator,
    bigquery_emulator,
    charon_on_emulators,
    clear_bigquery,
    gcs_emulator,
)

pytestmark = pytest.mark.slow

DAY = date(2018, 10, 31)
EVENTS = 5000
SEED = 7
OUTPUT = "di.golden.path.charon.top_artists"
FINAL = TableSpec("scio-playground", "charon", "top_artists_daily20181031")
RUN = ("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY.isoformat(),
       "--top-n", "20", "--local-scheduler")
Row = tuple[str, int, str, str, int]


def embedded_rows(charon: Cli) -> list[Row]:
    made = charon("sample-data", "--date", DAY.isoformat(), "--events", str(EVENTS),
                  "--seed", str(SEED))
    assert made.returncode == 0, made.stderr
    ran = charon(*RUN)
    assert ran.returncode == 0, ran.stderr
    path = charon.home / "warehouse" / "scio-playground.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT date::VARCHAR, rank, artist_gid, artist_name, streams"  # noqa: S608  (fixed spec)
            f" FROM {FINAL.dataset}.{FINAL.table} ORDER BY rank"
        ).fetchall()
    return [tuple(row) for row in rows]


async def final_rows(bigquery: Emulator) -> list[Row]:
    # One table read at a time: see the list_concurrency note in test_cloud_adapters.
    warehouse = await BigQueryWarehouse.open(
        project="scio-playground", location="EU", api_root=f"{bigquery.url}/bigquery/v2",
        list_concurrency=1,
    )
    try:
        rows = await warehouse.read_rows(FINAL)
        staging = await warehouse.list_tables(FINAL.project, "_incoming_EU")
    finally:
        await warehouse.aclose()
    assert staging == []  # every staging table was dropped after the move
    ordered = sorted(rows, key=lambda row: int(str(row["rank"])))
    return [
        (str(r["date"]), int(str(r["rank"])), str(r["artist_gid"]), str(r["artist_name"]),
         int(str(r["streams"])))
        for r in ordered
    ]


async def test_a_day_on_the_emulators_matches_the_embedded_run(
    charon: Cli, tmp_path: Path, bigquery_emulator: Emulator, gcs_emulator: Emulator  # noqa: F811
) -> None:
    expected = embedded_rows(charon)
    assert len(expected) == 20

    clear_bigquery(bigquery_emulator)
    home = tmp_path / "cloud-home"
    home.mkdir()
    env = charon_on_emulators(home, bigquery_emulator, gcs_emulator)
    made = await anyio.run_process(
        [CHARON, "sample-data", "--date", DAY.isoformat(), "--events", str(EVENTS),
         "--seed", str(SEED)], env=env, check=False,
    )
    assert made.returncode == 0, (made.stdout + made.stderr).decode()
    ran = await anyio.run_process([CHARON, *RUN], env=env, check=False)
    assert ran.returncode == 0, (ran.stdout + ran.stderr).decode()
    assert "published textOutput" in ran.stdout.decode()

    assert await final_rows(bigquery_emulator) == expected
    storage = await GcsStorage.open(api_root=gcs_emulator.url)
    try:
        [part] = [o for o in await storage.list(f"gs://{BUCKET}/outputs/{OUTPUT}/")
                  if o.uri.endswith("/part")]
        lines = [line async for line in storage.read_lines(part.uri)]
    finally:
        await storage.aclose()
    assert lines == [f"{gid}\t{name}\t{streams}" for _, _, gid, name, streams in expected]
    assert os.environ.get("BIGQUERY_EMULATOR_HOST") is None  # nothing leaked into the tests
