"""The on-disk layout of the embedded warehouse, shared by the adapter and by jobs.

One DuckDB file per project (``<root>/<project>.duckdb``), one schema per dataset.
DuckDB tracks no modification times, so every write through these helpers stamps
``_charon.tables``; both the orchestrator's adapter and the Beam job write through
them, which keeps ``last_modified`` true whoever wrote the table.

These functions block: the async adapter calls them in worker threads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import WarehouseError
from orchestrator.stores.warehouse.base import check_column
from orchestrator.tablespec import TableSpec

if TYPE_CHECKING:
    import duckdb

CREATE_META = (
    'CREATE SCHEMA IF NOT EXISTS "_charon";'
    'CREATE TABLE IF NOT EXISTS "_charon".tables ('
    " dataset VARCHAR NOT NULL, name VARCHAR NOT NULL,"
    " modified TIMESTAMPTZ NOT NULL, PRIMARY KEY (dataset, name))"
)
STAMP_MODIFIED = (
    'INSERT OR REPLACE INTO "_charon".tables (dataset, name, modified) VALUES (?, ?, ?)'
)
FORGET_TABLE = 'DELETE FROM "_charon".tables WHERE dataset = ? AND name = ?'

# BigQuery type names (what users write in schemas) to DuckDB's.
DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "INT64": "BIGINT",
    "INTEGER": "BIGINT",
    "FLOAT64": "DOUBLE",
    "FLOAT": "DOUBLE",
    "BOOL": "BOOLEAN",
    "BOOLEAN": "BOOLEAN",
    "DATE": "DATE",
    "TIMESTAMP": "TIMESTAMPTZ",
}

_LOCK_WAIT_SECONDS = 30.0
LOAD_ROWS = 10_000
"""Rows an INSERT loads, as one JSON document bound as one value (DuckDB's
``from_json_strict``), not a value each: DuckDB's Python client tries to import pandas
for every value it binds, which searches the whole ``sys.path`` each time when pandas
is not installed. A table of 183,769 rows of three strings took 90 s to create; about
1 s."""
LOAD_ROWS_SQL = (
    "INSERT INTO {table} SELECT unnest(from_json_strict(?::JSON, ?), recursive := true)"
)


def database_path(root: Path, project: str) -> Path:
    return root / f"{project}.duckdb"


def quoted(spec: TableSpec) -> str:
    """``"dataset"."table"``; safe because TableSpec validated both identifiers."""
    return f'"{spec.dataset}"."{spec.table}"'


def connect(root: Path, project: str) -> duckdb.DuckDBPyConnection:
    """Open the project's database, waiting while another process holds its lock.

    DuckDB lets one process at a time open a file for writing; a job and the
    orchestrator take turns, so a lock conflict is waited out, not reported.
    """
    # Imported on first use, in the worker thread that opens the file: a third of the
    # start-up of every `charon` command that never touches the warehouse otherwise.
    import duckdb  # noqa: PLC0415

    root.mkdir(parents=True, exist_ok=True)
    path = database_path(root, project)
    deadline = time.monotonic() + _LOCK_WAIT_SECONDS
    delay = 0.05
    while True:
        try:
            connection = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise WarehouseError(f"cannot open warehouse file {path}: {exc}") from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        connection.execute(CREATE_META)
        return connection


def column_sql(name: str, bigquery_type: str) -> str:
    check_column(name, bigquery_type)
    return f'"{name}" {DUCKDB_TYPES[bigquery_type.upper()]}'


def replace_table(
    connection: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    columns: Sequence[tuple[str, str]],
    rows: Iterable[Sequence[object]],
) -> None:
    """Create or replace ``spec`` with ``rows`` in one transaction and stamp it."""
    definition = ", ".join(column_sql(name, kind) for name, kind in columns)
    # The rows' fields are named by their places, c0, c1...: a struct's fields come out
    # in its structure's order, which is the table's.
    structure = json.dumps([{f"c{place}": DUCKDB_TYPES[kind.upper()]
                             for place, (_, kind) in enumerate(columns)}])
    insert = LOAD_ROWS_SQL.format(table=quoted(spec))
    connection.execute("BEGIN TRANSACTION")
    try:
        connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{spec.dataset}"')
        connection.execute(f"CREATE OR REPLACE TABLE {quoted(spec)} ({definition})")
        values = list(rows)
        for start in range(0, len(values), LOAD_ROWS):
            document = json.dumps(
                [{f"c{place}": value for place, value in enumerate(row)}
                 for row in values[start : start + LOAD_ROWS]],
                default=str)  # dates and times in ISO 8601, as DuckDB casts them
            connection.execute(insert, [document, structure])
        stamp_modified(connection, spec)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def stamp_modified(connection: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    connection.execute(STAMP_MODIFIED, [spec.dataset, spec.table, datetime.now(UTC)])
