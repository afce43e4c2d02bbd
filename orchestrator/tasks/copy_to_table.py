"""Luigi's ``CopyToTable``: load a task's input into a PostgreSQL table, exactly once.

A subclass declares ``table`` and ``columns`` (and ``requires()``), as in Luigi; the
connection comes from the ``[postgres] dsn`` config key (or CHARON_POSTGRES__DSN), not
from ``host``/``database``/``user``/``password`` class attributes. The rows and the
marker row are written in one transaction, so a second run, or a run after a crash
mid-load, never loads twice nor half. The marker is Luigi's own: its ``table_updates``
row keyed by Luigi's task id for the same task and parameters, so charon and Luigi can
take turns loading one database, each skipping what the other loaded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from orchestrator.errors import UsageError
from orchestrator.log import get_logger
from orchestrator.stores.database.base import Database, PgColumn
from orchestrator.tasks.luigi_ids import luigi_task_id, runner_variant_ids
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import PostgresTable
from orchestrator.tasks.task import Task

NULL = r"\N"  # how Luigi's CopyToTable (and COPY's text format) writes NULL


def _boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered not in ("t", "true", "1", "f", "false", "0"):
        raise ValueError(f"not a boolean: {text!r}")
    return lowered in ("t", "true", "1")


# SQL type → how a text field becomes the value binary COPY sends for it.
CONVERTERS: dict[str, Callable[[str], object]] = {
    "TEXT": str, "VARCHAR": str, "DATE": date.fromisoformat,
    "INT": int, "INTEGER": int, "BIGINT": int, "SMALLINT": int, "BOOLEAN": _boolean,
    "REAL": float, "DOUBLE PRECISION": float, "NUMERIC": Decimal,
    "TIMESTAMP": datetime.fromisoformat, "TIMESTAMPTZ": datetime.fromisoformat,
}


def typed_row(columns: Sequence[PgColumn], fields: Sequence[str], where: str) -> tuple[object, ...]:
    """Text fields as the Python values of their columns' types; ``\\N`` is NULL."""
    if len(fields) != len(columns):
        raise UsageError(f"{where}: {len(fields)} fields for {len(columns)} columns")
    values: list[object] = []
    for (name, sql_type), text in zip(columns, fields, strict=True):
        convert = CONVERTERS.get(sql_type.upper())
        if convert is None:
            raise UsageError(f"column {name}: unsupported type {sql_type!r}")
        try:
            values.append(None if text == NULL else convert(text))
        except (ValueError, InvalidOperation) as exc:
            raise UsageError(f"{where}: column {name} ({sql_type}): {exc}") from None
    return tuple(values)


class CopyToTable(Task):
    """Load the lines of every input into ``table`` (Luigi's ``postgres.CopyToTable``).

    Override ``rows()`` to load something else than the input's separated fields.
    """

    table: ClassVar[str]
    columns: ClassVar[Sequence[PgColumn]]
    column_separator: ClassVar[str] = "\t"

    @property
    def update_id(self) -> str:
        """The marker row's key: the task id Luigi gives this task, as in Luigi."""
        return luigi_task_id(self)

    def output(self) -> PostgresTable:
        return PostgresTable(self.table, self.update_id)

    async def rows(self, context: RunContext) -> AsyncIterator[Sequence[str]]:
        """Each non-empty line of each input, split on ``column_separator``."""
        for key in context.inputs:
            async for line in context.lines(key):
                if line.strip():
                    yield line.split(self.column_separator)

    async def run(self, context: RunContext) -> None:
        database = context.require_database()
        variant = await self._variant_marker(database)
        # Read and checked before the transaction opens: a slow or malformed input never
        # holds a transaction (and its locks) open, and a bad row loads nothing.
        rows = [] if variant else [
            typed_row(self.columns, fields, f"{self.task_family} row {number}")
            async for number, fields in _numbered(self.rows(context))
        ]
        # The load is this task's publication: whoever commits it first wins (the marker),
        # and a worker that lost its lease does not even try.
        await context.check_fence()
        loaded = await database.copy_with_marker(self.table, self.columns, rows, self.update_id)
        log = get_logger("charon.postgres")
        if variant and loaded:
            log.info("loaded by another runner: its marker adopted, nothing copied",
                     table=self.table, update_id=self.update_id, adopted=variant)
            return
        log.info("loaded table" if loaded else "already loaded: marker found, nothing copied",
                 table=self.table, rows=len(rows) if loaded else 0, update_id=self.update_id)

    async def _variant_marker(self, database: Database) -> str | None:
        """The marker of this load under another choice of runner parameters, if any.

        Luigi's ids include the runner (``use_spark``); charon's identity does not: a
        load marked by the other runner is this load, so it only gets its own marker.
        """
        for key in runner_variant_ids(self):
            if key != self.update_id and await database.marker(self.table, key) is not None:
                return key
        return None


async def _numbered(
    rows: AsyncIterator[Sequence[str]],
) -> AsyncIterator[tuple[int, Sequence[str]]]:
    number = 0
    async for fields in rows:
        number += 1
        yield number, fields
