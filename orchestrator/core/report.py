"""What an evaluation found for each task, and the exit code it means."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from orchestrator.model import Run


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
        return [o.detail for o in self.outcomes.values() if o.status is Status.MISSING]

    @property
    def exit_code(self) -> int:
        """0 done or already complete, 20 inputs missing, 1 failed (Luigi's convention)."""
        if self.outcomes[self.root].status.ok:
            return 0
        if self.missing and not any(
            o.status in (Status.FAILED, Status.ERROR) for o in self.outcomes.values()
        ):
            return 20
        return 1
