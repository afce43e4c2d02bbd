"""charon and real Luigi (3.8.1, its own venv) take turns loading the example's top 10 into
one PostgreSQL database: each finds the other's marker and loads nothing twice."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import anyio.to_thread
import asyncpg
import pytest

from bench.luigi_venv import luigi_python
from jobs.luigi_top_artists import ArtistToplistToDatabase
from jobs.luigi_top_artists.sample_data import write_streams
from jobs.runners.beam import SubprocessJobRunner
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.intervals import parse_interval
from orchestrator.stores.database.postgres import PostgresDatabase
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.testing import InMemoryRegistry, InMemoryStateStore, InMemoryWarehouse

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
INTERVAL = "2012-06"


@dataclass(frozen=True)
class Side:
    root: Path
    """The storage root: charon's streams are under data/, Luigi works in it."""
    dsn: str


@pytest.fixture
async def side(tmp_path: Path, postgres_dsn: str) -> Side:
    root = tmp_path / "storage"
    storage = await LocalStorage.open(root)
    await write_streams(parse_interval(INTERVAL), events=200, seed=5, storage=storage,
                        data_prefix=str(root))
    return Side(root, postgres_dsn)


async def run_charon(side: Side, *, use_spark: bool = False) -> None:
    database = await PostgresDatabase.open(side.dsn)
    storage = await LocalStorage.open(side.root)
    adapters = Adapters(InMemoryRegistry(), InMemoryWarehouse(), storage, InMemoryStateStore(),
                        str(side.root / "outputs"), database, str(side.root))
    engine = Engine(adapters, runner=SubprocessJobRunner(),
                    beam=load_settings({}).beam, max_concurrent_runs=2,
                    lease=timedelta(hours=1))
    try:
        task = ArtistToplistToDatabase(date_interval=INTERVAL, use_spark=use_spark)
        report = await engine.run(task)
    finally:
        await database.aclose()
    assert report.exit_code == 0, report.outcomes


async def run_luigi(side: Side) -> str:
    """Luigi's own command on its example; its execution summary."""
    dsn = urlsplit(side.dsn)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOPLISTS_HOST": dsn.hostname or "",
           "TOPLISTS_PORT": str(dsn.port), "TOPLISTS_DATABASE": dsn.path.lstrip("/"),
           "TOPLISTS_USER": dsn.username or ""}
    argv = [luigi_python(), "-m", "luigi", "--module", "bench.luigi_top_artists",
            "ArtistToplistToDatabase", "--date-interval", INTERVAL, "--local-scheduler"]

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, env=env, cwd=side.root, capture_output=True, text=True,
                              timeout=120, check=False)

    done = await anyio.to_thread.run_sync(call)
    assert done.returncode == 0, done.stderr
    return done.stderr


async def loaded(dsn: str) -> tuple[int, list[str]]:
    """The top10 table's row count, and the marker rows' update ids."""
    connection = await asyncpg.connect(dsn)
    try:
        rows: int = await connection.fetchval("SELECT count(*) FROM top10")
        markers = [record["update_id"] for record in
                   await connection.fetch("SELECT update_id FROM table_updates")]
        return rows, markers
    finally:
        await connection.close()


async def test_charon_skips_a_load_luigi_made(side: Side) -> None:
    summary = await run_luigi(side)
    assert "ran successfully" in summary, summary
    luigis = await loaded(side.dsn)
    task = ArtistToplistToDatabase(date_interval=INTERVAL)
    assert luigis == (10, [task.update_id])
    # Luigi's table keeps a local TIMESTAMP: read back, it is the instant it was written.
    database = await PostgresDatabase.open(side.dsn)
    try:
        marked = await database.marker("top10", task.update_id)
    finally:
        await database.aclose()
    assert marked is not None
    assert abs(marked - datetime.now(UTC)) < timedelta(minutes=1)

    await run_charon(side)
    assert await loaded(side.dsn) == luigis


async def test_luigi_skips_a_load_charon_made(side: Side) -> None:
    await run_charon(side)
    charons = await loaded(side.dsn)
    assert charons == (10, [ArtistToplistToDatabase(date_interval=INTERVAL).update_id])

    summary = await run_luigi(side)
    assert "1 complete ones were encountered" in summary, summary
    assert "ran successfully" not in summary, summary
    assert await loaded(side.dsn) == charons


async def test_the_spark_variant_adopts_luigis_load_without_copying(side: Side) -> None:
    await run_luigi(side)
    await run_charon(side, use_spark=True)
    rows, markers = await loaded(side.dsn)
    # Luigi's id for use_spark=True is another load to Luigi; to charon it is the same
    # one: it adds that marker, so Luigi skips it too, and copies no row.
    assert rows == 10
    assert sorted(markers) == sorted(
        ArtistToplistToDatabase(date_interval=INTERVAL, use_spark=spark).update_id
        for spark in (False, True))
