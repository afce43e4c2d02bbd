"""The embedded partition registry: revisions in a SQLite file."""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.errors import (
    RegistryError,
    UnknownRevision,
)
from orchestrator.model import Revision
from orchestrator.stores.drivers.sqlite import (
    SqliteDatabase,
    iso_ms,
    parse_iso,
    transaction,
)
from orchestrator.stores.registry.base import (
    Clock,
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

# created is never earlier than the newest revision's (the ISO texts sort as times):
# under the write lock, creation times rise with seq even when the connections'
# clocks disagree or a clock was read before a wait for the lock.
INSERT_REVISION = (
    "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage, idempotency_key)"
    " VALUES (?, ?, ?, ?,"
    " max(?, coalesce((SELECT created FROM revisions ORDER BY seq DESC LIMIT 1), '')), ?, ?)"
    " RETURNING seq, created"
)
SELECT_BY_IDEMPOTENCY_KEY = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE idempotency_key = ?"
)
SELECT_LATEST = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = ? AND partition = ? ORDER BY seq DESC LIMIT 1"
)
# SQLite takes the bare columns of an aggregate query from the row holding the MAX;
# json_each takes any number of partitions in one bound value.
SELECT_LATEST_MANY = (
    "SELECT MAX(seq), id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = ? AND partition IN (SELECT value FROM json_each(?)) GROUP BY partition"
)
SELECT_PARTITION = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = ? AND partition = ? ORDER BY seq DESC"
)
SELECT_BY_ID = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions WHERE id = ?"
)
SELECT_CHANGES = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE seq > ? ORDER BY seq LIMIT ?"
)


def _revision(row: tuple[Any, ...]) -> Revision:
    seq, rid, endpoint, partition, uri, created, lineage = row
    return Revision(
        id=rid,
        endpoint=endpoint,
        partition=partition,
        uri=uri,
        created=parse_iso(created),
        lineage=tuple(json.loads(lineage)),
        seq=seq,
    )


class SqliteRegistry(StoringRegistry):
    """Registry over one SQLite file; build it with :meth:`open`."""

    def __init__(self, database: SqliteDatabase, now: Clock = utc_now) -> None:
        self._db = database
        self._now = now

    @classmethod
    async def open(cls, path: Path, *, now: Clock = utc_now) -> SqliteRegistry:
        database = await SqliteDatabase.open(
            path, migrations="registry/sqlite", error=RegistryError
        )
        return cls(database, now)

    async def _insert(self, new: Revision, idempotency_key: str | None) -> Publication:
        values = (new.id, new.endpoint, new.partition, new.uri, iso_ms(new.created),
                  json.dumps(list(new.lineage)), idempotency_key)

        def insert(connection: sqlite3.Connection) -> Publication:
            # BEGIN IMMEDIATE holds the write lock from the lookup to the insert: a
            # second publisher of the key (another connection or process) waits, then
            # finds this row instead of inserting its own.
            with transaction(connection):
                if idempotency_key is not None:
                    row = connection.execute(SELECT_BY_IDEMPOTENCY_KEY,
                                             (idempotency_key,)).fetchone()
                    if row is not None:
                        return replay(_revision(row), new, idempotency_key)
                seq, created = connection.execute(INSERT_REVISION, values).fetchone()
            return Publication(dataclasses.replace(new, seq=seq, created=parse_iso(created)),
                               replayed=False)

        return await self._db.run(insert)

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        if not names_a_partition(endpoint, partition):
            return None

        def select(connection: sqlite3.Connection) -> Revision | None:
            row = connection.execute(SELECT_LATEST, (endpoint, partition)).fetchone()
            return None if row is None else _revision(row)

        return await self._db.run(select)

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        wanted = json.dumps(partitions_to_look_up(endpoint, partitions))

        def select(connection: sqlite3.Connection) -> dict[str, Revision]:
            rows = connection.execute(SELECT_LATEST_MANY, (endpoint, wanted))
            return {revision.partition: revision for revision in map(_revision, rows)}

        return await self._db.run(select)

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        if not names_a_partition(endpoint, partition):
            return []

        def select(connection: sqlite3.Connection) -> list[Revision]:
            rows = connection.execute(SELECT_PARTITION, (endpoint, partition))
            return [_revision(row) for row in rows]

        return await self._db.run(select)

    async def get(self, revision_id: str) -> Revision:
        check_revision_id(revision_id)

        def select(connection: sqlite3.Connection) -> Revision | None:
            row = connection.execute(SELECT_BY_ID, (revision_id,)).fetchone()
            return None if row is None else _revision(row)

        revision = await self._db.run(select)
        if revision is None:
            raise UnknownRevision(f"no revision {revision_id!r}")
        return revision

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_since(since_seq)
        check_limit(limit)

        def select(connection: sqlite3.Connection) -> builtins.list[Revision]:
            return [_revision(r) for r in connection.execute(SELECT_CHANGES, (since_seq, limit))]

        return await self._db.run(select)

    async def migrations(self) -> builtins.list[tuple[int, str, str]]:
        return await self._db.migrations()

    async def aclose(self) -> None:
        await self._db.aclose()
