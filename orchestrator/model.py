"""Frozen value types shared by every layer: revisions, runs, table facts."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Revision:
    """One immutable published version of a registry partition."""

    id: str
    endpoint: str
    partition: str
    uri: str
    created: datetime
    lineage: tuple[str, ...] = ()
    seq: int = 0


@dataclass(frozen=True)
class TableInfo:
    """What the warehouse says about one table."""

    spec: str
    rows: int
    last_modified: datetime


@dataclass(frozen=True)
class InputRevision:
    """The version of one input a run would consume.

    ``ref`` is what the job is given (a URI glob, a table spec, a path) and
    ``revision_id`` is what identifies this version of it in lineage and
    fingerprints: a registry revision id, or ``spec@last_modified`` for a table.
    """

    key: str
    ref: str
    revision_id: str


def fingerprint(inputs: Iterable[InputRevision]) -> str:
    """A stable hash of the input revisions a run consumes.

    Order does not matter; a new revision of any input gives a new fingerprint.
    """
    pairs = sorted((i.key, i.revision_id) for i in inputs)
    digest = hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode())
    return digest.hexdigest()[:32]


class RunState(enum.StrEnum):
    WAITING = "waiting"
    READY = "ready"
    RUNNING = "running"
    PUBLISHING = "publishing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def active(self) -> bool:
        return self in (RunState.RUNNING, RunState.PUBLISHING)


@dataclass(frozen=True)
class Run:
    """One attempt at a task for one fingerprint, as the state store holds it."""

    id: str
    task_id: str
    family: str
    partition: str
    fingerprint: str
    state: RunState
    attempt: int
    created: datetime
    updated: datetime
    inputs: tuple[InputRevision, ...] = ()
    outputs: Mapping[str, str] = field(default_factory=dict)
    staged: Mapping[str, str] = field(default_factory=dict)
    """Where this attempt writes its outputs before publication (see commit.stage)."""
    job_id: str | None = None
    error: str | None = None
    lease_owner: str | None = None
    lease_expires: datetime | None = None
