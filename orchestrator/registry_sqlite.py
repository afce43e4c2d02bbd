"""The embedded partition registry: revisions in a SQLite file."""

from __future__ import annotations

import builtins
import dataclasses
import json
import sqlite3
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestrator import validate
from orchestrator.errors import (
    IdempotencyKeyReused,
    InvalidIdentifier,
    RegistryError,
    UnknownRevision,
    UsageError,
)
from orchestrator.model import Revision
from orchestrator.sqlite import SqliteDatabase, iso_ms, parse_iso, transaction, truncate_ms

Clock = Callable[[], datetime]

MAX_CHANGES = 10_000

INSERT_REVISION = (
    "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage, idempotency_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
SELECT_BY_IDEMPOTENCY_KEY = (
    "SELECT seq, id, endpoint, partition, uri, created, lineage FROM revisions"
    " WHERE idempotency_key = ?"
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
    endpoint: str, partition: str, uri: str, lineage: Sequence[str], *,
    idempotency_key: str | None = None,
) -> tuple[str, ...]:
    """Validate everything publish takes; every registry shares the rules."""
    validate.endpoint(endpoint)
    validate.partition(partition)
    validate.uri(uri)
    if idempotency_key is not None:
        validate.idempotency_key(idempotency_key)
    return check_lineage(lineage)


def new_revision(
    endpoint: str, partition: str, uri: str, lineage: Sequence[str], now: datetime, *,
    idempotency_key: str | None = None,
) -> Revision:
    """A validated revision with its id and creation time; every registry adds the seq."""
    ids = check_publish(endpoint, partition, uri, lineage, idempotency_key=idempotency_key)
    return Revision(str(uuid.uuid4()), endpoint, partition, uri, truncate_ms(now), ids)


@dataclass(frozen=True)
class Publication:
    """What a publish did: the revision, and whether an earlier publish made it."""

    revision: Revision
    replayed: bool


def replay(stored: Revision, wanted: Revision, idempotency_key: str) -> Publication:
    """The revision an earlier publish with this key made, unchanged: the first one wins.

    Its uri and lineage may differ from the ``wanted`` one's; the caller compares them.
    A key met on another partition was chosen twice, and is refused.
    """
    if (stored.endpoint, stored.partition) != (wanted.endpoint, wanted.partition):
        raise IdempotencyKeyReused(
            f"idempotency key {idempotency_key!r} already published {stored.endpoint}"
            f" {stored.partition} (revision {stored.id}), not {wanted.endpoint}"
            f" {wanted.partition}"
        )
    return Publication(stored, replayed=True)


class StoringRegistry(ABC):
    """What the registries keeping revisions themselves (SQLite, PostgreSQL, in memory)
    do the same way: validate a publish and make its revision. Each supplies
    :meth:`_insert`.

    They can tell a publish that made a revision from one replayed by its idempotency
    key, which the registry service answers differently (201 or 200, a webhook or
    none); ``publish`` is the same call without the telling.
    """

    _now: Clock  # set by each registry's constructor

    async def publish_or_replay(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Publication:
        """Publish, or with a key already stored for this partition return its revision."""
        new = new_revision(endpoint, partition, uri, lineage, self._now(),
                           idempotency_key=idempotency_key)
        return await self._insert(new, idempotency_key)

    @abstractmethod
    async def _insert(self, new: Revision, idempotency_key: str | None) -> Publication:
        """Store ``new`` (valid, its seq not yet given) with its key in one atomic step;
        or, when the key is stored already, :func:`replay` its revision."""

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Revision:
        published = await self.publish_or_replay(
            endpoint, partition, uri, lineage, idempotency_key=idempotency_key
        )
        return published.revision


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


class SqliteRegistry(StoringRegistry):
    """Registry over one SQLite file; build it with :meth:`open`."""

    def __init__(self, database: SqliteDatabase, now: Clock = utc_now) -> None:
        self._db = database
        self._now = now

    @classmethod
    async def open(cls, path: Path, *, now: Clock = utc_now) -> SqliteRegistry:
        database = await SqliteDatabase.open(path, migrations="registry", error=RegistryError)
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
                cursor = connection.execute(INSERT_REVISION, values)
            if cursor.lastrowid is None:
                raise RegistryError("insert returned no seq")
            return Publication(dataclasses.replace(new, seq=cursor.lastrowid), replayed=False)

        return await self._db.run(insert)

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
