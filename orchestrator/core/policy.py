"""How one evaluation may act: limits, retries, re-runs, and what it tells its caller."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

import anyio

from orchestrator.model import RETRY_AT_ONCE, Rerun, Run, RunRetryPolicy
from orchestrator.tasks.task import Task

NO_RERUNS: Mapping[str, Rerun] = MappingProxyType({})


@dataclass(frozen=True)
class Policy:
    """How one evaluation may act: the daemon sets one per workflow."""

    limiter: anyio.CapacityLimiter | None = None
    """Held, besides the engine's global limit, while a run of this evaluation executes."""
    rerun_late_inputs: bool = True
    """False: a task that succeeded once ignores later input revisions."""
    dry_run: bool = False
    """Stop before claiming: report what would run and what it would consume."""
    retry: RunRetryPolicy = RETRY_AT_ONCE
    """When a failed run is tried again; by default (a user's own run) at once."""
    rerun: Mapping[str, Rerun] = field(default_factory=lambda: NO_RERUNS)
    """Runs (by task id) run again even though their outputs are up to date: a user's
    re-runs."""

    def forces(self, task_id: str, run: Run | None) -> bool:
        """Whether a user's re-run asks ``run`` (the task's run of its current inputs)
        to run again: only while it is the run, and the generation, the user saw."""
        rerun = self.rerun.get(task_id)
        return rerun is not None and run is not None and (
            rerun.fingerprint, rerun.generation) == (run.fingerprint, run.generation)


class Hooks(Protocol):
    """What one evaluation tells its caller as it goes (the daemon: about one day).

    Given to an evaluation, a ready task that finds no place free (under the policy's
    limit or the engine's) does not wait for one: the evaluation ends, the task
    *waiting*, and the caller evaluates it again once a place comes free (its line,
    the engine's ``share_places``): a backlog then holds none of the evaluators every
    workflow shares. They are an evaluation's, not a policy's: a policy is a
    workflow's, and copying it for each evaluation was a twelfth of a daemon's start-up
    sweep."""

    def launched(self, task: Task) -> None:
        """A run of this evaluation launches (the daemon times launches so)."""

    def ready(self, task: Task) -> None:
        """``task`` has all its inputs but must wait for a place under the limits (the
        daemon's grid shows it *ready*)."""

    def no_place(self, task: Task) -> None:
        """``task`` found no place free; the evaluation ends."""


USER_RUN = Policy()
"""A user's own run (``charon run``): no limit of its own, late inputs run again, a
failed run retried at once."""
