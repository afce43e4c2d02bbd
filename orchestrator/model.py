"""Frozen value types shared by every layer: revisions, runs, table facts."""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from orchestrator.errors import UsageError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
    order: int | None = None
    """Where this revision stands among the input's revisions: a later one has a greater
    order (a registry revision's seq; a table's or object's modification time in
    microseconds). Not part of the fingerprint; it tells a stale lookup from a fresh
    one. None when unknown (runs recorded before it was)."""


def micros(moment: datetime) -> int:
    """A moment as whole microseconds since the epoch, for an input's ``order``."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def new_id() -> str:
    """A new run's or revision's id: a random UUID, as text."""
    # uuid imports platform, which asks the system its name: a command that makes no
    # new record (a re-run of what is complete) need not start with it.
    import uuid  # noqa: PLC0415  # see above

    return str(uuid.uuid4())


def newer_than(inputs: Iterable[InputRevision], others: Iterable[InputRevision]) -> bool:
    """Whether some input of ``inputs`` is a later revision than the same input in
    ``others``: whoever looked ``others`` up did so before that revision came."""
    orders = {other.key: other.order for other in others}
    return any(
        mine.order is not None and (theirs := orders.get(mine.key)) is not None
        and mine.order > theirs
        for mine in inputs
    )


def fingerprint(inputs: Iterable[InputRevision]) -> str:
    """A stable hash of the input revisions a run consumes.

    Order does not matter; a new revision of any input gives a new fingerprint.
    """
    pairs = sorted((i.key, i.revision_id) for i in inputs)
    digest = hashlib.sha256(json.dumps(pairs, separators=(",", ":")).encode())
    return digest.hexdigest()[:32]


class RunState(enum.StrEnum):
    RUNNING = "running"
    PUBLISHING = "publishing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUPERSEDED = "superseded"
    """Replaced by a run of newer inputs before it began publishing; it publishes nothing."""

    @property
    def active(self) -> bool:
        """Held under a lease by one worker: at most one such run per task."""
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
    generation: int = 1
    """Counts fresh starts of this (task, fingerprint): a takeover continues the same
    generation (and so the same publication), a retry after a failure or a re-run of a
    succeeded run begins the next one."""
    failures: int = 0
    """Failed executions so far, for the retry policy's backoff and limit."""
    finished: datetime | None = None


# A daily pipeline's failed run waits a day at the most between tries; the bound on
# doublings keeps the arithmetic far from timedelta's range whatever the delay.
MAX_RETRY_DELAY = timedelta(days=1)
MAX_DOUBLINGS = 20


@dataclass(frozen=True)
class RunRetryPolicy:
    """When a failed run may be tried again: ``attempts`` failed executions at most
    (None: no limit), the first retry ``delay`` after the failure, doubling each time."""

    attempts: int | None = None
    delay: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        if self.attempts is not None and self.attempts < 1:
            raise UsageError(f"retry attempts must be at least 1, got {self.attempts}")
        if self.delay < timedelta(0):
            raise UsageError(f"retry delay must not be negative, got {self.delay}")

    def retry_at(self, run: Run) -> datetime | None:
        """When the failed ``run`` may run again; None when it may not any more."""
        if self.attempts is not None and run.failures >= self.attempts:
            return None
        finished = run.finished or run.updated
        doublings = min(max(run.failures - 1, 0), MAX_DOUBLINGS)
        return finished + min(self.delay * (1 << doublings), MAX_RETRY_DELAY)


RETRY_AT_ONCE = RunRetryPolicy()
"""A user's own run: a failed run is tried again the next time it is asked for."""


class BackfillState(enum.StrEnum):
    RUNNING = "running"  # or stopped by a crash: its updated time says when it last moved
    SUCCEEDED = "succeeded"  # every day done, now or before
    FAILED = "failed"  # it ended with days not done: running it again resumes them
    CANCELLED = "cancelled"  # by a user, through the daemon's API: nothing runs it


class BackfillOrder(enum.StrEnum):
    OLDEST = "oldest"
    NEWEST = "newest"


@dataclass(frozen=True)
class Backfill:
    """One ``charon backfill``: a task's days over an interval, recorded so that running
    it again resumes it, and so that anyone reading the state store sees how far it got."""

    id: str
    key: str
    """What makes two invocations the same backfill: the task, its parameters, the days."""
    task: str
    """The task as the command named it (module, family and parameters), for people."""
    interval: str
    order: BackfillOrder
    state: BackfillState
    total: int
    """Days in the interval."""
    created: datetime
    updated: datetime
    days: Mapping[str, str] = field(default_factory=dict)
    """Each day evaluated so far (YYYY-MM-DD) and the status its last evaluation ended in
    (orchestrator.core.report.Status), oldest day first."""
    workflow: str = ""
    """The daemon's workflow whose days it runs; "" for ``charon backfill``'s."""
    max_parallel: int = 0
    """Its days at once, for a daemon resuming it; 0 for the command's, told each time."""
    owner: str = ""
    """The daemon replica running it, "" for the command's: a daemon's backfill whose
    replica is gone is taken over by another."""


@dataclass(frozen=True)
class Rerun:
    """A user's re-run of one run: its (task, fingerprint) runs again once, while its
    latest success is still of ``generation``; once a re-run began it is not repeated,
    however many processes serve the request."""

    task_id: str
    fingerprint: str
    generation: int


@dataclass(frozen=True)
class Asked:
    """A day someone asked the daemon to evaluate (a webhook's run request, the API's
    trigger), kept in the state store until an evaluation of it ends, so that a daemon
    that dies first does not lose it: another replica, or the restarted one, takes it."""

    id: str
    workflow: str
    day: date
    replica: str
    """The replica that took it; the others leave it alone while that one is live."""
    rerun: Rerun | None = None
    """A re-run asked of a run of a task of that day."""
