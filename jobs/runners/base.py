"""The runner port: what launches a job and follows it to its end."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

DATAFLOW_JOB = re.compile(r"projects/([^/]+)/locations/([^/]+)/jobs/([^/]+)")
"""A Dataflow job's full name, as the Dataflow runner records it as the run's job id."""


def dataflow_console_url(project: str, region: str, job_id: str) -> str:
    return f"https://console.cloud.google.com/dataflow/jobs/{region}/{job_id}?project={project}"


def job_page(job_id: str) -> str | None:
    """Where a person follows the job the id names: the Google Cloud console for a
    Dataflow job; None for a job with no page (a local process)."""
    if match := DATAFLOW_JOB.fullmatch(job_id):
        return dataflow_console_url(match[1], match[2], match[3])
    return None


class JobRunner(Protocol):
    """Runs one job to completion: a subprocess here, a Dataflow job in the cloud."""

    finds_jobs_by_name: bool
    """Whether :meth:`run` attaches to a live job of the same name instead of starting a
    second one; a run whose job id was never recorded is then relaunched to the same
    places, else its staging is discarded and it starts afresh."""

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        """Start the job and await ``on_started(job_id)`` before waiting on it.

        ``job_name`` is deterministic per (task, partition, fingerprint): a runner that
        can look jobs up by name attaches to a live job of that name instead of
        submitting a second one. Raise JobFailed when the job fails.
        """

    async def reattach(self, job_id: str) -> None:
        """Wait for a job an earlier process started and recorded.

        Raise JobLost when it cannot be followed (the engine then launches anew),
        JobFailed when it failed.
        """

    async def cancel(self, job_id: str) -> None:
        """Ask for the job to stop; a job already finished is left alone."""
