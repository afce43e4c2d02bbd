"""The warehouse port: tables addressed by ``project:dataset.table`` specs, and the rules
every warehouse backend shares (staging names, moves, column types, limits)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.errors import InvalidIdentifier, TableNotFound, UsageError, WarehouseError
from orchestrator.model import TableInfo
from orchestrator.tablespec import TableSpec


@dataclass(frozen=True)
class Column:
    """A warehouse column with a BigQuery type name (STRING, INT64, DATE, ...)."""

    name: str
    type: str


class Warehouse(Protocol):
    """Tables addressed by ``project:dataset.table`` specs."""

    async def table_info(self, spec: TableSpec) -> TableInfo | None: ...

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        """Every table of one dataset in one call (for sensors watching many)."""

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        """Create or replace a table with the given rows, atomically."""

    async def read_rows(
        self, spec: TableSpec, limit: int | None = None
    ) -> list[dict[str, object]]: ...

    async def staging_table(self, final: TableSpec) -> TableSpec:
        """A fresh ``_incoming_<location>._<table>_<random>`` spec in the final's project.

        The dataset is created on demand; the table itself is left for the job to write.
        """

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        """Replace the final table by the staging table's rows in one atomic step.

        ``job_key`` identifies the move so that a retried move is recognised.
        """

    async def drop_table(self, spec: TableSpec) -> None:
        """Drop the table if it exists."""

    def job_options(self) -> list[str]:
        """Pipeline options a job needs to reach this warehouse (none for BigQuery)."""

    async def aclose(self) -> None: ...


_LOCATION = re.compile(r"^[A-Za-z0-9_]{1,64}$")

COLUMN_TYPES = frozenset({
    "STRING", "INT64", "INTEGER", "FLOAT64", "FLOAT", "BOOL", "BOOLEAN", "DATE", "TIMESTAMP",
})
"""The BigQuery column types charon's warehouses accept (what users write in schemas)."""


def check_column(name: str, bigquery_type: str) -> None:
    if bigquery_type.upper() not in COLUMN_TYPES:
        raise WarehouseError(f"unsupported column type {bigquery_type!r}")
    if not name.isidentifier():
        raise WarehouseError(f"invalid column name {name!r}")


def check_move(staging: TableSpec, final: TableSpec, job_key: str) -> None:
    """What every warehouse refuses before moving a staging table to its final table."""
    if staging.project != final.project:
        raise WarehouseError(f"cannot move {staging} to {final}: different projects")
    if staging == final:
        raise UsageError(f"cannot move {final} onto itself")
    if not job_key:
        raise UsageError("a move needs a non-empty job_key")


def staging_spec(final: TableSpec, location: str) -> TableSpec:
    """``{project}:_incoming_{location}._{table}_{10 random digits}``, like BigQuery's."""
    digits = f"{secrets.randbelow(10**10):010d}"
    return TableSpec(final.project, f"_incoming_{location}", f"_{final.table}_{digits}")


def check_location(location: str) -> str:
    if not _LOCATION.match(location):
        raise InvalidIdentifier(
            f"invalid warehouse location {location!r}: use letters, digits and '_'"
        )
    return location


def check_read_limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or limit < 0):
        raise UsageError(f"limit must be a non-negative number of rows, got {limit!r}")
    return limit


def found_table(info: TableInfo | None, spec: TableSpec) -> TableInfo:
    """The table's info; TableNotFound when there is none."""
    if info is None:
        raise TableNotFound(f"no table {spec}")
    return info
