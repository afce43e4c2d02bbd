# mypy: disable-error-code="no-untyped-call"
# (Most of Beam's API is unannotated; strict mode would flag every transform.)
"""Warehouse reads and writes for the job, behind one choice made from the options.

The job only ever calls :func:`read_table` and :func:`write_table`; which warehouse
backs them is decided there, so adding BigQuery IO touches this module alone.
Rows travel as ``{column: value}`` dicts, the shape BigQuery IO also uses.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apache_beam as beam
import duckdb
from apache_beam.pvalue import PBegin, PCollection
from apache_beam.transforms import combiners

from orchestrator import duckdb_files
from orchestrator.errors import TableNotFound, UsageError, WarehouseError
from orchestrator.ports import Column
from orchestrator.tablespec import TableSpec

Row = dict[str, Any]
RowsTransform = beam.PTransform[Any, PCollection[Any]]

# Rows per DuckDB fetch: bounds memory while reading a large table.
_FETCH_SIZE = 10_000


@dataclass(frozen=True)
class WarehouseOptions:
    """What the job needs to reach its warehouse; only DuckDB exists so far."""

    duckdb_dir: Path | None = None


def read_table(spec: TableSpec, columns: Sequence[str], options: WarehouseOptions) -> RowsTransform:
    """A transform from the pipeline's start to the table's rows."""
    if options.duckdb_dir is not None:
        return _ReadDuckDB(options.duckdb_dir, spec, tuple(columns))
    raise UsageError(f"no warehouse to read {spec} from: pass --duckdbDir")


def write_table(
    spec: TableSpec, columns: Sequence[Column], options: WarehouseOptions
) -> RowsTransform:
    """A transform replacing the table by the rows of its input PCollection."""
    if options.duckdb_dir is not None:
        return _WriteDuckDB(options.duckdb_dir, spec, tuple(columns))
    raise UsageError(f"no warehouse to write {spec} to: pass --duckdbDir")


def duckdb_rows(root: Path, spec: TableSpec, columns: Sequence[str]) -> Iterator[Row]:
    """Stream the table's rows; the connection is closed once the rows are consumed."""
    names = ", ".join(_identifier(name) for name in columns)
    connection = duckdb_files.connect(root, spec.project)
    try:
        try:
            cursor = connection.execute(f"SELECT {names} FROM {duckdb_files.quoted(spec)}")  # noqa: S608
        except duckdb.CatalogException as exc:
            path = duckdb_files.database_path(root, spec.project)
            raise TableNotFound(f"table {spec} not found in {path}") from exc
        while batch := cursor.fetchmany(_FETCH_SIZE):
            for values in batch:
                yield dict(zip(columns, values, strict=True))
    finally:
        connection.close()


def replace_duckdb_table(
    root: Path, spec: TableSpec, columns: Sequence[Column], rows: Sequence[Row]
) -> None:
    connection = duckdb_files.connect(root, spec.project)
    try:
        duckdb_files.replace_table(
            connection,
            spec,
            [(column.name, column.type) for column in columns],
            ([row[column.name] for column in columns] for row in rows),
        )
    except duckdb.Error as exc:
        raise WarehouseError(f"cannot write table {spec}: {exc}") from exc
    finally:
        connection.close()


def _identifier(name: str) -> str:
    if not name.isidentifier():
        raise UsageError(f"invalid column name {name!r}")
    return f'"{name}"'


class _ReadDuckDB(beam.PTransform[PBegin, PCollection[Row]]):
    def __init__(self, root: Path, spec: TableSpec, columns: tuple[str, ...]) -> None:
        super().__init__()
        self._root = root
        self._spec = spec
        self._columns = columns

    def expand(self, begin: PBegin) -> PCollection[Row]:
        # Opening the file at run time, not when the pipeline is built, keeps
        # construction free of I/O and lets the read fail as part of the run.
        root, columns = self._root, self._columns
        rows: PCollection[Row] = (
            begin
            | "Spec" >> beam.Create([self._spec])
            | "Rows" >> beam.FlatMap(lambda spec: duckdb_rows(root, spec, columns))
        )
        return rows


class _WriteDuckDB(beam.PTransform[PCollection[Row], PCollection[None]]):
    def __init__(self, root: Path, spec: TableSpec, columns: tuple[Column, ...]) -> None:
        super().__init__()
        self._root = root
        self._spec = spec
        self._columns = columns

    def expand(self, rows: PCollection[Row]) -> PCollection[None]:
        # One writer call with every row: DuckDB admits one writing process per
        # file, and a single transaction makes the replacement all-or-nothing.
        root, spec, columns = self._root, self._spec, self._columns
        done: PCollection[None] = (
            rows
            | "Collect" >> combiners.ToList()
            | "Replace" >> beam.Map(lambda batch: replace_duckdb_table(root, spec, columns, batch))
        )
        return done
