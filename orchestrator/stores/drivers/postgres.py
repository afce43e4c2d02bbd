"""The plumbing every PostgreSQL adapter shares: one pool, vendor errors converted.

asyncpg runs on the event loop itself (it is an asyncio driver), so unlike sqlite3
and DuckDB it needs no worker threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

import anyio
import asyncpg

from orchestrator.errors import AdapterError
from orchestrator.stores.drivers.migrations import load_migrations
from orchestrator.validate import pg_schema

CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
COMMAND_TIMEOUT_SECONDS = 30.0
"""How long charon's own stores wait for the answer to one statement. Their statements
are short; one unanswered that long is on a connection gone silently dead (the
server's host failed over, a firewall or NAT dropped the connection's state), which
TCP may never report: the bytes sent were acknowledged, no answer or reset ever comes.
The call then fails as an outage, and the pool opens a new connection for the next.
The user's database has no such bound: a load takes as long as it takes."""
MIGRATION_TIMEOUT_SECONDS = 3600.0
"""A schema migration's statements, and a starter's wait for another's migration, are
not bound by the statements' 30 s: a migration of a large table takes what it takes."""
IDLE_IN_TRANSACTION_TIMEOUT_MS = 5000
"""How long the server keeps a charon session that sits idle inside a transaction.
charon's transactions are a few statements with no waiting between them; one idle
longer belongs to a process that was paused (SIGSTOP, a frozen VM) or cut off mid-way,
and it holds its locks until the server ends it: a task's claim lock, or the registry's
publish lock, which would stop every replica's publishing. Ended, its transaction is
rolled back; the paused process finds its connection gone when it wakes, an outage it
retries."""
STALLED_SECONDS = IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000
# The same rule for a charon session paused in the middle of a statement, which that
# timeout never ends: asyncpg sends a statement new to a connection as Parse, Describe
# and Flush, and its values (Bind, Execute, Sync) once answered. A process paused
# between the two leaves its session active, waiting for the client, with every lock
# its transaction took (the registry's publish lock, say) for as long as it stays
# paused. A live client answers within a round trip. Ended only when another session
# waits for one of its locks, and never in a COPY, whose client may take its time to
# send a user's rows; only sessions of this database and this database user.
END_STALLED_SESSIONS = (
    "SELECT count(pg_terminate_backend(stalled.pid)) FROM pg_stat_activity AS stalled"
    " WHERE stalled.datname = current_database() AND stalled.usename = current_user"
    " AND stalled.application_name LIKE 'charon[%'"
    " AND stalled.state = 'active' AND stalled.wait_event_type = 'Client'"
    " AND stalled.wait_event = 'ClientRead' AND stalled.query NOT ILIKE 'copy %'"
    " AND stalled.state_change < clock_timestamp() - $1::interval"
    " AND stalled.pid IN (SELECT unnest(pg_blocking_pids(waiting.pid))"
    " FROM pg_stat_activity AS waiting WHERE waiting.wait_event_type = 'Lock')"
)
# InternalClientError is what asyncpg raises when a pool resets a connection the server
# terminated in the middle of an operation ("cannot switch to state ..."): seen when a
# replica's connections are cut (pg_terminate_backend), it is an outage like the others.
VENDOR_ERRORS = (
    asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError,
    TimeoutError,
)

TAKE_XACT_LOCK = "SELECT pg_advisory_xact_lock($1)"
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied TIMESTAMPTZ NOT NULL DEFAULT now())"
)
SELECT_APPLIED = "SELECT version FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
SELECT_MIGRATIONS = "SELECT version, name, applied FROM schema_migrations ORDER BY version"


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for one named purpose."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


@contextmanager
def converted(error: type[AdapterError], what: str) -> Iterator[None]:
    """Vendor and network errors become ``error`` here, at the adapter's edge."""
    try:
        yield
    except VENDOR_ERRORS as exc:
        raise error(f"{what}: {exc}") from exc


class Pool:
    """An asyncpg pool that refuses use after close and closes within bounds."""

    def __init__(self, pool: asyncpg.Pool, error: type[AdapterError], name: str) -> None:
        self._pool = pool
        self._error = error
        self._name = name
        self._closed = False

    @classmethod
    async def open(
        cls, dsn: str, *, error: type[AdapterError], name: str, min_size: int, max_size: int,
        server_settings: Mapping[str, str] | None = None, command_timeout: float | None = None,
    ) -> Pool:
        settings = {
            # Which process holds a session, for whoever reads pg_stat_activity.
            "application_name": f"charon[{os.getpid()}]",
            "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION_TIMEOUT_MS),
            **(server_settings or {}),
        }
        with converted(error, f"cannot connect to {name}"):
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT_SECONDS,
                server_settings=settings, command_timeout=command_timeout,
            )
        return cls(pool, error, name)

    def acquire(self) -> asyncpg.pool.PoolAcquireContext:
        if self._closed:
            raise self._error(f"{self._name} is closed")
        return self._pool.acquire()

    def terminate(self) -> None:
        self._pool.terminate()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Lets calls in flight finish, within bounds; then the sockets are cut.
        with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True) as scope:
            await self._pool.close()
        if scope.cancelled_caught:
            self._pool.terminate()


async def migrate(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], *, schema: str, migrations: str,
) -> None:
    """Apply the pending ``migrations/<migrations>`` scripts in ``schema``, in one
    transaction.

    Each store keeps its tables (and its ``schema_migrations``) in a schema of its
    own, so stores sharing a database never collide. A transaction-scoped advisory
    lock makes concurrent starters queue up: the second finds the versions recorded
    and applies nothing. PostgreSQL DDL is transactional, so a failing script leaves
    no half-made schema behind.
    """
    pg_schema(schema)
    wait = MIGRATION_TIMEOUT_SECONDS
    async with connection.transaction():
        await connection.execute(TAKE_XACT_LOCK, lock_key(f"charon.{schema}.migrate"),
                                 timeout=wait)
        # The schema name is a checked identifier of ours, never input.
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}", timeout=wait)
        await connection.execute(CREATE_MIGRATIONS_TABLE, timeout=wait)
        applied = {row["version"] for row in await connection.fetch(SELECT_APPLIED,
                                                                     timeout=wait)}
        for migration in load_migrations(migrations):
            if migration.version not in applied:
                await connection.execute(migration.sql, timeout=wait)
                await connection.execute(INSERT_MIGRATION, migration.version, migration.name,
                                         timeout=wait)


async def applied_migrations(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
) -> list[tuple[int, str, datetime]]:
    """(version, name, applied timestamp) of every migration applied, in order."""
    rows = await connection.fetch(SELECT_MIGRATIONS)
    return [(row["version"], row["name"], row["applied"]) for row in rows]


async def open_migrated(
    dsn: str, *, error: type[AdapterError], name: str, schema: str, migrations: str,
    max_size: int, command_timeout: float = COMMAND_TIMEOUT_SECONDS,
) -> Pool:
    """A pool on ``dsn`` whose connections work in ``schema``, brought up to date: a
    store of charon's own, whose statements are bounded by ``command_timeout``."""
    pool = await Pool.open(dsn, error=error, name=name, min_size=1, max_size=max_size,
                           server_settings={"search_path": schema},
                           command_timeout=command_timeout)
    try:
        with converted(error, f"cannot migrate {name}"):
            async with pool.acquire() as connection:
                await migrate(connection, schema=schema, migrations=migrations)
    except BaseException:
        pool.terminate()
        raise
    return pool
