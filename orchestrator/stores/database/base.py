"""The database port: PostgreSQL tables that tasks load into (Luigi's CopyToTable), and
the rules every database backend applies to a load."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from orchestrator import validate
from orchestrator.errors import InvalidIdentifier

PgColumn = tuple[str, str]
"""A PostgreSQL column as Luigi's CopyToTable declares it: (name, SQL type)."""


class Database(Protocol):
    """A PostgreSQL database that tasks load tables into (Luigi's CopyToTable).

    A load is marked done by a row keyed by the task's id in a marker table, written in
    the same transaction as the rows: both land together, or neither does.
    """

    async def marker(self, table: str, key: str) -> datetime | None:
        """When the load ``key`` into ``table`` was committed; None if it never was."""

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        """Create the table if needed, COPY the rows and insert the marker, in ONE transaction.

        Return False (and change nothing) when the marker is already there.
        """

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        """The table's rows in physical order (for ``charon show`` and tests)."""

    async def aclose(self) -> None: ...


# The SQL types a CopyToTable may declare: the ones asyncpg's binary COPY maps to
# plain Python values (see orchestrator.tasks.copy_to_table.CONVERTERS).
PG_TYPES = frozenset({
    "TEXT", "VARCHAR", "DATE", "INT", "INTEGER", "BIGINT", "SMALLINT", "BOOLEAN",
    "REAL", "DOUBLE PRECISION", "NUMERIC", "TIMESTAMP", "TIMESTAMPTZ",
})

def check_load(table: str, columns: Sequence[PgColumn], key: str) -> None:
    """The rules every Database adapter applies to a load (shared with the in-memory one)."""
    validate.pg_table(table)
    if not columns:
        raise InvalidIdentifier(f"table {table} needs at least one column")
    for name, sql_type in columns:
        if "." in name:
            raise InvalidIdentifier(f"invalid column name {name!r}")
        validate.pg_table(name)
        if sql_type.upper() not in PG_TYPES:
            raise InvalidIdentifier(
                f"column {name}: unsupported type {sql_type!r}; use one of {sorted(PG_TYPES)}"
            )
    if not key:
        raise InvalidIdentifier("a load needs a non-empty marker key")
