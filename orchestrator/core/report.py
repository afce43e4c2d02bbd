"""What an evaluation found for each task, and the exit code it means."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.model import Run


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


@dataclass(frozen=True)
class Report:
    root: str
    outcomes: Mapping[str, Outcome]

    @property
    def held_until(self) -> datetime | None:
        """The earliest time one of its runs may be taken over or retried."""
        return min((o.held_until for o in self.outcomes.values() if o.held_until), default=None)

    @property
    def errors(self) -> list[str]:
        """What could not be evaluated because a store or source failed."""
        return [o.detail for o in self.outcomes.values() if o.status is Status.ERROR]

    @property
    def missing(self) -> list[str]:
        """Each external task whose inputs are not there yet, with those inputs."""
        return [f"{o.task_id}: {', '.join(o.missing)}" for o in self.outcomes.values()
                if o.status is Status.MISSING]

    @property
    def exit_code(self) -> ExitCode:
        if self.outcomes[self.root].status.ok:
            return ExitCode.OK
        if self.missing and not any(
            o.status in (Status.FAILED, Status.ERROR) for o in self.outcomes.values()
        ):
            return ExitCode.MISSING
        return ExitCode.FAILED
