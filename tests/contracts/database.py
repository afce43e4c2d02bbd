"""What every Database must do; subclass and provide ``database`` and ``crashing``.

``crashing`` is a second handle on the same data whose loads crash (raise ``crash``)
after the rows are copied and before the load commits.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import anyio
import pytest

from orchestrator.errors import InvalidIdentifier
from orchestrator.stores.database.base import Database, PgColumn
from orchestrator.testing import ProcessCrashed

COLUMNS: tuple[PgColumn, ...] = (
    ("date_from", "DATE"), ("date_to", "DATE"), ("artist", "TEXT"), ("streams", "INT"),
)
ROWS = [(date(2012, 7, 1), date(2012, 8, 1), f"artist{n}", 20 - n) for n in range(5)]
KEY = "Top10(date_interval=2012-07)"


def values(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [tuple(row.values()) for row in rows]


class DatabaseContract:
    crash: type[BaseException] = ProcessCrashed

    @pytest.fixture
    async def database(self) -> AsyncIterator[Database]:
        raise NotImplementedError("subclasses provide the database under test")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    @pytest.fixture
    async def crashing(self) -> AsyncIterator[Database]:
        raise NotImplementedError("subclasses provide a database that crashes before commit")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    async def test_a_load_writes_its_rows_and_its_marker(self, database: Database) -> None:
        assert await database.marker("top10", KEY) is None
        before = datetime.now(UTC)
        assert await database.copy_with_marker("top10", COLUMNS, ROWS, KEY)
        marked = await database.marker("top10", KEY)
        assert marked is not None
        assert marked.tzinfo is not None
        # Clocks of a server and of this process may differ a little.
        assert before - timedelta(minutes=1) <= marked <= datetime.now(UTC) + timedelta(minutes=1)
        assert values(await database.read_rows("top10")) == ROWS

    async def test_a_second_load_with_the_key_returns_false_and_changes_nothing(
        self, database: Database,
    ) -> None:
        assert await database.copy_with_marker("top10", COLUMNS, ROWS, KEY)
        marked = await database.marker("top10", KEY)
        assert not await database.copy_with_marker("top10", COLUMNS, ROWS[:1], KEY)
        assert await database.marker("top10", KEY) == marked
        assert values(await database.read_rows("top10")) == ROWS

    async def test_markers_are_per_key_and_per_table(self, database: Database) -> None:
        assert await database.copy_with_marker("top10", COLUMNS, ROWS[:2], KEY)
        assert await database.copy_with_marker("top10", COLUMNS, ROWS[2:], "another")
        assert await database.copy_with_marker("toplists.top10", COLUMNS, ROWS, KEY)
        assert await database.marker("other", KEY) is None
        assert values(await database.read_rows("top10")) == ROWS
        assert values(await database.read_rows("toplists.top10")) == ROWS

    async def test_concurrent_loads_of_one_key_load_once(self, database: Database) -> None:
        loaded: list[bool] = []

        async def load() -> None:
            loaded.append(await database.copy_with_marker("top10", COLUMNS, ROWS, KEY))

        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(load)
        assert sorted(loaded) == [False, False, True]
        assert values(await database.read_rows("top10")) == ROWS

    async def test_a_crash_before_commit_leaves_neither_rows_nor_marker(
        self, database: Database, crashing: Database,
    ) -> None:
        with pytest.raises(self.crash):
            await crashing.copy_with_marker("top10", COLUMNS, ROWS, KEY)
        assert await database.marker("top10", KEY) is None
        assert await database.copy_with_marker("top10", COLUMNS, ROWS, KEY)
        assert values(await database.read_rows("top10")) == ROWS

    @pytest.mark.parametrize(("table", "columns", "key"), [
        ("top10; DROP TABLE x", COLUMNS, KEY),
        ("Top10", COLUMNS, KEY),
        ("a.b.c", COLUMNS, KEY),
        ("", COLUMNS, KEY),
        ("top10", [("artist; --", "TEXT")], KEY),
        ("top10", [("a.b", "TEXT")], KEY),
        ("top10", [("artist", "TEXT); DROP TABLE x; --")], KEY),
        ("top10", [], KEY),
        ("top10", COLUMNS, ""),
    ])
    async def test_invalid_loads_are_refused_and_change_nothing(
        self, database: Database, table: str, columns: list[PgColumn], key: str,
    ) -> None:
        with pytest.raises(InvalidIdentifier):
            await database.copy_with_marker(table, columns, ROWS, key)
        # Neither a marker nor rows were left: the same load, valid, happens in full.
        assert await database.marker("top10", KEY) is None
        assert await database.copy_with_marker("top10", COLUMNS, ROWS, KEY)
        assert values(await database.read_rows("top10")) == ROWS

    async def test_values_are_bound_never_interpolated(self, database: Database) -> None:
        hostile = [(date(2012, 7, 1), date(2012, 8, 1), "'); DROP TABLE top10; --", 1)]
        assert await database.copy_with_marker("top10", COLUMNS, hostile, "k'); --")
        assert values(await database.read_rows("top10")) == hostile
        assert await database.marker("top10", "k'); --") is not None

    async def test_rows_come_back_in_load_order_up_to_the_limit(
        self, database: Database,
    ) -> None:
        assert await database.copy_with_marker("top10", COLUMNS, ROWS[:3], "first")
        assert await database.copy_with_marker("top10", COLUMNS, ROWS[3:], "second")
        assert values(await database.read_rows("top10")) == ROWS
        assert values(await database.read_rows("top10", limit=2)) == ROWS[:2]
        assert values(await database.read_rows("top10", limit=0)) == []
        assert values(await database.read_rows("top10", limit=100)) == ROWS
