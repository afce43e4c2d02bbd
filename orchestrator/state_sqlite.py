"""The embedded state store: runs in a SQLite file, fenced by attempt numbers.

The claim rules (:func:`plan_claim`) and the fencing check (:func:`fenced`) are pure
functions so the in-memory store in ``orchestrator.testing`` obeys the same ones.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.errors import RunConflict, StateStoreError, UsageError
from orchestrator.model import InputRevision, Run, RunState
from orchestrator.sqlite import SqliteDatabase, iso_ms, parse_iso, transaction, truncate_ms

Clock = Callable[[], datetime]

MAX_LIST = 10_000

# Every SELECT returns the columns _run() unpacks, in this order.
SELECT_RUN = (
    "SELECT id, task_id, family, partition, fingerprint, state, attempt, job_id, error,"
    " inputs, outputs, staged, lease_owner, lease_expires, created, updated FROM runs"
)
SELECT_BY_KEY = (
    SELECT_RUN +
    " WHERE task_id = ? AND fingerprint = ?"
)
SELECT_BY_ID = (
    SELECT_RUN +
    " WHERE id = ?"
)
SELECT_LATEST = (
    SELECT_RUN +
    " WHERE task_id = ? ORDER BY touched DESC LIMIT 1"
)
SELECT_RUNS = (
    SELECT_RUN +
    " WHERE (:task_id IS NULL OR task_id = :task_id) AND (:state IS NULL OR state = :state)"
    " ORDER BY created DESC, rowid DESC LIMIT :limit"
)
# touched counts writes across the table, so latest() needs no distinct clock readings.
INSERT_RUN = (
    "INSERT INTO runs (id, task_id, family, partition, fingerprint, state, attempt, job_id,"
    " error, inputs, outputs, staged, lease_owner, lease_expires, created, updated, started,"
    " touched) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " (SELECT COALESCE(MAX(touched), 0) + 1 FROM runs))"
)
# The WHERE on attempt re-checks the fence in SQL: a row changed under us matches nothing.
RESTART_RUN = (
    "UPDATE runs SET state = ?, attempt = ?, job_id = ?, error = ?, inputs = ?, outputs = ?,"
    " staged = ?, lease_owner = ?, lease_expires = ?, updated = ?, started = ?, finished = NULL,"
    " touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM runs)"
    " WHERE id = ? AND attempt = ?"
)
UPDATE_RUN = (
    "UPDATE runs SET state = ?, job_id = ?, error = ?, outputs = ?, staged = ?,"
    " lease_owner = ?, lease_expires = ?, updated = ?, finished = COALESCE(?, finished),"
    " touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM runs)"
    " WHERE id = ? AND attempt = ?"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclasses.dataclass(frozen=True)
class ClaimRequest:
    task_id: str
    family: str
    partition: str
    fingerprint: str
    inputs: tuple[InputRevision, ...]
    owner: str
    lease: timedelta
    rerun_succeeded: bool = False

    def __post_init__(self) -> None:
        if self.lease <= timedelta(0):
            raise UsageError(f"lease must be positive, got {self.lease}")
        if not self.owner:
            raise UsageError("a claim needs a non-empty owner")


def plan_claim(existing: Run | None, request: ClaimRequest, now: datetime) -> Run:
    """The run a claim should write, or ``existing`` itself when nothing changes.

    Raises RunConflict while an active attempt holds a live lease, whoever the
    owner: a run is claimed once per attempt.
    """
    expires = now + request.lease
    if existing is None:
        return Run(
            id=str(uuid.uuid4()), task_id=request.task_id, family=request.family,
            partition=request.partition, fingerprint=request.fingerprint,
            state=RunState.RUNNING, attempt=1, created=now, updated=now,
            inputs=request.inputs, lease_owner=request.owner, lease_expires=expires,
        )
    if existing.state is RunState.SUCCEEDED and not request.rerun_succeeded:
        return existing
    if existing.state.active and existing.lease_expires and existing.lease_expires > now:
        raise RunConflict(
            f"run {existing.id} of {existing.task_id} (attempt {existing.attempt}) is"
            f" {existing.state} under a lease held by {existing.lease_owner!r}"
            f" until {existing.lease_expires.isoformat()}",
            held_until=existing.lease_expires,
        )
    if existing.state.active:
        # Its owner died: the new attempt inherits the state, job id and staged outputs
        # so it can reattach to the job or finish the publication instead of redoing it.
        return dataclasses.replace(
            existing, attempt=existing.attempt + 1, updated=now, error=None,
            lease_owner=request.owner, lease_expires=expires,
        )
    return dataclasses.replace(
        existing, state=RunState.RUNNING, attempt=existing.attempt + 1, updated=now,
        inputs=request.inputs, outputs={}, staged={}, job_id=None, error=None,
        lease_owner=request.owner, lease_expires=expires,
    )


def fenced(run: Run | None, run_id: str, attempt: int) -> Run:
    """The run, if ``attempt`` is still its current attempt; else RunConflict."""
    if run is None:
        raise StateStoreError(f"no run {run_id!r}")
    if run.attempt != attempt:
        raise RunConflict(
            f"run {run_id} is at attempt {run.attempt}; attempt {attempt} was superseded"
        )
    return run


def check_list_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
        raise UsageError(f"limit must be between 1 and {MAX_LIST}, got {limit!r}")
    return limit


def _run(row: tuple[Any, ...]) -> Run:
    (rid, task_id, family, partition, fingerprint, state, attempt, job_id, error,
     inputs, outputs, staged, lease_owner, lease_expires, created, updated) = row
    return Run(
        id=rid, task_id=task_id, family=family, partition=partition,
        fingerprint=fingerprint, state=RunState(state), attempt=attempt,
        created=parse_iso(created), updated=parse_iso(updated),
        inputs=load_inputs(inputs), outputs=load_mapping(outputs), staged=load_mapping(staged),
        job_id=job_id, error=error,
        lease_owner=lease_owner,
        lease_expires=None if lease_expires is None else parse_iso(lease_expires),
    )


def _iso_or_none(moment: datetime | None) -> str | None:
    return None if moment is None else iso_ms(moment)


# A run's inputs, outputs and staged refs are stored as JSON text by every store.
# Most runs are written before they have outputs or staged refs, and a task without
# inputs has none ever: empty columns skip the JSON codec, a tenth of a claim's cost.
def inputs_json(inputs: Sequence[InputRevision]) -> str:
    return json.dumps([[i.key, i.ref, i.revision_id] for i in inputs]) if inputs else "[]"


def load_inputs(text: str) -> tuple[InputRevision, ...]:
    return () if text == "[]" else tuple(InputRevision(*item) for item in json.loads(text))


def mapping_json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping)) if mapping else "{}"


def load_mapping(text: str) -> dict[str, str]:
    return {} if text == "{}" else dict(json.loads(text))


def _one(connection: sqlite3.Connection, sql: str, params: Sequence[object]) -> Run | None:
    row = connection.execute(sql, params).fetchone()
    return None if row is None else _run(row)


def _write_claim(connection: sqlite3.Connection, old: Run | None, new: Run, now: str) -> None:
    inputs, outputs = inputs_json(new.inputs), mapping_json(new.outputs)
    staged, expires = mapping_json(new.staged), _iso_or_none(new.lease_expires)
    if old is None:
        connection.execute(INSERT_RUN, (
            new.id, new.task_id, new.family, new.partition, new.fingerprint, new.state.value,
            new.attempt, new.job_id, new.error, inputs, outputs, staged, new.lease_owner,
            expires, iso_ms(new.created), iso_ms(new.updated), now,
        ))
        return
    connection.execute(RESTART_RUN, (
        new.state.value, new.attempt, new.job_id, new.error, inputs, outputs, staged,
        new.lease_owner, expires, iso_ms(new.updated), now, new.id, old.attempt,
    ))


Change = Callable[[Run, datetime], Run]
"""A write to one attempt of a run, given the run as stored and the store's clock."""


class StateStoreBase(abc.ABC):
    """What every StateStore does the same way: the claim it is asked for, checked, and
    the writes to one attempt of a run, each a pure change. A store supplies
    :meth:`_claim` (apply :func:`plan_claim` atomically) and :meth:`_update` (apply a
    change under the attempt's fence)."""

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
        return await self._claim(ClaimRequest(
            task_id, family, partition, fingerprint, tuple(inputs), owner, lease, rerun_succeeded
        ))

    @abc.abstractmethod
    async def _claim(self, request: ClaimRequest) -> Run:
        """The run :func:`plan_claim` makes of the stored one, written atomically."""

    @abc.abstractmethod
    async def _update(self, run_id: str, attempt: int, change: Change, *, finish: bool) -> Run:
        """Apply ``change`` if ``attempt`` is current (else RunConflict); ``finish``
        also stamps the run's finishing time."""

    async def set_job_id(self, run_id: str, attempt: int, job_id: str) -> Run:
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, job_id=job_id, updated=now),
            finish=False,
        )

    async def set_staged(self, run_id: str, attempt: int, staged: Mapping[str, str]) -> Run:
        refs = dict(staged)
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, staged=refs, updated=now),
            finish=False,
        )

    async def renew(self, run_id: str, attempt: int, lease: timedelta) -> Run:
        return await self._update(run_id, attempt, lambda r, now: renewed(r, now, lease),
                                  finish=False)

    async def set_state(self, run_id: str, attempt: int, state: RunState) -> Run:
        state = RunState(state)
        return await self._update(
            run_id, attempt, lambda r, now: dataclasses.replace(r, state=state, updated=now),
            finish=False,
        )

    async def succeed(self, run_id: str, attempt: int, outputs: Mapping[str, str]) -> Run:
        done = dict(outputs)
        return await self._update(run_id, attempt, lambda r, now: finished(
            r, now, state=RunState.SUCCEEDED, outputs=done, error=None
        ), finish=True)

    async def fail(self, run_id: str, attempt: int, error: str) -> Run:
        return await self._update(run_id, attempt, lambda r, now: finished(
            r, now, state=RunState.FAILED, error=error
        ), finish=True)


class SqliteStateStore(StateStoreBase):
    """StateStore over one SQLite file; build it with :meth:`open`."""

    def __init__(self, database: SqliteDatabase, now: Clock = utc_now) -> None:
        self._db = database
        self._clock = now

    @classmethod
    async def open(cls, path: Path, *, now: Clock = utc_now) -> SqliteStateStore:
        database = await SqliteDatabase.open(path, migrations="state", error=StateStoreError)
        return cls(database, now)

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    async def _claim(self, request: ClaimRequest) -> Run:
        def claim(connection: sqlite3.Connection) -> Run:
            # One IMMEDIATE transaction: another process cannot claim between read and write.
            with transaction(connection):
                now = self._now()
                old = _one(connection, SELECT_BY_KEY, (request.task_id, request.fingerprint))
                new = plan_claim(old, request, now)
                if new is not old:
                    _write_claim(connection, old, new, iso_ms(now))
                return new

        return await self._db.run(claim)

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        return await self._db.run(lambda c: _one(c, SELECT_BY_KEY, (task_id, fingerprint)))

    async def latest(self, task_id: str) -> Run | None:
        return await self._db.run(lambda c: _one(c, SELECT_LATEST, (task_id,)))

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        check_list_limit(limit)
        params = {
            "task_id": task_id,
            "state": None if state is None else RunState(state).value,
            "limit": limit,
        }

        def select(connection: sqlite3.Connection) -> list[Run]:
            return [_run(row) for row in connection.execute(SELECT_RUNS, params)]

        return await self._db.run(select)

    async def _update(self, run_id: str, attempt: int, change: Change, *, finish: bool) -> Run:
        def update(connection: sqlite3.Connection) -> Run:
            with transaction(connection):
                now = self._now()
                old = _one(connection, SELECT_BY_ID, (run_id,))
                new = change(fenced(old, run_id, attempt), now)
                stamp = iso_ms(now)
                connection.execute(UPDATE_RUN, (
                    new.state.value, new.job_id, new.error, mapping_json(new.outputs),
                    mapping_json(new.staged), new.lease_owner,
                    _iso_or_none(new.lease_expires), stamp, stamp if finish else None,
                    run_id, attempt,
                ))
                return new

        return await self._db.run(update)

    async def migrations(self) -> list[tuple[int, str, str]]:
        return await self._db.migrations()

    async def aclose(self) -> None:
        await self._db.aclose()


def renewed(run: Run, now: datetime, lease: timedelta) -> Run:
    """``run`` with its lease extended; only an active run holds a lease."""
    if not run.state.active:
        raise RunConflict(f"run {run.id} is {run.state}: there is no lease to renew")
    return dataclasses.replace(run, updated=now, lease_expires=now + lease)


def finished(run: Run, now: datetime, **changes: Any) -> Run:
    """A terminal version of ``run``: the lease is released.

    An attempt ends once: the first outcome recorded (say, a user's cancel) stands.
    """
    if not run.state.active:
        raise RunConflict(f"run {run.id} attempt {run.attempt} already {run.state}")
    return dataclasses.replace(
        run, updated=now, lease_owner=None, lease_expires=None, **changes
    )
