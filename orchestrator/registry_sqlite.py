"""The embedded partition registry: revisions in a SQLite file."""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import validate
from orchestrator.errors import InvalidIdentifier, RegistryError, UnknownRevision, UsageError
from orchestrator.model import Revision
from orchestrator.sqlite import SqliteDatabase, iso_ms, parse_iso, transaction, truncate_ms

Clock = Callable[[], datetime]

MAX_CHANGES = 10_000

INSERT_REVISION = (
    "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
SELECT_LATEST = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE endpoint = ? AND partition = ? ORDER BY seq DESC LIMIT 1"
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


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_lineage(lineage: Sequence[str]) -> tuple[str, ...]:
    """Lineage ids are opaque but must be non-empty single tokens."""
    if isinstance(lineage, str):
        raise InvalidIdentifier(f"lineage must be a sequence of ids, not the string {lineage!r}")
    for item in lineage:
        if not isinstance(item, str) or not item or any(c.isspace() for c in item):
            raise InvalidIdentifier(
                f"invalid lineage id {item!r}: expected a non-empty id without whitespace"
            )
    return tuple(lineage)


def check_publish(
    endpoint: str, partition: str, uri: str, lineage: Sequence[str]
) -> tuple[str, ...]:
    """Validate everything publish takes; the in-memory registry shares the rules."""
    validate.endpoint(endpoint)
    validate.partition(partition)
    validate.uri(uri)
    return check_lineage(lineage)


def new_revision(
    endpoint: str, partition: str, uri: str, lineage: Sequence[str], now: datetime
) -> Revision:
    """A validated revision with its id and creation time; every registry adds the seq."""
    ids = check_publish(endpoint, partition, uri, lineage)
    return Revision(str(uuid.uuid4()), endpoint, partition, uri, truncate_ms(now), ids)


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_CHANGES:
        raise UsageError(f"limit must be between 1 and {MAX_CHANGES}, got {limit!r}")
    return limit


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


class SqliteRegistry:
    """Registry over one SQLite file; build it with :meth:`open`."""

    def __init__(self, database: SqliteDatabase, now: Clock = utc_now) -> None:
        self._db = database
        self._now = now

    @classmethod
    async def open(cls, path: Path, *, now: Clock = utc_now) -> SqliteRegistry:
        database = await SqliteDatabase.open(path, migrations="registry", error=RegistryError)
        return cls(database, now)

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = ()
    ) -> Revision:
        new = new_revision(endpoint, partition, uri, lineage, self._now())
        values = (new.id, endpoint, partition, uri, iso_ms(new.created),
                  json.dumps(list(new.lineage)))

        def insert(connection: sqlite3.Connection) -> int:
            with transaction(connection):
                cursor = connection.execute(INSERT_REVISION, values)
            if cursor.lastrowid is None:
                raise RegistryError("insert returned no seq")
            return cursor.lastrowid

        return dataclasses.replace(new, seq=await self._db.run(insert))

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        def select(connection: sqlite3.Connection) -> Revision | None:
            row = connection.execute(SELECT_LATEST, (endpoint, partition)).fetchone()
            return None if row is None else _revision(row)

        return await self._db.run(select)

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        def select(connection: sqlite3.Connection) -> list[Revision]:
            rows = connection.execute(SELECT_PARTITION, (endpoint, partition))
            return [_revision(row) for row in rows]

        return await self._db.run(select)

    async def get(self, revision_id: str) -> Revision:
        def select(connection: sqlite3.Connection) -> Revision | None:
            row = connection.execute(SELECT_BY_ID, (revision_id,)).fetchone()
            return None if row is None else _revision(row)

        revision = await self._db.run(select)
        if revision is None:
            raise UnknownRevision(f"no revision {revision_id!r}")
        return revision

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_limit(limit)

        def select(connection: sqlite3.Connection) -> builtins.list[Revision]:
            return [_revision(r) for r in connection.execute(SELECT_CHANGES, (since_seq, limit))]

        return await self._db.run(select)

    async def migrations(self) -> builtins.list[tuple[int, str, str]]:
        return await self._db.migrations()

    async def aclose(self) -> None:
        await self._db.aclose()
