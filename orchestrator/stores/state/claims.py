"""The claim plan and the fence: pure functions of the stored rows and the store's clock
(and of whether a lease's owner died on this machine, orchestrator.owners), so the
SQLite, PostgreSQL and in-memory stores cannot disagree on one."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

from orchestrator import owners
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
    new_id,
    newer_than,
)

MAX_LIST = 10_000
NEIGHBOUR_RECHECK = timedelta(seconds=10)
"""How soon a claimer refused by a live owner on its own machine is told to ask again:
that owner's death is seen at once (orchestrator.owners), not at its lease's end."""


@dataclasses.dataclass(frozen=True)
class ClaimRequest:
    task_id: str
    family: str
    partition: str
    fingerprint: str
    inputs: tuple[InputRevision, ...]
    owner: str
    lease: timedelta
    rerun_generation: int | None = None
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
    if mine.state is RunState.SUCCEEDED and mine.generation != request.rerun_generation:
        return ClaimPlan(writes, mine)
    if mine.state.active:
        if _held(mine, now):
            return ClaimPlan(writes, refusal=_held_by(mine, now))
        taken = _taken_over(mine, request, now)
        return ClaimPlan((*writes, Write(mine, taken)), taken)
    if mine.state is RunState.FAILED and (refusal := _not_yet(mine, request.retry, now)):
        return ClaimPlan(writes, refusal=refusal)
    restarted = _restarted(mine, request, now)
    return ClaimPlan((*writes, Write(mine, restarted)), restarted)


def _live(run: Run, now: datetime) -> bool:
    return run.lease_expires is not None and run.lease_expires > now


def _held(run: Run, now: datetime) -> bool:
    """Whether another claimer must leave ``run`` to its owner: its lease is live and
    its owner not known to be dead."""
    return _live(run, now) and not owners.gone(run.lease_owner)


def _held_by(run: Run, now: datetime, why: str = "") -> RunConflict:
    assert run.lease_expires is not None  # only asked of a live lease
    until = run.lease_expires
    if owners.here(run.lease_owner):
        until = min(until, now + NEIGHBOUR_RECHECK)
    return RunConflict(
        f"run {run.id} of {run.task_id} (attempt {run.attempt}) is {run.state} under a"
        f" lease held by {run.lease_owner!r} until {run.lease_expires.isoformat()}{why}",
        held_until=until,
    )


def _finish_first(other: Run, request: ClaimRequest, now: datetime) -> ClaimPlan:
    """A run of other inputs began publishing: it finishes before newer inputs run.

    Its owner finishes it while it holds the lease; once it does not the claimer
    takes it over to finish it (resumed, never restarted), then claims again.
    """
    if _held(other, now):
        return ClaimPlan(refusal=_held_by(other, now, "; newer inputs wait for its publication"))
    taken = _taken_over(other, request, now)
    return ClaimPlan((Write(other, taken),), taken)


def _first_run(request: ClaimRequest, now: datetime) -> Run:
    return Run(
        id=new_id(), task_id=request.task_id, family=request.family,
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
