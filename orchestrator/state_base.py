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
"""

from __future__ import annotations

import abc
import dataclasses
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from orchestrator.errors import (
    CharonError,
    LeaseLost,
    RetriesExhausted,
    RunConflict,
    StaleInputs,
    StateStoreError,
    UsageError,
)
from orchestrator.model import (
    RETRY_AT_ONCE,
    InputRevision,
    Run,
    RunRetryPolicy,
    RunState,
    newer_than,
)

MAX_LIST = 10_000


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
    retry: RunRetryPolicy = RETRY_AT_ONCE

    def __post_init__(self) -> None:
        if self.lease <= timedelta(0):
            raise UsageError(f"lease must be positive, got {self.lease}")
        if not self.owner:
            raise UsageError("a claim needs a non-empty owner")


@dataclasses.dataclass(frozen=True)
class Write:
    """One row a claim writes: ``new`` replaces ``old`` (fenced on its attempt), or is
    inserted when ``old`` is None."""

    old: Run | None
    new: Run


@dataclasses.dataclass(frozen=True)
class ClaimPlan:
    """What a claim writes, in order, and then returns or raises.

    ``refusal`` is raised only after ``writes`` are committed: a claim that must wait
    for its own run's retry still supersedes a run of older inputs.
    """

    writes: tuple[Write, ...] = ()
    claimed: Run | None = None
    refusal: CharonError | None = None

    def outcome(self) -> Run:
        if self.refusal is not None:
            raise self.refusal
        assert self.claimed is not None  # plan_claim sets one of the two
        return self.claimed


def plan_claim(rows: Sequence[Run], request: ClaimRequest, now: datetime) -> ClaimPlan:
    """The claim of ``request`` against ``rows``: the task's run of the requested
    fingerprint, its active run and its latest succeeded run, as stored.

    A claim whose inputs are older than another of those runs' is refused as stale
    (StaleInputs), writing nothing: a claimer paused between its lookup and its claim
    must neither supersede the newer run nor start the older inputs again.
    """
    mine = next((r for r in rows if r.fingerprint == request.fingerprint), None)
    others = [r for r in rows if r.fingerprint != request.fingerprint]
    if newer := next((r for r in others if newer_than(r.inputs, request.inputs)), None):
        return ClaimPlan(refusal=StaleInputs(
            f"the inputs of this claim on {request.task_id} are older than those run"
            f" {newer.id} ({newer.state}) consumed: they were looked up before a newer"
            " revision came; look them up again"
        ))
    other = next((r for r in others if r.state.active), None)
    writes: list[Write] = []
    if other is not None:
        if other.state is RunState.PUBLISHING:
            return _finish_first(other, request, now)
        writes.append(Write(other, _superseded(other, request, now)))
    return _claim_mine(mine, request, now, tuple(writes))


def _claim_mine(
    mine: Run | None, request: ClaimRequest, now: datetime, writes: tuple[Write, ...]
) -> ClaimPlan:
    """The claim of the requested fingerprint's own run, after ``writes``."""
    if mine is None:
        new = _first_run(request, now)
        return ClaimPlan((*writes, Write(None, new)), new)
    if mine.state is RunState.SUCCEEDED and not request.rerun_succeeded:
        return ClaimPlan(writes, mine)
    if mine.state.active:
        if _live(mine, now):
            return ClaimPlan(writes, refusal=_held_by(mine))
        taken = _taken_over(mine, request, now)
        return ClaimPlan((*writes, Write(mine, taken)), taken)
    if mine.state is RunState.FAILED and (refusal := _not_yet(mine, request.retry, now)):
        return ClaimPlan(writes, refusal=refusal)
    restarted = _restarted(mine, request, now)
    return ClaimPlan((*writes, Write(mine, restarted)), restarted)


def _live(run: Run, now: datetime) -> bool:
    return run.lease_expires is not None and run.lease_expires > now


def _held_by(run: Run, why: str = "") -> RunConflict:
    assert run.lease_expires is not None  # only asked of a live lease
    return RunConflict(
        f"run {run.id} of {run.task_id} (attempt {run.attempt}) is {run.state} under a"
        f" lease held by {run.lease_owner!r} until {run.lease_expires.isoformat()}{why}",
        held_until=run.lease_expires,
    )


def _finish_first(other: Run, request: ClaimRequest, now: datetime) -> ClaimPlan:
    """A run of other inputs began publishing: it finishes before newer inputs run.

    Its owner finishes it while the lease is live; once the lease ran out the claimer
    takes it over to finish it (resumed, never restarted), then claims again.
    """
    if _live(other, now):
        return ClaimPlan(refusal=_held_by(other, "; newer inputs wait for its publication"))
    taken = _taken_over(other, request, now)
    return ClaimPlan((Write(other, taken),), taken)


def _first_run(request: ClaimRequest, now: datetime) -> Run:
    return Run(
        id=str(uuid.uuid4()), task_id=request.task_id, family=request.family,
        partition=request.partition, fingerprint=request.fingerprint,
        state=RunState.RUNNING, attempt=1, created=now, updated=now,
        inputs=request.inputs, lease_owner=request.owner, lease_expires=now + request.lease,
    )


def _taken_over(run: Run, request: ClaimRequest, now: datetime) -> Run:
    """The next attempt of a run whose owner lost its lease: same state, job id, staged
    outputs and generation, so it reattaches to the job or finishes the publication."""
    return dataclasses.replace(
        run, attempt=run.attempt + 1, updated=now, error=None,
        lease_owner=request.owner, lease_expires=now + request.lease,
    )


def _superseded(run: Run, request: ClaimRequest, now: datetime) -> Run:
    return dataclasses.replace(
        run, state=RunState.SUPERSEDED, updated=now, finished=now,
        lease_owner=None, lease_expires=None,
        error=f"superseded by newer inputs (fingerprint {request.fingerprint}) before it"
              " began publishing",
    )


def _restarted(run: Run, request: ClaimRequest, now: datetime) -> Run:
    """A fresh start of a finished run: the next attempt of the next generation."""
    return dataclasses.replace(
        run, state=RunState.RUNNING, attempt=run.attempt + 1, generation=run.generation + 1,
        failures=0 if run.state is RunState.SUCCEEDED else run.failures,
        updated=now, finished=None, inputs=request.inputs, outputs={}, staged={},
        job_id=None, error=None, lease_owner=request.owner, lease_expires=now + request.lease,
    )


def _not_yet(run: Run, retry: RunRetryPolicy, now: datetime) -> CharonError | None:
    retry_at = retry.retry_at(run)
    if retry_at is None:
        return RetriesExhausted(
            f"run {run.id} of {run.task_id} failed {run.failures} times, as often as its"
            f" retry policy allows; last error: {run.error}"
        )
    if retry_at > now:
        return RunConflict(
            f"run {run.id} of {run.task_id} failed {run.failures} times; the next retry is"
            f" due at {retry_at.isoformat()} (last error: {run.error})",
            held_until=retry_at,
        )
    return None


def fenced(run: Run | None, run_id: str, attempt: int) -> Run:
    """The run, if ``attempt`` is its current attempt and it is active; else LeaseLost."""
    if run is None:
        raise StateStoreError(f"no run {run_id!r}")
    if run.attempt != attempt:
        raise LeaseLost(
            f"run {run_id} is at attempt {run.attempt}; attempt {attempt} was superseded"
        )
    if not run.state.active:
        raise LeaseLost(f"run {run_id} attempt {attempt} is already {run.state}")
    return run


def held(run: Run, now: datetime) -> Run:
    """A fenced run whose lease is also still live on the store's clock."""
    if not _live(run, now):
        expired = run.lease_expires.isoformat() if run.lease_expires else "never held"
        raise LeaseLost(f"the lease of run {run.id} attempt {run.attempt} ran out ({expired})")
    return run


def check_list_limit(limit: int) -> int:
    if isinstance(limit, bool) or not 1 <= limit <= MAX_LIST:
        raise UsageError(f"limit must be between 1 and {MAX_LIST}, got {limit!r}")
    return limit


# A run's inputs, outputs and staged refs are stored as JSON text by every store.
# Most runs are written before they have outputs or staged refs, and a task without
# inputs has none ever: empty columns skip the JSON codec, a tenth of a claim's cost.
def inputs_json(inputs: Sequence[InputRevision]) -> str:
    if not inputs:
        return "[]"
    return json.dumps([[i.key, i.ref, i.revision_id, i.order] for i in inputs])


def load_inputs(text: str) -> tuple[InputRevision, ...]:
    return () if text == "[]" else tuple(InputRevision(*item) for item in json.loads(text))


def mapping_json(mapping: Mapping[str, str]) -> str:
    return json.dumps(dict(mapping)) if mapping else "{}"


def load_mapping(text: str) -> dict[str, str]:
    return {} if text == "{}" else dict(json.loads(text))


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
        rerun_succeeded: bool = False,
        retry: RunRetryPolicy = RETRY_AT_ONCE,
    ) -> Run:
        plan = await self._claim(ClaimRequest(
            task_id, family, partition, fingerprint, tuple(inputs), owner, lease,
            rerun_succeeded, retry,
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
