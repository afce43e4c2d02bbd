"""The embedded warehouse: one DuckDB file per project, through ``duckdb_files``.

Every operation opens the project's file, works, and closes it again: a Beam job
process writes the same files while the orchestrator waits, and DuckDB lets only
one process at a time hold a file open for writing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import InvalidIdentifier, TableNotFound, WarehouseError
from orchestrator.model import TableInfo
from orchestrator.stores.warehouse import duckdb_files
from orchestrator.stores.warehouse.base import (
    Column,
    check_location,
    check_move,
    check_read_limit,
    found_table,
    staging_spec,
)
from orchestrator.stores.warehouse.duckdb_files import quoted
from orchestrator.tablespec import TableSpec

T = TypeVar("T")
if TYPE_CHECKING:
    from duckdb import DuckDBPyConnection as Connection


# Moves are kept in the meta schema beside duckdb_files' table stamps ("_charon").
CREATE_MOVES = (
    'CREATE TABLE IF NOT EXISTS "_charon".moves ('
    " job_key VARCHAR PRIMARY KEY, staging VARCHAR NOT NULL, final VARCHAR NOT NULL,"
    " moved TIMESTAMPTZ NOT NULL)"
)
SELECT_MOVE = 'SELECT staging, final FROM "_charon".moves WHERE job_key = ?'
INSERT_MOVE = (
    'INSERT INTO "_charon".moves (job_key, staging, final, moved) VALUES (?, ?, ?, ?)'
)
TABLE_EXISTS = (
    "SELECT count(*) FROM duckdb_tables()"
    " WHERE database_name = current_database() AND NOT temporary"
    " AND schema_name = ? AND table_name = ?"
)
LIST_TABLES = (
    "SELECT table_name FROM duckdb_tables()"
    " WHERE database_name = current_database() AND NOT temporary AND schema_name = ?"
    " ORDER BY table_name"
)
SELECT_STAMPS = 'SELECT name, modified FROM "_charon".tables WHERE dataset = ?'


def _exists(connection: Connection, spec: TableSpec) -> bool:
    row = connection.execute(TABLE_EXISTS, [spec.dataset, spec.table]).fetchone()
    return bool(row and row[0])


def _count(connection: Connection, spec: TableSpec) -> int:
    row = connection.execute(f"SELECT count(*) FROM {quoted(spec)}").fetchone()  # noqa: S608
    return int(row[0]) if row else 0


def _stamps(connection: Connection, dataset: str) -> dict[str, datetime]:
    rows = connection.execute(SELECT_STAMPS, [dataset]).fetchall()
    return {name: modified.astimezone(UTC) for name, modified in rows}


def _info(connection: Connection, spec: TableSpec, fallback: datetime) -> TableInfo | None:
    if not _exists(connection, spec):
        return None
    modified = _stamps(connection, spec.dataset).get(spec.table, fallback)
    return TableInfo(str(spec), _count(connection, spec), modified)


def _in_transaction(connection: Connection, work: Callable[[], T]) -> T:
    connection.execute("BEGIN TRANSACTION")
    try:
        result = work()
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class DuckDBWarehouse:
    """Warehouse over ``<root>/<project>.duckdb``; staging in ``_incoming_<location>``."""

    def __init__(self, root: Path, location: str) -> None:
        self._root = Path(root)
        self._location = check_location(location)
        # One operation at a time: each holds the file, and a job may be waiting for it.
        self._limiter = anyio.CapacityLimiter(1)

    @classmethod
    async def open(cls, root: Path, location: str) -> DuckDBWarehouse:
        warehouse = cls(root, location)
        await anyio.Path(warehouse._root).mkdir(parents=True, exist_ok=True)
        return warehouse

    def _mtime(self, project: str) -> datetime:
        stat = os.stat(duckdb_files.database_path(self._root, project))
        return datetime.fromtimestamp(stat.st_mtime, UTC)

    def _has_file(self, project: str) -> bool:
        return duckdb_files.database_path(self._root, project).is_file()

    async def _run(self, project: str, work: Callable[[Connection], T]) -> T:
        """Run ``work`` on a fresh connection in a worker thread, then close it."""

        def call() -> T:
            import duckdb  # noqa: PLC0415  # on first use, as duckdb_files.connect does

            try:
                connection = duckdb_files.connect(self._root, project)
                try:
                    return work(connection)
                finally:
                    connection.close()
            except (duckdb.Error, OSError) as exc:
                raise WarehouseError(f"warehouse {project}: {exc}") from exc

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        # Reading never creates a project's file.
        if not await anyio.to_thread.run_sync(self._has_file, spec.project):
            return None
        return await self._run(spec.project, lambda c: _info(c, spec, self._mtime(spec.project)))

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        TableSpec(project, dataset, "_")  # validates both identifiers before any SQL
        if not await anyio.to_thread.run_sync(self._has_file, project):
            return []

        def select(connection: Connection) -> list[TableInfo]:
            names = [row[0] for row in connection.execute(LIST_TABLES, [dataset]).fetchall()]
            specs = [TableSpec(project, dataset, name) for name in names if _valid_table(name)]
            if not specs:
                return []
            stamps, fallback = _stamps(connection, dataset), self._mtime(project)
            # One query counts every table of the dataset.
            counts = " UNION ALL ".join(
                f"SELECT ? AS name, count(*) FROM {quoted(spec)}"  # noqa: S608
                for spec in specs
            )
            rows = dict(connection.execute(counts, [s.table for s in specs]).fetchall())
            return [
                TableInfo(str(s), int(rows[s.table]), stamps.get(s.table, fallback))
                for s in specs
            ]

        return await self._run(project, select)

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        pairs = [(column.name, column.type) for column in columns]
        data = [tuple(row) for row in rows]
        if not pairs:
            raise WarehouseError(f"table {spec} needs at least one column")
        if any(len(row) != len(pairs) for row in data):
            raise WarehouseError(f"every row of {spec} must have {len(pairs)} values")

        def create(connection: Connection) -> TableInfo:
            duckdb_files.replace_table(connection, spec, pairs, data)
            return found_table(_info(connection, spec, self._mtime(spec.project)), spec)

        return await self._run(spec.project, create)

    async def read_rows(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, object]]:
        check_read_limit(limit)
        if not await anyio.to_thread.run_sync(self._has_file, spec.project):
            raise TableNotFound(f"no table {spec}")

        def select(connection: Connection) -> list[dict[str, object]]:
            if not _exists(connection, spec):
                raise TableNotFound(f"no table {spec}")
            sql = f"SELECT * FROM {quoted(spec)}"  # noqa: S608
            cursor = connection.execute(sql) if limit is None else connection.execute(
                sql + " LIMIT ?", [limit]
            )
            names = [d[0] for d in cursor.description or []]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

        return await self._run(spec.project, select)

    async def staging_table(self, final: TableSpec) -> TableSpec:
        staging = staging_spec(final, self._location)

        def create_dataset(connection: Connection) -> None:
            connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{staging.dataset}"')

        await self._run(final.project, create_dataset)
        return staging

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        check_move(staging, final, job_key)

        def move(connection: Connection) -> TableInfo:
            connection.execute(CREATE_MOVES)
            _in_transaction(connection, lambda: _move(connection, staging, final, job_key))
            return found_table(_info(connection, final, self._mtime(final.project)), final)

        return await self._run(final.project, move)

    async def drop_table(self, spec: TableSpec) -> None:
        if not await anyio.to_thread.run_sync(self._has_file, spec.project):
            return

        def drop(connection: Connection) -> None:
            connection.execute(f"DROP TABLE IF EXISTS {quoted(spec)}")
            connection.execute(duckdb_files.FORGET_TABLE, [spec.dataset, spec.table])

        await self._run(spec.project, lambda c: _in_transaction(c, lambda: drop(c)))

    def job_options(self) -> list[str]:
        return [f"--duckdbDir={self._root}"]

    async def aclose(self) -> None:
        # No connection stays open; waiting for the limiter lets a running call finish.
        async with self._limiter:
            pass


def _move(connection: Connection, staging: TableSpec, final: TableSpec, job_key: str) -> None:
    """Copy staging over final and record the move, inside the caller's transaction."""
    done = connection.execute(SELECT_MOVE, [job_key]).fetchone()
    if done is not None:
        if tuple(done) != (str(staging), str(final)):
            raise WarehouseError(
                f"job key {job_key!r} already moved {done[0]} to {done[1]},"
                f" not {staging} to {final}"
            )
        return  # a retry of a move that committed: final already holds the rows
    if not _exists(connection, staging):
        raise TableNotFound(f"staging table {staging} does not exist")
    connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{final.dataset}"')
    connection.execute(
        f"CREATE OR REPLACE TABLE {quoted(final)} AS SELECT * FROM {quoted(staging)}"  # noqa: S608
    )
    duckdb_files.stamp_modified(connection, final)
    connection.execute(INSERT_MOVE, [job_key, str(staging), str(final), datetime.now(UTC)])


def _valid_table(name: str) -> bool:
    """Tables someone created outside charon may not be valid BigQuery ids; skip them."""
    try:
        TableSpec("placeholder", "_", name)
    except InvalidIdentifier:
        return False
    return True
