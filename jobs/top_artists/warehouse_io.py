# mypy: disable-error-code="no-untyped-call"
# (Most of Beam's API is unannotated; strict mode would flag every transform.)
"""Warehouse reads and writes for the job, behind one choice made from the options.

The job only ever calls :func:`read_table` and :func:`write_table`; which warehouse
backs them is decided there. Rows travel as ``{column: value}`` dicts, the shape
BigQuery IO also uses. Three choices, by the options:

* ``--duckdbDir``: the embedded warehouse's files;
* ``BIGQUERY_EMULATOR_HOST`` set: a small DoFn IO over BigQuery's REST API (charon's
  own BigQueryWarehouse), because Beam's BigQuery IO cannot be pointed at an
  emulator: its apitools client has a fixed https://bigquery.googleapis.com base
  URL, its google-cloud-bigquery and Storage Read clients are built without
  client options, and without credentials apitools starts an interactive OAuth flow;
* otherwise: Beam's own ReadFromBigQuery / WriteToBigQuery (WRITE_TRUNCATE,
  CREATE_IF_NEEDED), as on Dataflow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import apache_beam as beam
import duckdb
from apache_beam.pvalue import PBegin, PCollection
from apache_beam.transforms import combiners

from orchestrator.errors import TableNotFound, UsageError, WarehouseError
from orchestrator.stores.warehouse import duckdb_files
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec

Row = dict[str, Any]
RowsTransform = beam.PTransform[Any, PCollection[Any]]

# Rows per DuckDB fetch: bounds memory while reading a large table.
_FETCH_SIZE = 10_000


@dataclass(frozen=True)
class WarehouseOptions:
    """What the job needs to reach its warehouse."""

    duckdb_dir: Path | None = None
    # host:port of a BigQuery emulator (BIGQUERY_EMULATOR_HOST), reached over REST.
    bigquery_emulator: str | None = None

    @classmethod
    def from_environment(cls, duckdb_dir: Path | None) -> WarehouseOptions:
        return cls(duckdb_dir, os.environ.get("BIGQUERY_EMULATOR_HOST") or None)


def read_table(spec: TableSpec, columns: Sequence[str], options: WarehouseOptions) -> RowsTransform:
    """A transform from the pipeline's start to the table's rows."""
    if options.duckdb_dir is not None:
        return _ReadRows(spec, partial(duckdb_rows, options.duckdb_dir, columns=tuple(columns)))
    if options.bigquery_emulator:
        return _ReadRows(spec, partial(bigquery_rest_rows, options.bigquery_emulator,
                                       columns=tuple(columns)))
    names = ", ".join(_bigquery_identifier(name) for name in columns)
    query = f"SELECT {names} FROM `{spec.project}.{spec.dataset}.{spec.table}`"  # noqa: S608
    return beam.io.ReadFromBigQuery(query=query, use_standard_sql=True)


def write_table(
    spec: TableSpec, columns: Sequence[Column], options: WarehouseOptions
) -> RowsTransform:
    """A transform replacing the table by the rows of its input PCollection."""
    if options.duckdb_dir is not None:
        return _ReplaceTable(partial(replace_duckdb_table, options.duckdb_dir, spec,
                                     tuple(columns)))
    if options.bigquery_emulator:
        return _ReplaceTable(partial(replace_bigquery_rest_table, options.bigquery_emulator,
                                     spec, tuple(columns)))
    return _WriteBigQuery(spec, tuple(columns))


def use_emulators_without_credentials() -> None:
    """Skip Beam's credential lookup when the job only talks to emulators.

    Without credentials Beam retries google.auth.default() with backoff for about
    20 s before it connects anonymously, which is all an emulator needs. Beam has no
    public switch for it (``--no_auth`` only reaches the Dataflow client), so its
    credential cache is marked as settled with "no credentials".
    """
    if not os.environ.get("STORAGE_EMULATOR_HOST"):
        return
    from apache_beam.internal.gcp import auth  # noqa: PLC0415  (needs the gcp extra)

    credentials = getattr(auth, "_Credentials", None)
    if credentials is not None and hasattr(credentials, "_credentials_init"):
        credentials._credentials = None
        credentials._credentials_init = True


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


def _bigquery_identifier(name: str) -> str:
    return f"`{_identifier(name)[1:-1]}`"


def _emulated_warehouse(host: str, spec: TableSpec) -> Any:
    # Temporary tables go beside the staging table when there is one; the location
    # only names the dataset here, as emulators ignore locations.
    location = spec.dataset.removeprefix("_incoming_") if spec.dataset.startswith(
        "_incoming_") else "US"
    # Imported here: its client comes with the gcp extra, which the embedded warehouse's
    # jobs do without (and aiohttp and gcloud-aio are half the job's start-up).
    from orchestrator.stores.warehouse.bigquery import BigQueryWarehouse  # noqa: PLC0415

    return BigQueryWarehouse.open(location=location, api_root=f"http://{host}/bigquery/v2")


def bigquery_rest_rows(host: str, spec: TableSpec, columns: Sequence[str]) -> list[Row]:
    """Every row of the table, over the REST API (pages of tabledata.list)."""

    async def read() -> list[Row]:
        warehouse = await _emulated_warehouse(host, spec)
        try:
            rows = await warehouse.read_rows(spec)
        finally:
            await warehouse.aclose()
        return [{name: row.get(name) for name in columns} for row in rows]

    return anyio.run(read)


def replace_bigquery_rest_table(
    host: str, spec: TableSpec, columns: Sequence[Column], rows: Sequence[Row]
) -> None:
    async def write() -> None:
        warehouse = await _emulated_warehouse(host, spec)
        try:
            values = [[row[column.name] for column in columns] for row in rows]
            await warehouse.create_table(spec, columns, values)
        finally:
            await warehouse.aclose()

    anyio.run(write)


def _json_row(row: Row) -> Row:
    """Dates as ISO strings: the form WriteToBigQuery's JSON load files need."""
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


class _ReadRows(beam.PTransform[PBegin, PCollection[Row]]):
    """A table's rows, read by ``read(spec)`` when the pipeline runs.

    Reading at run time, not when the pipeline is built, keeps construction free of
    I/O and lets a failed read fail the run like any other step.
    """

    def __init__(self, spec: TableSpec, read: Callable[[TableSpec], Iterable[Row]]) -> None:
        super().__init__()
        self._spec = spec
        self._read = read

    def expand(self, begin: PBegin) -> PCollection[Row]:
        rows: PCollection[Row] = (
            begin | "Spec" >> beam.Create([self._spec]) | "Rows" >> beam.FlatMap(self._read)
        )
        return rows


class _ReplaceTable(beam.PTransform[PCollection[Row], PCollection[None]]):
    """The table replaced by every row of the input, in one ``replace(rows)`` call.

    One call with all the rows makes the replacement a single atomic step, and DuckDB
    admits only one writing process per file at a time.
    """

    def __init__(self, replace: Callable[[list[Row]], None]) -> None:
        super().__init__()
        self._replace = replace

    def expand(self, rows: PCollection[Row]) -> PCollection[None]:
        done: PCollection[None] = (
            rows | "Collect" >> combiners.ToList() | "Replace" >> beam.Map(self._replace)
        )
        return done


class _WriteBigQuery(beam.PTransform[PCollection[Row], Any]):
    """Beam's BigQuery sink: the table replaced by the rows, created if needed."""

    def __init__(self, spec: TableSpec, columns: tuple[Column, ...]) -> None:
        super().__init__()
        self._spec = spec
        self._schema = {"fields": [{"name": c.name, "type": c.type} for c in columns]}

    def expand(self, rows: PCollection[Row]) -> Any:
        disposition = beam.io.BigQueryDisposition
        return (
            rows
            | "AsJson" >> beam.Map(_json_row)
            | "WriteToBigQuery"
            >> beam.io.WriteToBigQuery(
                table=str(self._spec),
                schema=self._schema,
                write_disposition=disposition.WRITE_TRUNCATE,
                create_disposition=disposition.CREATE_IF_NEEDED,
            )
        )
