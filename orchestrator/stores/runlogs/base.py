"""The run-log port: each run's job output, kept where the job ran, read back by the UI.

A job's output (its stdout and stderr, line by line) also goes to charon's own log; a
run log keeps it per run so the run page can show it while the job runs. It is local
to the process that ran the job: a daemon replica serving a run another replica ran
has no log of it (the page says which worker kept it).
"""

from __future__ import annotations

import re
from typing import Protocol

RUN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a run id may be to name a log: a UUID's characters, so no path escapes."""


class RunLogs(Protocol):
    async def append(self, run_id: str, line: str) -> None:
        """Add one line to the run's log, past its bound silently; never raises: a
        log that cannot be written must not fail the job."""

    async def read(self, run_id: str, offset: int, limit: int) -> bytes | None:
        """Up to ``limit`` bytes of the run's log from ``offset``; None when no log of
        the run is kept here."""


class NoRunLogs:
    """Keeps nothing: the adapters' default when none is configured (tests that build
    their adapters by hand)."""

    async def append(self, run_id: str, line: str) -> None:
        return None

    async def read(self, run_id: str, offset: int, limit: int) -> bytes | None:
        return None

