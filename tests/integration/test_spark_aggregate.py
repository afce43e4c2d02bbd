"""AggregateArtistsSpark on a real spark-submit (local[*], the machine's Java) against the
in-process AggregateArtists, on a generated month in local storage. One Spark run: its
start-up takes ~10 s."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from jobs.luigi_top_artists import (
    ARTIST_STREAMS,
    ARTIST_STREAMS_SPARK,
    TOP_ARTISTS,
    AggregateArtists,
    Top10Artists,
)
from jobs.luigi_top_artists.sample_data import write_streams
from jobs.runners.beam import SubprocessJobRunner
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.intervals import parse_interval
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.testing import InMemoryStateStore, InMemoryWarehouse
from tests.support.reference_toplist import artist_counts_in, top10_rows

pytestmark = pytest.mark.slow


def counts_in(folder: Path) -> dict[str, int]:
    """Every part file of an output folder, as {artist: count}."""
    counted: dict[str, int] = {}
    for part in sorted(folder.glob("part-*")):
        for line in part.read_text().splitlines():
            artist, count = line.split("\t")
            assert artist not in counted
            counted[artist] = int(count)
    return counted


async def test_spark_and_in_process_aggregates_are_identical(tmp_path: Path) -> None:
    root = tmp_path / "storage"
    storage = await LocalStorage.open(root)
    await write_streams(parse_interval("2012-07"), events=500, seed=11, storage=storage,
                        data_prefix=str(root))
    registry = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    adapters = Adapters(registry, InMemoryWarehouse(), storage, InMemoryStateStore(),
                        str(root / "outputs"), None, str(root))
    engine = Engine(adapters, runner=SubprocessJobRunner(), beam=load_settings({}).beam,
                    max_concurrent_runs=2, lease=timedelta(hours=1))
    try:
        assert (await engine.run(AggregateArtists(date_interval="2012-07"))).exit_code == 0
        spark = await engine.run(Top10Artists(date_interval="2012-07", use_spark=True))
        assert spark.exit_code == 0, spark.outcomes
        in_process = await registry.latest(ARTIST_STREAMS, "2012-07")
        on_spark = await registry.latest(ARTIST_STREAMS_SPARK, "2012-07")
        top = await registry.latest(TOP_ARTISTS, "2012-07")
    finally:
        await registry.aclose()
    assert in_process is not None
    assert on_spark is not None
    assert top is not None
    expected = artist_counts_in(root / "data", date(2012, 7, 1), date(2012, 7, 31))
    assert counts_in(Path(in_process.uri)) == expected
    # Spark's folder (part files, _SUCCESS, .crc files) is published whole as the revision.
    assert counts_in(Path(on_spark.uri)) == expected
    assert (Path(on_spark.uri) / "_SUCCESS").exists()
    # Top10Artists read every part file of the Spark output.
    lines = (Path(top.uri) / "part-00000").read_text().splitlines()
    ranked = top10_rows(expected, date(2012, 7, 1), date(2012, 7, 31))
    assert [line.split("\t") for line in lines] == [
        [str(a), str(b), artist, str(n)] for a, b, artist, n in ranked
    ]
    assert len(on_spark.lineage) == 31
    assert top.lineage == (on_spark.id,)
