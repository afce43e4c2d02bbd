"""The Protocols every outside system sits behind.

Adapters implementing them are built by the CLI or daemon from the settings and
passed in; nothing else constructs clients. ``orchestrator.testing`` holds the
in-memory implementations used by unit tests.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from orchestrator.model import InputRevision, Revision, Run, RunRetryPolicy, RunState, TableInfo
from orchestrator.tablespec import TableSpec


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

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        """Every revision of the partition, newest first."""

    async def get(self, revision_id: str) -> Revision:
        """Raise UnknownRevision when there is no such revision."""

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        """Revisions with seq > since_seq in seq order: the change feed."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Column:
    """A warehouse column with a BigQuery type name (STRING, INT64, DATE, ...)."""

    name: str
    type: str


class Warehouse(Protocol):
    """Tables addressed by ``project:dataset.table`` specs."""

    async def table_info(self, spec: TableSpec) -> TableInfo | None: ...

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        """Every table of one dataset in one call (for sensors watching many)."""

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        """Create or replace a table with the given rows, atomically."""

    async def read_rows(
        self, spec: TableSpec, limit: int | None = None
    ) -> list[dict[str, object]]: ...

    async def staging_table(self, final: TableSpec) -> TableSpec:
        """A fresh ``_incoming_<location>._<table>_<random>`` spec in the final's project.

        The dataset is created on demand; the table itself is left for the job to write.
        """

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        """Replace the final table by the staging table's rows in one atomic step.

        ``job_key`` identifies the move so that a retried move is recognised.
        """

    async def drop_table(self, spec: TableSpec) -> None:
        """Drop the table if it exists."""

    def job_options(self) -> list[str]:
        """Pipeline options a job needs to reach this warehouse (none for BigQuery)."""

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    updated: datetime


class Storage(Protocol):
    """Objects addressed by URI: ``gs://bucket/path`` or an absolute local path."""

    async def exists(self, uri: str) -> bool: ...

    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object below the prefix (recursively), sorted by URI."""

    async def read(self, uri: str) -> bytes:
        """Raise ObjectNotFound when the object is absent."""

    def read_lines(self, uri: str) -> AsyncIterator[str]:
        """Stream a text object line by line without loading it whole."""

    async def write(self, uri: str, data: bytes) -> None:
        """Create-only, atomic: raise ObjectExists if the object is already there."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object below the prefix; return how many were deleted."""

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Folders below the prefix that hold no object, with when they last changed: a
        writer that died before its first object leaves one on a file system. Object
        stores have no folders, so none there."""

    async def aclose(self) -> None: ...


PgColumn = tuple[str, str]
"""A PostgreSQL column as Luigi's CopyToTable declares it: (name, SQL type)."""


class Database(Protocol):
    """A PostgreSQL database that tasks load tables into (Luigi's CopyToTable).

    A load is marked done by a row keyed by the task's id in a marker table, written in
    the same transaction as the rows: both land together, or neither does.
    """

    async def marker(self, table: str, key: str) -> datetime | None:
        """When the load ``key`` into ``table`` was committed; None if it never was."""

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        """Create the table if needed, COPY the rows and insert the marker, in ONE transaction.

        Return False (and change nothing) when the marker is already there.
        """

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        """The table's rows in physical order (for ``charon show`` and tests)."""

    async def aclose(self) -> None: ...


class StateStore(Protocol):
    """Runs, unique on (task id, fingerprint), at most one active per task, guarded by
    leases and fencing tokens (the rules are in ``orchestrator.state_base``).

    A run's ``attempt`` is its fencing token: every write names the attempt it belongs
    to and is refused with LeaseLost once another attempt has taken over or the run
    ended; writes that continue the attempt's work also need its lease to be live on
    the store's clock.
    """

    async def claim(
        self,
        *,
        task_id: str,
        family: str,
        partition: str,
        fingerprint: str,
        inputs: Sequence[InputRevision],
        owner: str,
        lease: timedelta,
        rerun_succeeded: bool = False,
        retry: RunRetryPolicy = ...,
    ) -> Run:
        """Start or take over an attempt at (task_id, fingerprint), holding its lease.

        An active run of the task for *other* inputs is superseded if it has not begun
        publishing; one that is publishing is waited for (RunConflict) or, when its
        lease ran out, returned taken over, for the claimer to finish before claiming
        again. Then, for the requested fingerprint: no row: attempt 1, RUNNING. An
        active row under a live lease: RunConflict. An active row whose lease ran out:
        the next attempt in the same state, keeping its job id, staged outputs and
        generation. A SUCCEEDED row: returned unchanged unless ``rerun_succeeded``. A
        FAILED row: RetriesExhausted past the policy's limit, RunConflict before its
        retry is due, else the next attempt of the next generation, from scratch; so is
        a SUPERSEDED row, or a re-run.
        """

    async def get(self, task_id: str, fingerprint: str) -> Run | None: ...

    async def latest(self, task_id: str) -> Run | None:
        """The most recently updated run of the task, any fingerprint."""

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        """Runs newest first, optionally filtered."""

    async def set_job_id(self, run_id: str, attempt: int, job_id: str) -> Run: ...

    async def set_staged(self, run_id: str, attempt: int, staged: Mapping[str, str]) -> Run:
        """Record where the run writes its outputs, before the job starts."""

    async def renew(self, run_id: str, attempt: int, lease: timedelta) -> Run:
        """Extend a live lease from now; LeaseLost if it ran out or the attempt is over."""

    async def check_fence(self, run_id: str, attempt: int) -> Run:
        """LeaseLost unless the attempt still holds the run under a live lease."""

    async def begin_publishing(self, run_id: str, attempt: int) -> Run:
        """RUNNING → PUBLISHING, under a live lease: from here the run is resumed."""

    async def supersede(self, run_id: str, attempt: int, reason: str) -> Run:
        """End a RUNNING run whose inputs are no longer the latest."""

    async def release(self, run_id: str, attempt: int, reason: str) -> Run:
        """End the attempt's lease now, leaving the run as it stands to be taken over."""

    async def succeed(self, run_id: str, attempt: int, outputs: Mapping[str, str]) -> Run: ...

    async def fail(self, run_id: str, attempt: int, error: str) -> Run:
        """Record a failed execution; the retry policy of the next claim decides."""

    async def aclose(self) -> None: ...


class JobRunner(Protocol):
    """Runs one job to completion: a subprocess here, a Dataflow job in the cloud."""

    finds_jobs_by_name: bool
    """Whether :meth:`run` attaches to a live job of the same name instead of starting a
    second one; a run whose job id was never recorded is then relaunched to the same
    places, else its staging is discarded and it starts afresh."""

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        """Start the job and await ``on_started(job_id)`` before waiting on it.

        ``job_name`` is deterministic per (task, partition, fingerprint): a runner that
        can look jobs up by name attaches to a live job of that name instead of
        submitting a second one. Raise JobFailed when the job fails.
        """

    async def reattach(self, job_id: str) -> None:
        """Wait for a job an earlier process started and recorded.

        Raise JobLost when it cannot be followed (the engine then launches anew),
        JobFailed when it failed.
        """

    async def cancel(self, job_id: str) -> None:
        """Ask for the job to stop; a job already finished is left alone."""
