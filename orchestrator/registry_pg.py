"""The partition registry on PostgreSQL (asyncpg): what the registry service runs on.

Same rules, errors and values as the embedded :class:`SqliteRegistry` (it shares the
pure validation functions), so the same contract suite passes against both. The
tables live in their own schema, ``charon_registry``, so a database shared with other
charon stores (each with its own ``schema_migrations``) never sees two of them collide.
"""

from __future__ import annotations

import builtins
import dataclasses
import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import asyncpg

from orchestrator import pg
from orchestrator.errors import ConfigError, RegistryError, UnknownRevision
from orchestrator.model import Revision
from orchestrator.registry_sqlite import check_limit, new_revision, utc_now
from orchestrator.sqlite import load_migrations

Clock = Callable[[], datetime]

SCHEMA = "charon_registry"
MIGRATIONS = "registry_pg"
POOL_MAX_SIZE = 10


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for one purpose of this module."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MIGRATE_LOCK = _lock_key("charon.registry.migrate")
PUBLISH_LOCK = _lock_key("charon.registry.publish")

TAKE_XACT_LOCK = "SELECT pg_advisory_xact_lock($1)"
CREATE_SCHEMA = "CREATE SCHEMA IF NOT EXISTS " + SCHEMA  # a constant, not input
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
    " applied TIMESTAMPTZ NOT NULL DEFAULT now())"
)
SELECT_APPLIED = "SELECT version FROM schema_migrations"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)"
SELECT_MIGRATIONS = "SELECT version, name, applied FROM schema_migrations ORDER BY version"

INSERT_REVISION = (
    "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage)"
    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq"
)
SELECT_LATEST = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = $1 AND partition = $2 ORDER BY seq DESC LIMIT 1"
)
SELECT_PARTITION = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = $1 AND partition = $2 ORDER BY seq DESC"
)
SELECT_BY_ID = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions WHERE id = $1"
)
SELECT_CHANGES = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE seq > $1 ORDER BY seq LIMIT $2"
)


@contextmanager
def _converted(action: str) -> Iterator[None]:
    with pg.converted(RegistryError, f"cannot {action} the PostgreSQL registry"):
        yield


def _revision(row: asyncpg.Record) -> Revision:
    return Revision(
        id=row["id"],
        endpoint=row["endpoint"],
        partition=row["partition"],
        uri=row["uri"],
        created=row["created"].astimezone(UTC),
        lineage=tuple(row["lineage"]),
        seq=row["seq"],
    )


async def migrate(connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record]) -> None:
    """Apply the pending ``migrations/registry_pg`` scripts, all in one transaction.

    The transaction-scoped advisory lock makes concurrent starters queue up: the
    second one finds the versions already recorded and applies nothing. PostgreSQL
    DDL is transactional, so a failing script leaves no half-made schema behind.
    """
    async with connection.transaction():
        await connection.execute(TAKE_XACT_LOCK, MIGRATE_LOCK)
        await connection.execute(CREATE_SCHEMA)
        await connection.execute(CREATE_MIGRATIONS_TABLE)
        applied = {row["version"] for row in await connection.fetch(SELECT_APPLIED)}
        for migration in load_migrations(MIGRATIONS):
            if migration.version not in applied:
                await connection.execute(migration.sql)
                await connection.execute(INSERT_MIGRATION, migration.version, migration.name)


class PostgresRegistry:
    """Registry over a PostgreSQL database; build it with :meth:`open`."""

    def __init__(self, pool: pg.Pool, now: Clock = utc_now) -> None:
        self._pool = pool
        self._now = now

    @classmethod
    async def open(cls, dsn: str, *, now: Clock = utc_now) -> PostgresRegistry:
        """Connect a pool to ``dsn`` and bring the schema up to date."""
        if not dsn:
            raise ConfigError('registry.kind = "postgres" needs registry.dsn')
        pool = await pg.Pool.open(
            dsn, error=RegistryError, name="the PostgreSQL registry", min_size=1,
            max_size=POOL_MAX_SIZE, server_settings={"search_path": SCHEMA},
        )
        try:
            with _converted("migrate"):
                async with pool.acquire() as connection:
                    await migrate(connection)
        except BaseException:
            pool.terminate()
            raise
        return cls(pool, now)

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = ()
    ) -> Revision:
        new = new_revision(endpoint, partition, uri, lineage, self._now())
        with _converted("publish to"):
            async with self._acquire() as connection, connection.transaction():
                # Identity values are handed out at insert time but become visible at
                # commit, so without this lock seq 7 could commit before seq 6 and a
                # reader at cursor 7 would never see 6. Holding one lock from before the
                # insert until commit makes seqs visible in order. Publishes are rare
                # next to reads, so serialising them costs little.
                await connection.execute(TAKE_XACT_LOCK, PUBLISH_LOCK)
                seq = await connection.fetchval(
                    INSERT_REVISION, new.id, endpoint, partition, uri, new.created,
                    list(new.lineage),
                )
        return dataclasses.replace(new, seq=seq)

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        with _converted("read"):
            async with self._acquire() as connection:
                row = await connection.fetchrow(SELECT_LATEST, endpoint, partition)
        return None if row is None else _revision(row)

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_PARTITION, endpoint, partition)
        return [_revision(row) for row in rows]

    async def get(self, revision_id: str) -> Revision:
        with _converted("read"):
            async with self._acquire() as connection:
                row = await connection.fetchrow(SELECT_BY_ID, revision_id)
        if row is None:
            raise UnknownRevision(f"no revision {revision_id!r}")
        return _revision(row)

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_limit(limit)
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_CHANGES, since_seq, limit)
        return [_revision(row) for row in rows]

    async def migrations(self) -> builtins.list[tuple[int, str, datetime]]:
        """The applied migrations: (version, name, applied timestamp)."""
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_MIGRATIONS)
        return [(row["version"], row["name"], row["applied"]) for row in rows]

    def _acquire(self) -> asyncpg.pool.PoolAcquireContext:
        return self._pool.acquire()

    async def aclose(self) -> None:
        await self._pool.aclose()
