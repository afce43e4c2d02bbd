"""The job runner the settings ask for: a local subprocess, or a tracked Dataflow job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from jobs.launcher import SubprocessJobRunner
from orchestrator.config import Settings
from orchestrator.ports import JobRunner

DATAFLOW_RUNNER = "DataflowRunner"


@asynccontextmanager
async def open_job_runner(settings: Settings) -> AsyncIterator[JobRunner]:
    """By ``beam.runner``; the Dataflow runner's HTTP session is closed on exit."""
    if settings.beam.runner != DATAFLOW_RUNNER:
        # Every other Beam runner runs the pipeline inside the launched process.
        yield SubprocessJobRunner()
        return
    # Imported here: aiohttp and gcloud-aio were most of a local command's start-up.
    from jobs.dataflow import DataflowJobRunner  # noqa: PLC0415
    from orchestrator.gcp_http import new_session  # noqa: PLC0415

    async with new_session() as session:
        yield DataflowJobRunner.from_settings(settings, session)
