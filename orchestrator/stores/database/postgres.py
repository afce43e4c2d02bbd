"""The database tasks load tables into, on PostgreSQL (asyncpg): Luigi's CopyToTable backend.

A load is one transaction: create the table if needed, insert the marker row (Luigi's
task id, in Luigi's ``table_updates`` marker table), COPY the rows. A crash before
commit leaves neither rows nor marker; a second load with the same key finds the marker
and changes nothing. Identifiers are validated and quoted, values are bound (COPY sends
them in binary), so nothing a task declares is ever interpolated raw.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from orchestrator import validate
from orchestrator.errors import ConfigError, DatabaseError, InvalidIdentifier
from orchestrator.stores.database.base import PgColumn, check_load
from orchestrator.stores.drivers import postgres as pg

if TYPE_CHECKING:
    # Generic only in the stubs: subscripting it at run time fails.
    _Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

POOL_MAX_SIZE = 4
SETUP_LOCK = pg.lock_key("charon.database.setup")

TAKE_XACT_LOCK = "SELECT pg_advisory_xact_lock($1)"
# Luigi's marker table (luigi.contrib.postgres.PostgresTarget): the same columns, and
# Luigi reads and writes it as its own. Keyed by (update_id, target_table) where Luigi's
# key is update_id alone, so one key marks a load per table; a table Luigi created works
# as it is (a key then marks one load whatever the table, as in Luigi).
CREATE_MARKER_TABLE = (
    "CREATE TABLE IF NOT EXISTS table_updates ("
    " update_id TEXT NOT NULL, target_table TEXT NOT NULL,"
    " inserted TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (update_id, target_table))"
)
INSERT_MARKER = (
    "INSERT INTO table_updates (update_id, target_table) VALUES ($1, $2)"
    " ON CONFLICT DO NOTHING RETURNING inserted"
)
# Luigi's own table has a TIMESTAMP column it writes NOW() into: the server's time zone
# turns that back into an instant (a TIMESTAMPTZ is left as it is).
SELECT_MARKER = (
    "SELECT inserted::timestamptz FROM table_updates"
    " WHERE update_id = $1 AND target_table = $2"
)


def quoted(table: str) -> str:
    """A validated name, quoted part by part."""
    return ".".join(f'"{part}"' for part in validate.pg_table(table).split("."))


def create_table_sql(table: str, columns: Sequence[PgColumn]) -> str:
    # Names are validated and quoted; types come from the PG_TYPES allowlist.
    body = ", ".join(f'"{name}" {sql_type.upper()}' for name, sql_type in columns)
    return f"CREATE TABLE IF NOT EXISTS {quoted(table)} ({body})"


@contextmanager
def _converted(action: str) -> Iterator[None]:
    with pg.converted(DatabaseError, f"cannot {action} PostgreSQL"):
        yield


class PostgresDatabase:
    """Loads over a PostgreSQL pool; build it with :meth:`open`."""

    def __init__(self, pool: pg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, dsn: str) -> PostgresDatabase:
        """A pool that connects on first use: commands that never load pay nothing."""
        if not dsn:
            raise ConfigError("the PostgreSQL database needs postgres.dsn (CHARON_POSTGRES__DSN)")
        return cls(await pg.Pool.open(dsn, error=DatabaseError, name="the PostgreSQL database",
                                      min_size=0, max_size=POOL_MAX_SIZE))

    async def marker(self, table: str, key: str) -> datetime | None:
        validate.pg_table(table)
        with _converted("read the marker from"):
            async with self._acquire() as connection:
                try:
                    inserted = await connection.fetchval(SELECT_MARKER, key, table)
                except asyncpg.UndefinedTableError:
                    return None  # nothing was ever loaded into this database
        return None if inserted is None else inserted.astimezone(UTC)

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        check_load(table, columns, key)
        with _converted(f"load {table} into"):
            async with self._acquire() as connection, connection.transaction():
                await self._setup(connection, table, columns)
                # The marker first: its primary key makes a concurrent load of the same
                # key wait for this one, then find the marker and load nothing.
                if await connection.fetchval(INSERT_MARKER, key, table) is None:
                    return False
                await self._copy(connection, table, columns, rows)
        return True

    async def _setup(self, connection: _Connection, table: str,
                     columns: Sequence[PgColumn]) -> None:
        # Serialised: concurrent CREATE ... IF NOT EXISTS of one name can still collide.
        await connection.execute(TAKE_XACT_LOCK, SETUP_LOCK)
        await connection.execute(CREATE_MARKER_TABLE)
        if "." in table:
            schema = quoted(table.split(".", maxsplit=1)[0])
            await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        await connection.execute(create_table_sql(table, columns))

    async def _copy(self, connection: _Connection, table: str, columns: Sequence[PgColumn],
                    rows: Iterable[Sequence[object]]) -> None:
        schema, _, name = table.rpartition(".")
        await connection.copy_records_to_table(
            name, records=(tuple(row) for row in rows), columns=[n for n, _ in columns],
            schema_name=schema or None,
        )

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        if limit is not None and limit < 0:
            raise InvalidIdentifier(f"limit must not be negative, not {limit}")
        # The name is validated and quoted (identifiers cannot be bound); the limit is bound.
        sql = f"SELECT * FROM {quoted(table)}"  # noqa: S608
        sql += " LIMIT $1" if limit is not None else ""
        with _converted(f"read {table} from"):
            async with self._acquire() as connection:
                records = await connection.fetch(sql, *([] if limit is None else [limit]))
        return [dict(record) for record in records]

    def _acquire(self) -> asyncpg.pool.PoolAcquireContext:
        return self._pool.acquire()

    async def aclose(self) -> None:
        await self._pool.aclose()
