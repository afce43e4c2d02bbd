"""What every Warehouse must do; subclass and provide the ``warehouse`` fixture.

The warehouse must stage into location ``EU``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from orchestrator.errors import CharonError, InvalidIdentifier, TableNotFound, WarehouseError
from orchestrator.stores.warehouse.base import Column, Warehouse
from orchestrator.tablespec import TableSpec

FINAL = TableSpec("scio-playground", "charon_test", "top_artists_daily20181031")
COLUMNS = (Column("artist", "STRING"), Column("plays", "INT64"), Column("share", "FLOAT64"))
ROWS = [("abba", 30, 0.5), ("blur", 20, 0.25), ("cure", 10, 0.25)]


def as_dicts(rows: list[tuple[str, int, float]]) -> list[dict[str, object]]:
    return [{"artist": a, "plays": p, "share": s} for a, p, s in rows]


class WarehouseContract:
    @pytest.fixture
    async def warehouse(self) -> AsyncIterator[Warehouse]:
        raise NotImplementedError("subclasses provide the warehouse under test")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    async def test_create_then_info_and_read(self, warehouse: Warehouse) -> None:
        created = await warehouse.create_table(FINAL, COLUMNS, ROWS)
        assert (created.spec, created.rows) == (str(FINAL), 3)
        assert created.last_modified.tzinfo is not None
        assert await warehouse.table_info(FINAL) == created
        assert await warehouse.read_rows(FINAL) == as_dicts(ROWS)
        assert await warehouse.read_rows(FINAL, limit=2) == as_dicts(ROWS[:2])

    async def test_missing_table(self, warehouse: Warehouse) -> None:
        assert await warehouse.table_info(FINAL) is None
        with pytest.raises(TableNotFound):
            await warehouse.read_rows(FINAL)

    async def test_create_replaces_and_restamps(self, warehouse: Warehouse) -> None:
        first = await warehouse.create_table(FINAL, COLUMNS, ROWS)
        second = await warehouse.create_table(FINAL, COLUMNS[:1], [("zappa",)])
        assert second.rows == 1
        assert second.last_modified >= first.last_modified
        assert await warehouse.read_rows(FINAL) == [{"artist": "zappa"}]

    async def test_empty_table(self, warehouse: Warehouse) -> None:
        info = await warehouse.create_table(FINAL, COLUMNS, [])
        assert info.rows == 0
        assert await warehouse.read_rows(FINAL) == []

    async def test_list_tables_of_one_dataset(self, warehouse: Warehouse) -> None:
        a = await warehouse.create_table(FINAL, COLUMNS, ROWS)
        other = TableSpec(FINAL.project, FINAL.dataset, "plays_daily20181031")
        b = await warehouse.create_table(other, COLUMNS, ROWS[:1])
        await warehouse.create_table(TableSpec(FINAL.project, "elsewhere", "t"), COLUMNS, ROWS)
        listed = await warehouse.list_tables(FINAL.project, FINAL.dataset)
        assert sorted(listed, key=lambda info: info.spec) == sorted([a, b], key=lambda i: i.spec)
        assert await warehouse.list_tables(FINAL.project, "no_such_dataset") == []
        assert await warehouse.list_tables("other-project", FINAL.dataset) == []

    async def test_list_tables_says_what_table_info_says(self, warehouse: Warehouse) -> None:
        # Sensors look several tables of one dataset up with one listing.
        other = TableSpec(FINAL.project, FINAL.dataset, "plays_daily20181031")
        for spec in (FINAL, other):
            await warehouse.create_table(spec, COLUMNS, ROWS)
        listed = {info.spec: info for info in
                  await warehouse.list_tables(FINAL.project, FINAL.dataset)}
        for spec in (FINAL, other):
            assert listed[str(spec)] == await warehouse.table_info(spec)

    async def test_list_tables_validates_names(self, warehouse: Warehouse) -> None:
        with pytest.raises(InvalidIdentifier):
            await warehouse.list_tables(FINAL.project, 'x"; DROP TABLE y; --')

    async def test_staging_table_naming(self, warehouse: Warehouse) -> None:
        staging = await warehouse.staging_table(FINAL)
        again = await warehouse.staging_table(FINAL)
        assert staging.project == FINAL.project
        assert staging.dataset == "_incoming_EU"
        assert re.fullmatch(r"_top_artists_daily20181031_\d{10}", staging.table)
        assert staging != again
        assert await warehouse.table_info(staging) is None

    async def test_replace_from_staging_replaces_final(self, warehouse: Warehouse) -> None:
        before = await warehouse.create_table(FINAL, COLUMNS, ROWS)
        staging = await warehouse.staging_table(FINAL)
        await warehouse.create_table(staging, COLUMNS, [("dido", 5, 1.0), ("enya", 4, 0.0)])
        moved = await warehouse.replace_from_staging(staging, FINAL, "job-1")
        assert (moved.spec, moved.rows) == (str(FINAL), 2)
        assert moved.last_modified >= before.last_modified
        assert await warehouse.read_rows(FINAL) == as_dicts([("dido", 5, 1.0), ("enya", 4, 0.0)])
        assert await warehouse.table_info(FINAL) == moved

    async def test_replace_creates_missing_final(self, warehouse: Warehouse) -> None:
        staging = await warehouse.staging_table(FINAL)
        await warehouse.create_table(staging, COLUMNS, ROWS)
        final = TableSpec(FINAL.project, "fresh_dataset", "t")
        assert (await warehouse.replace_from_staging(staging, final, "job-1")).rows == 3

    async def test_replace_from_missing_staging(self, warehouse: Warehouse) -> None:
        before = await warehouse.create_table(FINAL, COLUMNS, ROWS)
        staging = await warehouse.staging_table(FINAL)
        with pytest.raises(TableNotFound):
            await warehouse.replace_from_staging(staging, FINAL, "job-1")
        assert await warehouse.table_info(FINAL) == before
        assert await warehouse.read_rows(FINAL) == as_dicts(ROWS)

    async def test_retried_move_with_same_job_key(self, warehouse: Warehouse) -> None:
        staging = await warehouse.staging_table(FINAL)
        await warehouse.create_table(staging, COLUMNS, ROWS[:2])
        moved = await warehouse.replace_from_staging(staging, FINAL, "job-7")
        await warehouse.drop_table(staging)
        retried = await warehouse.replace_from_staging(staging, FINAL, "job-7")
        assert retried == moved
        with pytest.raises(TableNotFound):
            await warehouse.replace_from_staging(staging, FINAL, "job-8")

    async def test_job_key_reused_for_another_move(self, warehouse: Warehouse) -> None:
        staging = await warehouse.staging_table(FINAL)
        await warehouse.create_table(staging, COLUMNS, ROWS)
        await warehouse.replace_from_staging(staging, FINAL, "job-7")
        other = TableSpec(FINAL.project, FINAL.dataset, "another_final")
        with pytest.raises(WarehouseError):
            await warehouse.replace_from_staging(staging, other, "job-7")
        assert await warehouse.table_info(other) is None

    async def test_move_onto_itself_or_across_projects(self, warehouse: Warehouse) -> None:
        await warehouse.create_table(FINAL, COLUMNS, ROWS)
        with pytest.raises(CharonError):
            await warehouse.replace_from_staging(FINAL, FINAL, "job-1")
        elsewhere = TableSpec("other-project", FINAL.dataset, FINAL.table)
        with pytest.raises(WarehouseError):
            await warehouse.replace_from_staging(FINAL, elsewhere, "job-2")
        assert await warehouse.read_rows(FINAL) == as_dicts(ROWS)

    async def test_drop_table(self, warehouse: Warehouse) -> None:
        await warehouse.create_table(FINAL, COLUMNS, ROWS)
        await warehouse.drop_table(FINAL)
        assert await warehouse.table_info(FINAL) is None
        assert await warehouse.list_tables(FINAL.project, FINAL.dataset) == []
        await warehouse.drop_table(FINAL)  # dropping again is fine
        recreated = await warehouse.create_table(FINAL, COLUMNS, ROWS[:1])
        assert recreated.rows == 1

    @pytest.mark.parametrize(
        ("columns", "rows"),
        [
            ((Column("artist", "NOT_A_TYPE"),), [("x",)]),
            ((Column("bad name", "STRING"),), [("x",)]),
            ((Column("artist", "STRING"),), [("x", 1)]),
            ((), []),
        ],
    )
    async def test_bad_table_definition(
        self, warehouse: Warehouse, columns: tuple[Column, ...], rows: list[tuple[object, ...]]
    ) -> None:
        with pytest.raises(WarehouseError):
            await warehouse.create_table(FINAL, columns, rows)
        assert await warehouse.table_info(FINAL) is None

    async def test_job_options_are_strings(self, warehouse: Warehouse) -> None:
        options = warehouse.job_options()
        assert all(isinstance(o, str) and o.startswith("--") for o in options)
