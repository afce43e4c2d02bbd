"""The registry port: immutable revisions per (endpoint, partition), and the rules every
registry backend shares."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from orchestrator import validate
from orchestrator.bounds import shown
from orchestrator.errors import (
    IdempotencyKeyReused,
    InvalidIdentifier,
    UnknownRevision,
    UsageError,
)
from orchestrator.model import Revision, new_id
from orchestrator.stores.drivers.sqlite import truncate_ms


class Registry(Protocol):
    """The partition registry: immutable revisions per (endpoint, partition)."""

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Revision:
        """Publish a new revision; validates names, assigns id, creation time and seq.

        With ``idempotency_key`` the publish happens once: a key already stored for
        this endpoint and partition returns that revision unchanged, whatever uri and
        lineage this call passed (the caller compares the uri), and adds nothing to
        the change feed. A key stored for another partition raises
        IdempotencyKeyReused; an invalid one raises InvalidIdentifier.
        """

    async def latest(self, endpoint: str, partition: str) -> Revision | None: ...

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        """The latest revision of each of ``partitions`` that has one, by partition, in
        one lookup: what ``latest`` answers partition by partition, the absent left out."""

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        """Every revision of the partition, newest first."""

    async def get(self, revision_id: str) -> Revision:
        """Raise UnknownRevision when there is no such revision."""

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        """Revisions with seq > since_seq in seq order: the change feed."""

    async def aclose(self) -> None: ...


Clock = Callable[[], datetime]

MAX_CHANGES = 10_000
MAX_LINEAGE = 1000
# The change feed's cursor is a database's signed 64-bit integer.
MIN_SEQ, MAX_SEQ = -(2**63), 2**63 - 1


def utc_now() -> datetime:
    return datetime.now(UTC)


def check_lineage(lineage: Sequence[str]) -> tuple[str, ...]:
    """Lineage ids are opaque but bounded single tokens, and at most MAX_LINEAGE of them."""
    if isinstance(lineage, str):
        raise InvalidIdentifier(
            f"lineage must be a sequence of ids, not the string {shown(lineage)}"
        )
    ids = tuple(lineage)
    if len(ids) > MAX_LINEAGE:
        raise InvalidIdentifier(f"lineage holds {len(ids)} ids, more than {MAX_LINEAGE}")
    for item in ids:
        validate.lineage_id(item)
    return ids


def names_a_partition(endpoint: str, partition: str) -> bool:
    """Whether a publish would take these names. A partition no publish could name has
    no revisions, and every registry answers so without looking it up: a database may
    not even take the bytes (a NUL, a lone surrogate)."""
    try:
        validate.endpoint(endpoint)
        validate.partition(partition)
    except InvalidIdentifier:
        return False
    return True


def partitions_to_look_up(endpoint: str, partitions: Sequence[str]) -> builtins.list[str]:
    """The partitions a batched lookup asks the store about, each once: those a publish
    could name (the others have no revision, as :func:`names_a_partition` says)."""
    if isinstance(partitions, str):
        raise UsageError(f"partitions must be a sequence of names, not the string "
                         f"{shown(partitions)}")
    return [p for p in dict.fromkeys(partitions) if names_a_partition(endpoint, p)]


def check_revision_id(revision_id: str) -> str:
    """An id no revision could have names none: UnknownRevision, without a lookup."""
    try:
        return validate.revision_id(revision_id)
    except InvalidIdentifier:
        raise UnknownRevision(f"no revision {shown(revision_id)}") from None


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
    return Revision(new_id(), endpoint, partition, uri, truncate_ms(now), ids)


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


def check_since(since_seq: int) -> int:
    """Any cursor a database column holds; one below 1 reads from the start."""
    if isinstance(since_seq, bool) or not MIN_SEQ <= since_seq <= MAX_SEQ:
        raise UsageError(f"since must be between {MIN_SEQ} and {MAX_SEQ}, got {_shown(since_seq)}")
    return since_seq


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_CHANGES:
        raise UsageError(f"limit must be between 1 and {MAX_CHANGES}, got {_shown(limit)}")
    return limit


def _shown(number: int) -> str:
    # repr of an int over 4,300 digits raises ValueError: a bad number must not do that.
    return repr(number) if abs(number) <= MAX_SEQ else "a number out of range"
