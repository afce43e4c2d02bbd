"""The embedded warehouse loads a table's rows as JSON documents: whatever rows a user
gives, of every column type and NULL, the table is the one binding each value makes."""

from __future__ import annotations

import math
from datetime import UTC, timedelta, timezone

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.stores.warehouse.duckdb_files import CREATE_META, LOAD_ROWS, replace_table
from orchestrator.tablespec import TableSpec

BOUNDED = settings(max_examples=60, deadline=None, database=None)
SPEC = TableSpec("my-project", "d", "t")
offsets = st.none() | st.just(UTC) | st.builds(
    timezone, st.integers(-14 * 60, 14 * 60).map(lambda minutes: timedelta(minutes=minutes)))
VALUES = {
    "STRING": st.text() | st.sampled_from(["", '"', "'", "\\", "\n", "\0", "null", "😀"]),
    "INT64": st.integers(-(2**63), 2**63 - 1),
    "FLOAT64": st.floats(),
    "BOOL": st.booleans(),
    "DATE": st.dates(),
    "TIMESTAMP": st.datetimes(timezones=offsets),
}
tables = st.lists(st.sampled_from(sorted(VALUES)), min_size=1, max_size=6).flatmap(
    lambda kinds: st.tuples(
        st.just(kinds),
        st.lists(st.tuples(*(st.none() | VALUES[kind] for kind in kinds)), max_size=12)))


def _comparable(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in row)
            for row in rows]


def _bound_each(connection: duckdb.DuckDBPyConnection, columns: list[tuple[str, str]],
                rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    """The table made by binding each value, as the embedded warehouse did."""
    replace_table(connection, SPEC, columns, [])
    for row in rows:
        placeholders = ", ".join("?" for _ in row)
        insert = f'INSERT INTO "d"."t" VALUES ({placeholders})'  # noqa: S608  # values bound
        connection.execute(insert, list(row))
    return connection.execute('SELECT * FROM "d"."t"').fetchall()


@BOUNDED
@given(tables)
def test_a_table_s_rows_are_the_ones_binding_each_value_makes(
    table: tuple[list[str], list[tuple[object, ...]]],
) -> None:
    kinds, rows = table
    columns = [(f"c_{place}", kind) for place, kind in enumerate(kinds)]
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(CREATE_META)
        replace_table(connection, SPEC, columns, rows)
        loaded = connection.execute('SELECT * FROM "d"."t"').fetchall()
        assert _comparable(loaded) == _comparable(_bound_each(connection, columns, rows))
    finally:
        connection.close()


def test_a_table_of_more_rows_than_a_statement_loads_is_whole() -> None:
    rows = [(f"r{n}", n) for n in range(2 * LOAD_ROWS + 1)]
    connection = duckdb.connect(":memory:")
    try:
        connection.execute(CREATE_META)
        replace_table(connection, SPEC, [("name", "STRING"), ("n", "INT64")], rows)
        assert connection.execute('SELECT * FROM "d"."t" ORDER BY n').fetchall() == rows
    finally:
        connection.close()
