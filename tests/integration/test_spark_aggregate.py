"""AggregateArtistsSpark on a real spark-submit (local[*], the machine's Java) against an
independent count, on a generated month in local storage; and the Spark and in-process
variants as one task, whichever runs first. One Spark run: its start-up takes ~10 s."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest

from jobs.luigi_top_artists import ARTIST_STREAMS, TOP_ARTISTS, Top10Artists
from jobs.luigi_top_artists.sample_data import write_streams
from jobs.runners.beam import SubprocessJobRunner
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Status
from orchestrator.intervals import parse_interval
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.testing import InMemoryStateStore, InMemoryWarehouse
from tests.support.reference_toplist import artist_counts_in, top10_rows

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Month:
    root: Path
    registry: SqliteRegistry
    engine: Engine

    async def revisions(self, partition: str) -> dict[str, int]:
        return {endpoint: len(await self.registry.list(endpoint, partition))
                for endpoint in (ARTIST_STREAMS, TOP_ARTISTS)}


@pytest.fixture
async def month(tmp_path: Path) -> AsyncIterator[Month]:
    """July and June 2012 of streams, and an engine that runs Spark jobs for real."""
    root = tmp_path / "storage"
    storage = await LocalStorage.open(root)
    for interval in ("2012-06", "2012-07"):
        await write_streams(parse_interval(interval), events=500, seed=11, storage=storage,
                            data_prefix=str(root))
    registry = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    adapters = Adapters(registry, InMemoryWarehouse(), storage, InMemoryStateStore(),
                        str(root / "outputs"), None, str(root))
    engine = Engine(adapters, runner=SubprocessJobRunner(), beam=load_settings({}).beam,
                    max_concurrent_runs=2, lease=timedelta(hours=1))
    try:
        yield Month(root, registry, engine)
    finally:
        await registry.aclose()


def counts_in(folder: Path) -> dict[str, int]:
    """Every part file of an output folder, as {artist: count}."""
    counted: dict[str, int] = {}
    for part in sorted(folder.glob("part-*")):
        for line in part.read_text().splitlines():
            artist, count = line.split("\t")
            assert artist not in counted
            counted[artist] = int(count)
    return counted


async def test_spark_aggregates_as_counted_and_in_process_then_does_nothing(
    month: Month,
) -> None:
    spark = await month.engine.run(Top10Artists(date_interval="2012-07", use_spark=True))
    assert spark.exit_code == 0, spark.outcomes
    assert spark.outcomes["AggregateArtists(date_interval=2012-07)"].status is Status.DONE
    on_spark = await month.registry.latest(ARTIST_STREAMS, "2012-07")
    top = await month.registry.latest(TOP_ARTISTS, "2012-07")
    assert on_spark is not None
    assert top is not None
    expected = artist_counts_in(month.root / "data", date(2012, 7, 1), date(2012, 7, 31))
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

    # The in-process variant is the same task: complete for the same inputs.
    in_process = await month.engine.run(Top10Artists(date_interval="2012-07"))
    assert in_process.exit_code == 0, in_process.outcomes
    assert in_process.outcomes["Top10Artists(date_interval=2012-07)"].status is Status.COMPLETE
    assert await month.revisions("2012-07") == {ARTIST_STREAMS: 1, TOP_ARTISTS: 1}


async def test_spark_after_in_process_does_nothing(month: Month) -> None:
    first = await month.engine.run(Top10Artists(date_interval="2012-06"))
    assert first.exit_code == 0, first.outcomes
    again = await month.engine.run(Top10Artists(date_interval="2012-06", use_spark=True))
    assert again.exit_code == 0, again.outcomes
    assert {outcome.status for outcome in again.outcomes.values()} == {
        Status.AVAILABLE, Status.COMPLETE}
    assert await month.revisions("2012-06") == {ARTIST_STREAMS: 1, TOP_ARTISTS: 1}
