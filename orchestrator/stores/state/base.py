"""What every state store does the same way: the claim plan, the fence, the writes.

A store supplies two primitives — apply a claim plan atomically (:meth:`_claim`) and
apply one change to one attempt of a run under its fence (:meth:`_update`) — and
gets every other StateStore method from :class:`StateStoreBase`. The rules themselves
are pure functions of the stored rows and the store's clock, so the SQLite, PostgreSQL
and in-memory stores cannot disagree on one.

The rules, in one place:

- At most one *active* run (RUNNING or PUBLISHING) per task, whatever its fingerprint.
  A claim for new inputs supersedes an active run of other inputs that has not begun
  publishing; one that has begun publishing is waited for, or, when its owner's lease
  ran out, handed to the claimer to finish first.
- A run's ``attempt`` is its fencing token. Writes that continue an attempt's work
  (staging, recording the job, renewing, beginning publication, the fence check before
  each irreversible step) need the attempt to be current, the run active, and its lease
  live on the store's clock. Writes that end an attempt (success, failure, release) need
  the attempt to be current and the run active.
- A lease that ran out is lost for good: only a new claim brings the run back.
- A webhook's delivery id, once remembered, is refused again until its expiry on the
  store's clock, whichever process (or daemon replica) asks.
- A day asked for is kept until an evaluation of it ends: a request outlives the daemon
  that took it.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from orchestrator.errors import LeaseLost
from orchestrator.model import (
    RETRY_AT_ONCE,
    Asked,
    Backfill,
    BackfillState,
    InputRevision,
    Rerun,
    Run,
    RunRetryPolicy,
    RunState,
)
from orchestrator.stores.state.claims import ClaimPlan, ClaimRequest, held


class StateStore(Protocol):
    """Runs, unique on (task id, fingerprint), at most one active per task, guarded by
    leases and fencing tokens (the rules are in ``orchestrator.stores.state.base``).

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
        rerun_generation: int | None = None,
        retry: RunRetryPolicy = ...,
    ) -> Run:
        """Start or take over an attempt at (task_id, fingerprint), holding its lease.

        An active run of the task for *other* inputs is superseded if it has not begun
        publishing; one that is publishing is waited for (RunConflict) or, when its
        lease ran out, returned taken over, for the claimer to finish before claiming
        again. Then, for the requested fingerprint: no row: attempt 1, RUNNING. An
        active row under a live lease: RunConflict. An active row whose lease ran out:
        the next attempt in the same state, keeping its job id, staged outputs and
        generation. A SUCCEEDED row: returned unchanged unless its generation is
        ``rerun_generation`` (a re-run: compare-and-set, so that a re-run asked of one
        generation runs once however many processes claim it). A
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

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        """Remember a webhook's delivery id until ``expires`` (an aware datetime).

        True the first time; False while the id is remembered, unexpired on the store's
        clock. Either way the id is then kept until the later of its expiries, and the
        ids that expired are forgotten, so the store holds only live ones. ``asked``,
        the day the delivery asks for, is recorded with the id the first time, in the
        same transaction: a daemon that dies in between loses neither.
        """

    async def ask(self, asked: Asked) -> None:
        """Keep ``asked`` until :meth:`served`; one whose id is kept already stays as it is."""

    async def asked(self) -> list[Asked]:
        """The days asked for and not served yet, oldest first."""

    async def served(self, asked_ids: Sequence[str]) -> None:
        """Forget these requests: an evaluation of their day ended."""

    async def heartbeat(
        self, replica: str, watched: Sequence[str], ttl: timedelta,
    ) -> list[tuple[str, str]]:
        """Count ``replica`` among the live daemon replicas watching each of ``watched``
        (and nothing else) until ``ttl`` from now, on the store's clock, and forget
        what ran out. Returns every live (replica, watched) pair, sorted: what the
        replicas split the watched partitions by."""

    async def leave(self, replica: str) -> None:
        """Stop counting ``replica`` as live now (it is shutting down)."""

    async def open_backfill(self, backfill: Backfill) -> Backfill:
        """Record ``backfill``; when one with its key is recorded, resume that one
        instead: its id and days stay, its order and state become ``backfill``'s."""

    async def record_backfill_day(self, backfill_id: str, day: str, status: str, *,
                                  owner: str = "") -> None:
        """What the day's evaluation ended in, written by the running backfill's runner
        ``owner``; UnknownBackfill for an unknown id, BackfillTaken when another runs it
        or it ended (cancelled, say)."""

    async def finish_backfill(self, backfill_id: str, state: BackfillState, *,
                              owner: str = "") -> None:
        """Its final state, as :meth:`record_backfill_day` writes."""

    async def get_backfill(self, backfill_id: str) -> Backfill | None: ...

    async def cancel_backfill(self, backfill_id: str) -> bool:
        """Cancel the backfill if it is running: whether it was. Its runner's next write
        to it is refused, and nobody takes it over."""

    async def take_backfill(self, backfill_id: str, owner: str, *, from_owner: str) -> bool:
        """Make ``owner`` the running backfill's runner if ``from_owner`` still is (the
        daemon replica that ran it is gone): whether it did. Of replicas racing to take
        one over, one does."""

    async def list_backfills(self, limit: int = 100, *, running: bool = False) -> list[Backfill]:
        """Backfills newest first, each with its days; only those running if ``running``."""

    async def aclose(self) -> None: ...



# A run's inputs, outputs and staged refs are stored as JSON text by every store.
# Most runs are written before they have outputs or staged refs, and a task without
# inputs has none ever: empty columns skip the JSON codec, a tenth of a claim's cost.
def _inputs_json(inputs: Sequence[InputRevision]) -> str:
    if not inputs:
        return "[]"
    return json.dumps([[i.key, i.ref, i.revision_id, i.order] for i in inputs])


def _load_inputs(text: str) -> tuple[InputRevision, ...]:
    return () if text == "[]" else tuple(InputRevision(*item) for item in json.loads(text))


def _mapping_json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping)) if mapping else "{}"


def _load_mapping(text: str) -> dict[str, str]:
    return {} if text == "{}" else dict(json.loads(text))


Moment = Callable[[Any], Any]
"""How a store writes (or reads back) a moment: ISO text in SQLite, timestamptz as is."""


def run_from_row(row: Sequence[Any], moment: Moment) -> Run:
    """A run from a row of every store's SELECT: id, task_id, family, partition,
    fingerprint, state, attempt, job_id, error, inputs, outputs, staged, lease_owner,
    lease_expires, created, updated, generation, failures, finished."""
    (rid, task_id, family, partition, fingerprint, state, attempt, job_id, error,
     inputs, outputs, staged, lease_owner, lease_expires, created, updated, generation,
     failures, finished) = row
    return Run(
        id=rid, task_id=task_id, family=family, partition=partition,
        fingerprint=fingerprint, state=RunState(state), attempt=attempt,
        created=moment(created), updated=moment(updated),
        inputs=_load_inputs(inputs), outputs=_load_mapping(outputs),
        staged=_load_mapping(staged), job_id=job_id, error=error, lease_owner=lease_owner,
        lease_expires=None if lease_expires is None else moment(lease_expires),
        generation=generation, failures=failures,
        finished=None if finished is None else moment(finished),
    )


def _changing(run: Run, moment: Moment) -> tuple[object, ...]:
    return (
        run.state.value, run.attempt, run.job_id, run.error, _inputs_json(run.inputs),
        _mapping_json(run.outputs), _mapping_json(run.staged), run.lease_owner,
        None if run.lease_expires is None else moment(run.lease_expires),
    )


def insert_values(run: Run, moment: Moment) -> tuple[object, ...]:
    """A new run's values, in every store's INSERT order: id, task_id, family,
    partition, fingerprint, the changing columns (state to lease_expires), created,
    updated, generation, failures, finished."""
    return (
        run.id, run.task_id, run.family, run.partition, run.fingerprint,
        *_changing(run, moment), moment(run.created), moment(run.updated), run.generation,
        run.failures, None if run.finished is None else moment(run.finished),
    )


def update_values(new: Run, old: Run, moment: Moment) -> tuple[object, ...]:
    """An update's values, in every store's UPDATE order: the changing columns, updated,
    generation, failures, finished, started (stamped when a generation begins, else
    None to keep it), then the WHERE's id and fenced attempt."""
    started = moment(new.updated) if new.generation != old.generation else None
    return (
        *_changing(new, moment), moment(new.updated), new.generation, new.failures,
        None if new.finished is None else moment(new.finished), started, new.id, old.attempt,
    )


Change = Callable[[Run, datetime], Run]
"""A write to one attempt of a run, given the run as stored (already fenced on its
attempt and activity) and the store's clock."""


def _continuing(change: Change) -> Change:
    """A change that continues the attempt's work: its lease must still be live."""
    return lambda run, now: change(held(run, now), now)


def _ending(run: Run, now: datetime, **changes: Any) -> Run:
    """A final version of ``run``, its lease released."""
    return dataclasses.replace(
        run, updated=now, finished=now, lease_owner=None, lease_expires=None, **changes
    )


class StateStoreBase(abc.ABC):
    """Every StateStore method, in terms of a store's two primitives."""

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
        rerun_generation: int | None = None,
        retry: RunRetryPolicy = RETRY_AT_ONCE,
    ) -> Run:
        plan = await self._claim(ClaimRequest(
            task_id, family, partition, fingerprint, tuple(inputs), owner, lease,
            rerun_generation, retry,
        ))
        return plan.outcome()

    @abc.abstractmethod
    async def _claim(self, request: ClaimRequest) -> ClaimPlan:
        """Read the rows :func:`plan_claim` needs and commit its writes, atomically
        with respect to every other claim and write of the task; return the plan."""

    @abc.abstractmethod
    async def _update(self, run_id: str, attempt: int, change: Change) -> Run:
        """Apply ``change`` to the run if :func:`fenced` lets ``attempt`` write, in one
        transaction with the read; return the run as written."""

    async def set_job_id(self, run_id: str, attempt: int, job_id: str) -> Run:
        return await self._update(run_id, attempt, _continuing(
            lambda r, now: dataclasses.replace(r, job_id=job_id, updated=now)
        ))

    async def set_staged(self, run_id: str, attempt: int, staged: Mapping[str, str]) -> Run:
        refs = dict(staged)
        return await self._update(run_id, attempt, _continuing(
            lambda r, now: dataclasses.replace(r, staged=refs, updated=now)
        ))

    async def renew(self, run_id: str, attempt: int, lease: timedelta) -> Run:
        return await self._update(run_id, attempt, _continuing(
            lambda r, now: dataclasses.replace(r, updated=now, lease_expires=now + lease)
        ))

    async def check_fence(self, run_id: str, attempt: int) -> Run:
        """Confirm, right before an irreversible step, that this attempt still holds its
        run under a live lease; LeaseLost otherwise. Writes nothing."""
        return await self._update(run_id, attempt, _continuing(lambda r, now: r))

    async def begin_publishing(self, run_id: str, attempt: int) -> Run:
        """RUNNING → PUBLISHING: from here on the run is resumed, never restarted."""

        def begin(run: Run, now: datetime) -> Run:
            if run.state is not RunState.RUNNING:
                raise LeaseLost(f"run {run.id} is {run.state}, not running")
            return dataclasses.replace(run, state=RunState.PUBLISHING, updated=now)

        return await self._update(run_id, attempt, _continuing(begin))

    async def supersede(self, run_id: str, attempt: int, reason: str) -> Run:
        """End a run that has not begun publishing because its inputs are stale."""

        def supersede(run: Run, now: datetime) -> Run:
            if run.state is not RunState.RUNNING:
                raise LeaseLost(f"run {run.id} is {run.state}: only a running run is"
                                " superseded")
            return _ending(run, now, state=RunState.SUPERSEDED, error=reason)

        return await self._update(run_id, attempt, supersede)

    async def release(self, run_id: str, attempt: int, reason: str) -> Run:
        """Give the run up without ending it: its lease ends now, so another worker (or
        this one, later) takes it over and resumes it where it stands."""
        return await self._update(run_id, attempt, lambda r, now: dataclasses.replace(
            r, updated=now, lease_owner=None, lease_expires=now, error=reason,
        ))

    async def succeed(self, run_id: str, attempt: int, outputs: Mapping[str, str]) -> Run:
        done = dict(outputs)
        return await self._update(run_id, attempt, lambda r, now: _ending(
            r, now, state=RunState.SUCCEEDED, outputs=done, error=None
        ))

    async def fail(self, run_id: str, attempt: int, error: str) -> Run:
        return await self._update(run_id, attempt, lambda r, now: _ending(
            r, now, state=RunState.FAILED, error=error, failures=r.failures + 1
        ))


def asked_rerun_values(asked: Asked) -> tuple[str | None, str | None, int | None]:
    """The re-run columns of a kept request: all three, or none."""
    rerun = asked.rerun
    return (None, None, None) if rerun is None else (
        rerun.task_id, rerun.fingerprint, rerun.generation)


def asked_from_row(row: Sequence[Any], day: date) -> Asked:
    """A kept request from its row (id, workflow, day, replica, then the re-run's
    columns) and its day, as the store reads it."""
    asked_id, workflow, _day, replica, rerun_task, rerun_fingerprint, rerun_generation = row
    rerun = None if rerun_task is None else Rerun(rerun_task, rerun_fingerprint,
                                                  rerun_generation)
    return Asked(asked_id, workflow, day, replica, rerun)
