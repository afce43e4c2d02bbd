"""The plumbing every PostgreSQL adapter shares: one pool, vendor errors converted.

asyncpg runs on the event loop itself (it is an asyncio driver), so unlike sqlite3
and DuckDB it needs no worker threads.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TypeVar

import anyio
import asyncpg

from orchestrator.errors import AdapterError
from orchestrator.log import Logger
from orchestrator.stores.drivers.migrations import load_migrations
from orchestrator.validate import pg_schema

T = TypeVar("T")

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
# paused. A live client answers within a round trip. Never a session in a COPY, whose
# client may take its time to send a user's rows; only sessions of this database and
# this database user.
_STALLED_SESSIONS = (
    "SELECT count(pg_terminate_backend(stalled.pid)) FROM pg_stat_activity AS stalled"
    " WHERE stalled.datname = current_database() AND stalled.usename = current_user"
    " AND stalled.application_name LIKE 'charon[%'"
    " AND stalled.state = 'active' AND stalled.wait_event_type = 'Client'"
    " AND stalled.wait_event = 'ClientRead' AND stalled.query NOT ILIKE 'copy %'"
    " AND stalled.state_change < clock_timestamp() - $1::interval"
)
END_STALLED_SESSIONS = _STALLED_SESSIONS + (  # noqa: S608  # constants; values are bound
    " AND stalled.pid IN (SELECT unnest(pg_blocking_pids(waiting.pid))"
    " FROM pg_stat_activity AS waiting WHERE waiting.wait_event_type = 'Lock')"
)
"""Ends the stalled sessions another session waits for (a replica's heartbeat)."""
END_STALLED_HOLDERS = _STALLED_SESSIONS + (  # noqa: S608  # constants; values are bound
    " AND stalled.pid IN (SELECT holder.pid FROM pg_locks AS holder"
    " WHERE holder.locktype = 'advisory' AND holder.granted AND holder.objsubid = 1"
    " AND holder.classid = (($2::bigint >> 32) & 4294967295)::oid"
    " AND holder.objid = ($2::bigint & 4294967295)::oid)"
)
"""Ends the stalled sessions holding one advisory lock ($2, a :func:`lock_key`): asked
by a session that gave up waiting for it, so no longer waits itself."""
# Each subquery runs before the query around it (volatile, none is merged into it): the
# bound is set, the lock taken, then the clock read. The bound stays on for the rest of
# the transaction.
LOCK_WAITING_AND_READ_CLOCK = (
    "SELECT clock_timestamp() AS now FROM (SELECT pg_advisory_xact_lock($1) FROM"
    " (SELECT set_config('lock_timeout', $2, true)) AS bound) AS locked"
)
"""Takes the advisory lock $1, waiting for it at most $2 (as ``lock_timeout`` reads it),
and reads the database's clock once it holds it."""
LOCK_WAIT = f"{IDLE_IN_TRANSACTION_TIMEOUT_MS}ms"
"""How long one try of :func:`locked_transaction` waits for its lock."""
LOCK_TRIES = int(COMMAND_TIMEOUT_SECONDS * 1000 // IDLE_IN_TRANSACTION_TIMEOUT_MS)
"""Tries in all: a lock is waited for as long as one statement may be."""
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


async def end_stalled_sessions(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], log: Logger, *,
    holding: int | None = None,
) -> None:
    """End the sessions of charon processes paused in a statement (see
    :data:`END_STALLED_SESSIONS`): those another session waits for, or those holding
    the advisory lock ``holding``; says so when it ends any."""
    stalled = timedelta(seconds=STALLED_SECONDS)
    ended = await (connection.fetchval(END_STALLED_SESSIONS, stalled) if holding is None
                   else connection.fetchval(END_STALLED_HOLDERS, stalled, holding))
    if ended:
        log.warning("ended sessions of charon processes paused in a statement", sessions=ended)


async def locked_transaction(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], key: int,
    work: Callable[[asyncpg.pool.PoolConnectionProxy[asyncpg.Record], datetime], Awaitable[T]],
    log: Logger,
) -> T:
    """``work`` in a transaction holding the advisory lock ``key`` from its start, given
    the database's clock as the lock was taken.

    A try that waits :data:`LOCK_WAIT` for the lock gives up, ends the sessions of
    charon processes paused in a statement that hold it, and tries again: a daemon's
    heartbeat ends such sessions only where another waits, in its state store's
    database, and none may run (one-shot runs; a registry with a database of its own).
    A holder busy in a statement is slow, not paused: it is waited for in the next try.
    The last try's wait fails as the caller's outage, after about the statement bound.
    """
    for _ in range(LOCK_TRIES - 1):
        try:
            return await _locked_once(connection, key, work)
        except asyncpg.LockNotAvailableError:
            await end_stalled_sessions(connection, log, holding=key)
    return await _locked_once(connection, key, work)


async def _locked_once(
    connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], key: int,
    work: Callable[[asyncpg.pool.PoolConnectionProxy[asyncpg.Record], datetime], Awaitable[T]],
) -> T:
    async with connection.transaction():
        locked_at = await connection.fetchval(LOCK_WAITING_AND_READ_CLOCK, key, LOCK_WAIT)
        return await work(connection, locked_at)


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
