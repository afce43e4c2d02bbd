"""What an evaluation found for each task, and the exit code it means."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.model import Run, RunState
from orchestrator.tasks.task import Task


class ExitCode(enum.IntEnum):
    """The ``charon`` command's exit codes, Luigi's convention."""

    OK = 0  # done or already complete
    FAILED = 1
    USAGE = 2  # a command line, parameter value or task definition is invalid
    MISSING = 20  # inputs are missing, nothing failed


class Status(enum.StrEnum):
    DONE = "done"  # ran now and published
    COMPLETE = "complete"  # outputs already existed for the current fingerprint
    AVAILABLE = "available"  # an external input that is there
    MISSING = "missing"  # an external input that is not there yet
    BLOCKED = "blocked"  # a dependency is missing or failed
    WOULD_RUN = "would run"  # a dry run found everything it needs
    WAITING = "waiting"  # another worker holds the run, its retry is not due, or shutting down
    SUPERSEDED = "superseded"  # its inputs changed before it published: run again for them
    ERROR = "error"  # a store, registry or warehouse failed: evaluated again later
    FAILED = "failed"

    @property
    def ok(self) -> bool:
        return self in (Status.DONE, Status.COMPLETE, Status.AVAILABLE)


@dataclass(frozen=True)
class Outcome:
    task_id: str
    status: Status
    detail: str = ""
    run: Run | None = None
    published: Mapping[str, str] = field(default_factory=dict)
    held_until: datetime | None = None
    """Evaluate again after this: another worker's lease ends, or the retry is due."""
    missing: tuple[str, ...] = ()
    """The targets of a MISSING external task that are not there yet."""
    blocked_by: tuple[str, ...] = ()
    """The dependencies of a BLOCKED task that did not finish."""
    outage: bool = False
    """An ERROR a source's outage caused, which the source's guard has said already."""

    @property
    def category(self) -> Category:
        return CATEGORIES[self.status]


def complete(task_id: str, run: Run | None) -> Outcome:
    """The task is complete; ``run``, if any, is its success for the current inputs."""
    detail = "" if run is not None and run.state is RunState.SUCCEEDED else (
        "its outputs are there, written once per task (no run of charon's needed)")
    return Outcome(task_id, Status.COMPLETE, detail, run=run)


def not_claiming(task_id: str) -> Outcome:
    return Outcome(task_id, Status.WAITING,
                   "not started: this process is shutting down and claims no new runs")


class Category(enum.StrEnum):
    """What became of a task, in the words of Luigi's execution summary: each task is in
    exactly one."""

    RAN = "ran successfully"
    COMPLETE = "complete ones were encountered"
    FAILED = "failed"
    SCHEDULING_ERROR = "failed scheduling"
    """Its completeness could not be checked: a store or source failed (Luigi's complete()
    raising)."""
    MISSING = "were missing external dependencies"
    RUN_BY_OTHER_WORKER = "were being run by another worker"
    BLOCKED = "were blocked by their dependencies"
    NOT_RUN = "were not run"
    """Superseded by newer inputs, a dry run, or a shutdown: it runs next time."""


CATEGORIES = {
    Status.DONE: Category.RAN,
    Status.COMPLETE: Category.COMPLETE,
    Status.AVAILABLE: Category.COMPLETE,
    Status.FAILED: Category.FAILED,
    Status.ERROR: Category.SCHEDULING_ERROR,
    Status.MISSING: Category.MISSING,
    Status.WAITING: Category.RUN_BY_OTHER_WORKER,
    Status.BLOCKED: Category.BLOCKED,
    Status.SUPERSEDED: Category.NOT_RUN,
    Status.WOULD_RUN: Category.NOT_RUN,
}


@dataclass(frozen=True)
class RetCodes:
    """The exit code of each way a run can fall short (Luigi's ``--retcode-*``); the
    defaults are charon's own codes."""

    task_failed: int = ExitCode.FAILED
    scheduling_error: int = ExitCode.FAILED
    missing_data: int = ExitCode.MISSING
    already_running: int = ExitCode.FAILED
    not_run: int = ExitCode.FAILED

    def exit_code(self, categories: set[Category], root_ok: bool) -> int:
        """The code of the most serious category present, in this order: a failure, a
        scheduling error, missing data, work held by another worker; ``not_run`` when the
        root is not complete for any other reason; 0 when it is and nothing fell short.

        Luigi takes the largest code instead; an order keeps charon's default codes
        meaningful (a failure is 1 even when data is missing too, whose code is 20).
        """
        for category, code in (
            (Category.FAILED, self.task_failed),
            (Category.SCHEDULING_ERROR, self.scheduling_error),
            (Category.MISSING, self.missing_data),
            (Category.RUN_BY_OTHER_WORKER, self.already_running),
        ):
            if category in categories:
                return code
        return ExitCode.OK if root_ok else self.not_run


@dataclass(frozen=True)
class Report:
    root: str
    outcomes: Mapping[str, Outcome]
    tasks: Mapping[str, Task] = field(default_factory=dict)
    """Each task evaluated, by id (its family and parameters, for the summary)."""

    @property
    def held_until(self) -> datetime | None:
        """The earliest time one of its runs may be taken over or retried."""
        return min((o.held_until for o in self.outcomes.values() if o.held_until), default=None)

    @property
    def errors(self) -> list[str]:
        """What could not be evaluated because a store or source failed."""
        return [o.detail for o in self.outcomes.values() if o.status is Status.ERROR]

    @property
    def outages_only(self) -> bool:
        """Whether every error it has is a source's outage (said by its guard already)."""
        return all(o.outage for o in self.outcomes.values() if o.status is Status.ERROR)

    @property
    def missing(self) -> list[str]:
        """Each external task whose inputs are not there yet, with those inputs."""
        return [f"{o.task_id}: {', '.join(o.missing)}" for o in self.outcomes.values()
                if o.status is Status.MISSING]

    @property
    def exit_code(self) -> int:
        return self.exit_code_with(RetCodes())

    def exit_code_with(self, codes: RetCodes) -> int:
        return codes.exit_code({o.category for o in self.outcomes.values()},
                               self.outcomes[self.root].status.ok)
