"""The partition registry on PostgreSQL (asyncpg): what the registry service runs on.

Same rules, errors and values as the embedded :class:`SqliteRegistry` (it shares the
pure validation functions), so the same contract suite passes against both. The
tables live in their own schema, ``charon_registry``, so a database shared with other
charon stores (each with its own ``schema_migrations``) never sees two of them collide.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import asyncpg

from orchestrator.errors import ConfigError, RegistryError, UnknownRevision
from orchestrator.log import get_logger
from orchestrator.model import Revision
from orchestrator.stores.drivers import postgres as pg
from orchestrator.stores.registry.base import (
    Publication,
    StoringRegistry,
    check_limit,
    check_revision_id,
    check_since,
    names_a_partition,
    partitions_to_look_up,
    replay,
    utc_now,
)

Clock = Callable[[], datetime]
if TYPE_CHECKING:
    # Generic only in the stubs: subscripting it at run time fails.
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

SCHEMA = "charon_registry"
MIGRATIONS = "registry/postgres"
POOL_MAX_SIZE = 10
PUBLISH_LOCK = pg.lock_key("charon.registry.publish")

# created is never earlier than the newest revision's: under the publish lock that one
# is committed, so creation times rise with seq even when the publishers' clocks
# disagree or the clock was read before a wait for the lock.
INSERT_REVISION = (
    "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage, idempotency_key)"
    " VALUES ($1, $2, $3, $4,"
    " greatest($5, (SELECT created FROM revisions ORDER BY seq DESC LIMIT 1)), $6, $7)"
    " RETURNING seq, created"
)
SELECT_BY_IDEMPOTENCY_KEY = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE idempotency_key = $1"
)
SELECT_LATEST = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = $1 AND partition = $2 ORDER BY seq DESC LIMIT 1"
)
SELECT_LATEST_MANY = (
    "SELECT DISTINCT ON (partition) seq, id, endpoint, partition, uri, created, lineage"
    " FROM revisions WHERE endpoint = $1 AND partition = ANY($2::text[])"
    " ORDER BY partition, seq DESC"
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


class PostgresRegistry(StoringRegistry):
    """Registry over a PostgreSQL database; build it with :meth:`open`."""

    def __init__(self, pool: pg.Pool, now: Clock = utc_now) -> None:
        self._pool = pool
        self._now = now
        self._log = get_logger("charon.registry.postgres")

    @classmethod
    async def open(cls, dsn: str, *, now: Clock = utc_now,
                   command_timeout: float = pg.COMMAND_TIMEOUT_SECONDS) -> PostgresRegistry:
        """Connect a pool to ``dsn`` and bring the schema up to date; a statement not
        answered within ``command_timeout`` seconds fails as an outage."""
        if not dsn:
            raise ConfigError('registry.kind = "postgres" needs registry.dsn')
        pool = await pg.open_migrated(
            dsn, error=RegistryError, name="the PostgreSQL registry", schema=SCHEMA,
            migrations=MIGRATIONS, max_size=POOL_MAX_SIZE, command_timeout=command_timeout,
        )
        return cls(pool, now)

    async def _insert(self, new: Revision, idempotency_key: str | None) -> Publication:
        async def insert(connection: Connection, _locked_at: datetime) -> Publication:
            if idempotency_key is not None:
                row = await connection.fetchrow(SELECT_BY_IDEMPOTENCY_KEY, idempotency_key)
                if row is not None:
                    return replay(_revision(row), new, idempotency_key)
            [inserted] = await connection.fetch(
                INSERT_REVISION, new.id, new.endpoint, new.partition, new.uri, new.created,
                list(new.lineage), idempotency_key,
            )
            created = inserted["created"].astimezone(UTC)
            return Publication(dataclasses.replace(new, seq=inserted["seq"], created=created),
                               replayed=False)

        with _converted("publish to"):
            async with self._acquire() as connection:
                # Identity values are handed out at insert time but become visible at
                # commit, so without this lock seq 7 could commit before seq 6 and a
                # reader at cursor 7 would never see 6. Holding one lock from before the
                # insert until commit makes seqs visible in order. Publishes are rare
                # next to reads, so serialising them costs little. The same lock makes
                # the key's lookup and insert one step: a second publisher of the key
                # waits for it, then finds the first one's row.
                return await pg.locked_transaction(connection, PUBLISH_LOCK, insert, self._log)

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        if not names_a_partition(endpoint, partition):
            return None
        with _converted("read"):
            async with self._acquire() as connection:
                row = await connection.fetchrow(SELECT_LATEST, endpoint, partition)
        return None if row is None else _revision(row)

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        wanted = partitions_to_look_up(endpoint, partitions)
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_LATEST_MANY, endpoint, wanted)
        return {revision.partition: revision for revision in map(_revision, rows)}

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        if not names_a_partition(endpoint, partition):
            return []
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_PARTITION, endpoint, partition)
        return [_revision(row) for row in rows]

    async def get(self, revision_id: str) -> Revision:
        check_revision_id(revision_id)
        with _converted("read"):
            async with self._acquire() as connection:
                row = await connection.fetchrow(SELECT_BY_ID, revision_id)
        if row is None:
            raise UnknownRevision(f"no revision {revision_id!r}")
        return _revision(row)

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_since(since_seq)
        check_limit(limit)
        with _converted("read"):
            async with self._acquire() as connection:
                rows = await connection.fetch(SELECT_CHANGES, since_seq, limit)
        return [_revision(row) for row in rows]

    async def migrations(self) -> builtins.list[tuple[int, str, datetime]]:
        """The applied migrations: (version, name, applied timestamp)."""
        with _converted("read"):
            async with self._acquire() as connection:
                return await pg.applied_migrations(connection)

    def _acquire(self) -> asyncpg.pool.PoolAcquireContext:
        return self._pool.acquire()

    async def aclose(self) -> None:
        await self._pool.aclose()
