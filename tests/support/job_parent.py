"""A charon process for tests/integration/test_job_processes.py: it runs one job.

``python -m tests.support.job_parent <job argument>...`` runs ``python tests/support/job_child.py
<job argument>...`` through SubprocessJobRunner, prints the job's id on stdout once it
is recorded, and waits for the job. Its log goes to stderr.
"""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import structlog

from jobs.runners.beam import SubprocessJobRunner

CHILD = Path(__file__).with_name("job_child.py")


async def main(args: list[str]) -> None:
    async def started(job_id: str) -> None:
        print(job_id, flush=True)

    await SubprocessJobRunner().run([sys.executable, str(CHILD), *args], job_name="test-job",
                                    on_started=started)


if __name__ == "__main__":
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    anyio.run(main, sys.argv[1:])
