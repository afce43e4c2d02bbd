"""The PostgreSQL database adapter and CopyToTable on the local server
(tests/support/services.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import date, timedelta

import asyncpg
import pytest

from jobs.luigi_top_artists import ArtistToplistToDatabase
from jobs.luigi_top_artists.sample_data import streams_day
from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Status
from orchestrator.errors import DatabaseError, InvalidIdentifier
from orchestrator.stores.database.base import Database, PgColumn
from orchestrator.stores.database.postgres import PostgresDatabase
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
)
from tests.contracts.database import DatabaseContract
from tests.support.reference_toplist import artist_counts, top10_rows

COLUMNS = (("date_from", "DATE"), ("date_to", "DATE"), ("artist", "TEXT"), ("streams", "INT"))
ROWS = [(date(2012, 7, 1), date(2012, 8, 1), "artist1", 12),
        (date(2012, 7, 1), date(2012, 8, 1), "artist2", 7)]


class CrashAfterCopy(PostgresDatabase):
    """Raises inside the transaction once COPY is done: a crash before commit."""

    async def _copy(self, connection: object, table: str, columns: Sequence[PgColumn],
                    rows: Iterable[Sequence[object]]) -> None:
        await super()._copy(connection, table, columns, rows)  # type: ignore[arg-type]
        raise RuntimeError("crashed between COPY and commit")


@pytest.fixture
async def database(postgres_dsn: str) -> AsyncIterator[PostgresDatabase]:
    opened = await PostgresDatabase.open(postgres_dsn)
    try:
        yield opened
    finally:
        await opened.aclose()


class TestPostgresDatabase(DatabaseContract):
    crash = RuntimeError

    @pytest.fixture
    async def database(self, postgres_dsn: str) -> AsyncIterator[Database]:
        opened = await PostgresDatabase.open(postgres_dsn)
        yield opened
        await opened.aclose()

    @pytest.fixture
    async def crashing(self, postgres_dsn: str) -> AsyncIterator[Database]:
        opened = await CrashAfterCopy.open(postgres_dsn)
        yield opened
        await opened.aclose()


async def count(dsn: str, sql: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        value: int = await connection.fetchval(sql)
        return value
    finally:
        await connection.close()


async def test_copy_and_marker_land_together_once(database: PostgresDatabase) -> None:
    assert await database.marker("top10", "T(a=1)") is None
    assert await database.copy_with_marker("top10", COLUMNS, ROWS, "T(a=1)")
    assert await database.marker("top10", "T(a=1)") is not None
    assert [tuple(r.values()) for r in await database.read_rows("top10")] == ROWS
    # A second load with the same key finds the marker and copies nothing.
    assert not await database.copy_with_marker("top10", COLUMNS, ROWS, "T(a=1)")
    assert len(await database.read_rows("top10")) == 2
    # Another key is another load, into the same table.
    assert await database.copy_with_marker("top10", COLUMNS, ROWS[:1], "T(a=2)")
    assert len(await database.read_rows("top10", limit=10)) == 3


async def test_a_crash_between_copy_and_commit_leaves_neither_rows_nor_marker(
    postgres_dsn: str, database: PostgresDatabase,
) -> None:
    crashing = await CrashAfterCopy.open(postgres_dsn)
    try:
        with pytest.raises(RuntimeError, match="between COPY and commit"):
            await crashing.copy_with_marker("top10", COLUMNS, ROWS, "T(a=1)")
    finally:
        await crashing.aclose()
    assert await database.marker("top10", "T(a=1)") is None
    # Even the table and the marker table were created in the rolled-back transaction.
    assert await count(postgres_dsn, "SELECT count(*) FROM pg_tables WHERE tablename IN"
                                     " ('top10', 'table_updates')") == 0
    assert await database.copy_with_marker("top10", COLUMNS, ROWS, "T(a=1)")
    assert len(await database.read_rows("top10")) == 2


async def test_identifiers_are_validated_and_values_bound(database: PostgresDatabase) -> None:
    for table in ("top10; DROP TABLE x", "Top10", "a.b.c"):
        with pytest.raises(InvalidIdentifier):
            await database.copy_with_marker(table, COLUMNS, ROWS, "k")
    with pytest.raises(InvalidIdentifier, match="unsupported type"):
        await database.copy_with_marker("t", [("a", "TEXT); DROP TABLE x; --")], [], "k")
    hostile = [(date(2012, 7, 1), date(2012, 8, 1), "'); DROP TABLE top10; --", 1)]
    assert await database.copy_with_marker("toplists.top10", COLUMNS, hostile, "k'--")
    [row] = await database.read_rows("toplists.top10")
    assert row["artist"] == "'); DROP TABLE top10; --"
    assert await database.marker("toplists.top10", "k'--") is not None
    with pytest.raises(DatabaseError):
        await database.read_rows("no_such_table")


async def test_artist_toplist_to_database_through_the_engine(
    postgres_dsn: str, database: PostgresDatabase,
) -> None:
    storage = InMemoryStorage()
    july = [date(2012, 7, 1) + timedelta(days=n) for n in range(31)]
    texts = [streams_day(day, 200, seed=3) for day in july]
    for day, text in zip(july, texts, strict=True):
        await storage.write(f"/s/data/streams_{day:%Y_%m_%d}_faked.tsv", text.encode())
    warehouse = InMemoryWarehouse()
    adapters = Adapters(InMemoryRegistry(), warehouse, storage, InMemoryStateStore(), "/out",
                        database, "/s")
    engine = Engine(adapters, runner=FakeJobRunner(warehouse, storage),
                    beam=load_settings({}).beam, max_concurrent_runs=2,
                    lease=timedelta(hours=1))
    task = ArtistToplistToDatabase(date_interval="2012-07")
    assert (await engine.run(task)).exit_code == 0
    rows = [tuple(r.values()) for r in await database.read_rows("top10")]
    assert rows == top10_rows(artist_counts(texts), july[0], july[-1])
    again = await engine.run(task)
    assert again.outcomes[task.task_id].status is Status.COMPLETE
    assert await count(postgres_dsn, "SELECT count(*) FROM top10") == 10
    assert await count(postgres_dsn, "SELECT count(*) FROM table_updates") == 1
