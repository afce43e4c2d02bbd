"""In-memory implementations of every port, for unit tests.

They follow the same rules and raise the same errors as the embedded adapters (the
contract tests in ``tests/contracts`` run against both), and share their pure rule
functions (validation, claim planning, fencing) so the two cannot drift apart.
"""

from __future__ import annotations

import builtins
import dataclasses
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import anyio.lowlevel

from orchestrator.database_pg import check_load
from orchestrator.duckdb_files import DUCKDB_TYPES
from orchestrator.errors import (
    JobFailed,
    JobLost,
    ObjectExists,
    ObjectNotFound,
    StorageError,
    TableNotFound,
    UnknownRevision,
    WarehouseError,
)
from orchestrator.model import InputRevision, Revision, Run, RunState, TableInfo
from orchestrator.ports import Column, ObjectInfo, PgColumn
from orchestrator.registry_sqlite import check_limit, check_publish
from orchestrator.sqlite import truncate_ms
from orchestrator.state_sqlite import (
    ClaimRequest,
    check_list_limit,
    fenced,
    finished,
    plan_claim,
    renewed,
)
from orchestrator.tablespec import TableSpec
from orchestrator.warehouse_duckdb import (
    check_location,
    check_move,
    check_read_limit,
    staging_spec,
)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand, for lease expiry without sleeping."""

    def __init__(self, start: datetime = datetime(2018, 10, 31, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class InMemoryRegistry:
    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self._revisions: list[Revision] = []  # in seq order; seq = index + 1

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = ()
    ) -> Revision:
        ids = check_publish(endpoint, partition, uri, lineage)
        await anyio.lowlevel.checkpoint()
        revision = Revision(
            str(uuid.uuid4()), endpoint, partition, uri, truncate_ms(self._now()), ids,
            len(self._revisions) + 1,
        )
        self._revisions.append(revision)
        return revision

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        revisions = await self.list(endpoint, partition)
        return revisions[0] if revisions else None

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        await anyio.lowlevel.checkpoint()
        key = (endpoint, partition)
        return [r for r in reversed(self._revisions) if (r.endpoint, r.partition) == key]

    async def get(self, revision_id: str) -> Revision:
        await anyio.lowlevel.checkpoint()
        for revision in self._revisions:
            if revision.id == revision_id:
                return revision
        raise UnknownRevision(f"no revision {revision_id!r}")

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_limit(limit)
        await anyio.lowlevel.checkpoint()
        return [r for r in self._revisions if r.seq > since_seq][:limit]

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryStateStore:
    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self._runs: dict[str, Run] = {}  # by id, in creation order
        self._touched: dict[str, int] = {}  # run id -> write counter, for latest()
        self._writes = 0

    def _store(self, run: Run) -> Run:
        self._writes += 1
        self._runs[run.id] = run
        self._touched[run.id] = self._writes
        return run

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
    ) -> Run:
        request = ClaimRequest(
            task_id, family, partition, fingerprint, tuple(inputs), owner, lease, rerun_succeeded
        )
        await anyio.lowlevel.checkpoint()
        old = self._find(task_id, fingerprint)
        new = plan_claim(old, request, truncate_ms(self._now()))
        return new if new is old else self._store(new)

    def _find(self, task_id: str, fingerprint: str) -> Run | None:
        for run in self._runs.values():
            if (run.task_id, run.fingerprint) == (task_id, fingerprint):
                return run
        return None

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        await anyio.lowlevel.checkpoint()
        return self._find(task_id, fingerprint)

    async def latest(self, task_id: str) -> Run | None:
        await anyio.lowlevel.checkpoint()
        runs = [r for r in self._runs.values() if r.task_id == task_id]
        return max(runs, key=lambda r: self._touched[r.id], default=None)

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        check_list_limit(limit)
        await anyio.lowlevel.checkpoint()
        runs = [
            r for r in reversed(self._runs.values())
            if task_id in (None, r.task_id) and state in (None, r.state)
        ]
        # Stable sort: equal creation times keep newest-inserted first.
        return sorted(runs, key=lambda r: r.created, reverse=True)[:limit]

    async def _update(
        self, run_id: str, attempt: int, change: Callable[[Run, datetime], Run]
    ) -> Run:
        await anyio.lowlevel.checkpoint()
        run = fenced(self._runs.get(run_id), run_id, attempt)
        return self._store(change(run, truncate_ms(self._now())))

    async def set_job_id(self, run_id: str, attempt: int, job_id: str) -> Run:
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, job_id=job_id, updated=now)
        )

    async def set_staged(self, run_id: str, attempt: int, staged: Mapping[str, str]) -> Run:
        refs = dict(staged)
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, staged=refs, updated=now)
        )

    async def renew(self, run_id: str, attempt: int, lease: timedelta) -> Run:
        return await self._update(run_id, attempt, lambda r, now: renewed(r, now, lease))

    async def set_state(self, run_id: str, attempt: int, state: RunState) -> Run:
        state = RunState(state)
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, state=state, updated=now)
        )

    async def succeed(self, run_id: str, attempt: int, outputs: Mapping[str, str]) -> Run:
        done = dict(outputs)
        return await self._update(
            run_id, attempt,
            lambda r, now: finished(r, now, state=RunState.SUCCEEDED, outputs=done, error=None),
        )

    async def fail(self, run_id: str, attempt: int, error: str) -> Run:
        return await self._update(
            run_id, attempt, lambda r, now: finished(r, now, state=RunState.FAILED, error=error)
        )

    async def aclose(self) -> None:
        """Nothing to release."""


@dataclasses.dataclass(frozen=True)
class _Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    modified: datetime


class InMemoryWarehouse:
    def __init__(self, location: str = "EU", now: Clock = utc_now) -> None:
        self._location = check_location(location)
        self._now = now
        self._tables: dict[TableSpec, _Table] = {}
        self._moves: dict[str, tuple[str, str]] = {}

    def _info(self, spec: TableSpec) -> TableInfo | None:
        table = self._tables.get(spec)
        return None if table is None else TableInfo(str(spec), len(table.rows), table.modified)

    def _found(self, spec: TableSpec) -> TableInfo:
        info = self._info(spec)
        if info is None:
            raise TableNotFound(f"no table {spec}")
        return info

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        await anyio.lowlevel.checkpoint()
        return self._info(spec)

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        TableSpec(project, dataset, "_")
        await anyio.lowlevel.checkpoint()
        specs = sorted(s for s in self._tables if (s.project, s.dataset) == (project, dataset))
        return [self._found(spec) for spec in specs]

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        for column in columns:
            if column.type.upper() not in DUCKDB_TYPES:
                raise WarehouseError(f"unsupported column type {column.type!r}")
            if not column.name.isidentifier():
                raise WarehouseError(f"invalid column name {column.name!r}")
        data = tuple(tuple(row) for row in rows)
        if not columns:
            raise WarehouseError(f"table {spec} needs at least one column")
        if any(len(row) != len(columns) for row in data):
            raise WarehouseError(f"every row of {spec} must have {len(columns)} values")
        await anyio.lowlevel.checkpoint()
        self._tables[spec] = _Table(tuple(c.name for c in columns), data, self._now())
        return self._found(spec)

    async def read_rows(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, object]]:
        check_read_limit(limit)
        await anyio.lowlevel.checkpoint()
        table = self._tables.get(spec)
        if table is None:
            raise TableNotFound(f"no table {spec}")
        rows = table.rows if limit is None else table.rows[:limit]
        return [dict(zip(table.columns, row, strict=True)) for row in rows]

    async def staging_table(self, final: TableSpec) -> TableSpec:
        await anyio.lowlevel.checkpoint()
        return staging_spec(final, self._location)

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        check_move(staging, final, job_key)
        await anyio.lowlevel.checkpoint()
        done = self._moves.get(job_key)
        if done is not None:
            if done != (str(staging), str(final)):
                raise WarehouseError(f"job key {job_key!r} already moved {done[0]} to {done[1]}")
            return self._found(final)
        source = self._tables.get(staging)
        if source is None:
            raise TableNotFound(f"staging table {staging} does not exist")
        self._tables[final] = dataclasses.replace(source, modified=self._now())
        self._moves[job_key] = (str(staging), str(final))
        return self._found(final)

    async def drop_table(self, spec: TableSpec) -> None:
        await anyio.lowlevel.checkpoint()
        self._tables.pop(spec, None)

    def job_options(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryStorage:
    """Objects in a dict; ``root`` (a URI prefix) optionally confines them like LocalStorage."""

    def __init__(self, root: str | None = None, now: Clock = utc_now) -> None:
        self._root = root
        self._now = now
        self._objects: dict[str, tuple[bytes, datetime]] = {}

    def _check(self, uri: str) -> str:
        if not uri.startswith(("gs://", "/")) or "\0" in uri:
            raise StorageError(f"invalid storage URI {uri!r}")
        if self._root is not None and not uri.startswith(self._root):
            raise StorageError(f"{uri} lies outside the storage root {self._root}")
        return uri

    async def exists(self, uri: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return self._check(uri) in self._objects

    async def list(self, prefix: str) -> list[ObjectInfo]:
        self._check(prefix)
        await anyio.lowlevel.checkpoint()
        return [
            ObjectInfo(uri, len(data), updated)
            for uri, (data, updated) in sorted(self._objects.items())
            if uri.startswith(prefix)
        ]

    async def read(self, uri: str) -> bytes:
        await anyio.lowlevel.checkpoint()
        try:
            return self._objects[self._check(uri)][0]
        except KeyError:
            raise ObjectNotFound(f"no object {uri}") from None

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        try:
            text = (await self.read(uri)).decode()
        except UnicodeDecodeError as exc:
            raise StorageError(f"object is not UTF-8 text: {exc}") from exc
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        for line in lines:
            yield line.removesuffix("\r")

    async def write(self, uri: str, data: bytes) -> None:
        if self._check(uri).endswith("/"):
            raise StorageError(f"invalid object URI {uri!r}: names a folder")
        await anyio.lowlevel.checkpoint()
        if uri in self._objects:
            raise ObjectExists(f"object {uri} already exists")
        self._objects[uri] = (bytes(data), self._now())

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [info.uri for info in await self.list(prefix)]
        for uri in doomed:
            del self._objects[uri]
        return len(doomed)

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryDatabase:
    """Loads in dicts, with the PostgreSQL adapter's rules (``check_load``).

    ``fail_after_copy`` stands for a crash between COPY and commit: the load raises
    before anything becomes visible, as the transaction's rollback guarantees there.
    """

    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self.tables: dict[str, list[tuple[object, ...]]] = {}
        self.columns: dict[str, list[str]] = {}
        self.markers: dict[tuple[str, str], datetime] = {}
        self.fail_after_copy = False

    async def marker(self, table: str, key: str) -> datetime | None:
        await anyio.lowlevel.checkpoint()
        return self.markers.get((table, key))

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        check_load(table, columns, key)
        await anyio.lowlevel.checkpoint()
        if (table, key) in self.markers:
            return False
        copied = [tuple(row) for row in rows]
        if any(len(row) != len(columns) for row in copied):
            raise WarehouseError(f"every row of {table} must have {len(columns)} values")
        if self.fail_after_copy:
            raise ProcessCrashed(f"crashed after copying into {table}")
        self.columns.setdefault(table, [name for name, _ in columns])
        self.tables.setdefault(table, []).extend(copied)
        self.markers[(table, key)] = self._now()
        return True

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        await anyio.lowlevel.checkpoint()
        names = self.columns.get(table, [])
        return [dict(zip(names, row, strict=True)) for row in self.tables.get(table, [])[:limit]]

    async def aclose(self) -> None:
        """Nothing to release."""


class ProcessCrashed(BaseException):  # named for what it simulates
    """Raised by FakeJobRunner to stand for the orchestrator process dying mid-run.

    A BaseException, like the SystemExit of a killed process, so the engine's error
    handling does not clean up after it, exactly as after a real crash.
    """


def job_options(argv: Sequence[str]) -> dict[str, str]:
    """``--key=value`` arguments of a job command line."""
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


@dataclasses.dataclass
class FakeJobRunner:
    """A JobRunner that plays a Beam job against in-memory storage and warehouse.

    It writes a ``part`` file under each of ``text_outputs`` and a one-row table at
    every staging table spec it is handed, then succeeds (or raises ``fail_with``).
    ``gate``, when set, holds every job until the test sets it.
    """

    warehouse: InMemoryWarehouse
    storage: InMemoryStorage
    text_outputs: tuple[str, ...] = ("textOutput",)
    fail_with: str | None = None
    write_outputs: bool = True
    gate: anyio.Event | None = None
    calls: list[list[str]] = dataclasses.field(default_factory=list)
    job_names: list[str] = dataclasses.field(default_factory=list)
    running: int = 0
    most_running: int = 0
    crash_after_start: bool = False
    """Simulate this process dying once the job id is recorded (nothing cleans up)."""
    reattachable: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Job ids an earlier process started that reattach() can follow, with their argv."""
    reattached: list[str] = dataclasses.field(default_factory=list)
    cancelled: list[str] = dataclasses.field(default_factory=list)

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        self.calls.append(list(argv))
        self.job_names.append(job_name)
        job_id = f"fake-{len(self.calls)}"
        await on_started(job_id)
        if self.crash_after_start:
            self.reattachable[job_id] = list(argv)
            raise ProcessCrashed(job_id)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            await (self.gate.wait() if self.gate else anyio.sleep(0.01))
            if self.write_outputs:
                await self._write(job_options(argv))
            if self.fail_with:
                raise JobFailed(self.fail_with)
        finally:
            self.running -= 1

    async def reattach(self, job_id: str) -> None:
        if job_id not in self.reattachable:
            raise JobLost(f"{job_id} is not running any more")
        self.reattached.append(job_id)
        await self._write(job_options(self.reattachable.pop(job_id)))

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    async def _write(self, given: Mapping[str, str]) -> None:
        for key, value in given.items():
            if key in self.text_outputs:
                await self.storage.write(f"{value}/part", b"a1\tArtist\t3\n")
            elif ":_incoming_" in value:
                await self.warehouse.create_table(
                    TableSpec.parse(value),
                    [Column("artist_gid", "STRING"), Column("streams", "INT64")],
                    [("a1", 3)],
                )
