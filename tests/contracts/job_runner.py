"""What every JobRunner must do; subclass and provide ``jobs``.

A backend says how to write the command of a job that succeeds, fails or lasts until
stopped, and how such a job comes to its end once its id is recorded: a local job ends
by itself; a job of a remote service (the fake Dataflow) is ended by the test.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass

import anyio
import pytest

from jobs.runners.base import JobRunner
from orchestrator.errors import JobFailed, JobLost

JOB_NAME = "charon-topartistsjob-20181031-0123456789abcdef"
TIMEOUT_SECONDS = 10


class Fate(enum.Enum):
    SUCCEEDS = "succeeds"
    FAILS = "fails"
    LASTS = "lasts"
    """Runs until something stops it."""


async def ends_by_itself(job_id: str, fate: Fate) -> None:
    """A local job's fate is in its command line."""


@dataclass(frozen=True)
class Jobs:
    runner: JobRunner
    command: Callable[[Fate], Sequence[str]]
    unknown_id: str
    """A job id naming no job this runner could follow."""
    settle: Callable[[str, Fate], Awaitable[None]] = ends_by_itself
    """Called with each job id once it is recorded, to bring the job to its fate."""


async def run(jobs: Jobs, fate: Fate, ids: list[str] | None = None) -> str:
    """Run a job of ``fate`` to its end; its id, as on_started was given it."""
    recorded = [] if ids is None else ids

    async def on_started(job_id: str) -> None:
        recorded.append(job_id)
        await jobs.settle(job_id, fate)

    with anyio.fail_after(TIMEOUT_SECONDS):
        await jobs.runner.run(jobs.command(fate), job_name=JOB_NAME, on_started=on_started)
    [job_id] = recorded
    return job_id


class JobRunnerContract:
    @pytest.fixture
    def jobs(self) -> Jobs:
        raise NotImplementedError("subclasses provide the runner under test and its jobs")

    async def test_the_run_waits_for_the_job_id_to_be_recorded(self, jobs: Jobs) -> None:
        recorded, release = anyio.Event(), anyio.Event()
        ids: list[str] = []
        returned = False

        async def on_started(job_id: str) -> None:
            ids.append(job_id)
            recorded.set()
            await release.wait()  # a slow state store
            await jobs.settle(job_id, Fate.SUCCEEDS)

        async def run_job() -> None:
            nonlocal returned
            await jobs.runner.run(jobs.command(Fate.SUCCEEDS), job_name=JOB_NAME,
                                  on_started=on_started)
            returned = True

        with anyio.fail_after(TIMEOUT_SECONDS):
            async with anyio.create_task_group() as group:
                group.start_soon(run_job)
                await recorded.wait()
                await anyio.sleep(0.1)
                assert not returned
                release.set()
        assert returned
        [job_id] = ids
        assert job_id

    async def test_every_run_gets_a_job_id_of_its_own(self, jobs: Jobs) -> None:
        first = await run(jobs, Fate.SUCCEEDS)
        second = await run(jobs, Fate.SUCCEEDS)
        assert first != second

    async def test_a_failing_job_raises_job_failed_after_its_id_is_recorded(
        self, jobs: Jobs,
    ) -> None:
        ids: list[str] = []
        with pytest.raises(JobFailed):
            await run(jobs, Fate.FAILS, ids)
        assert len(ids) == 1

    async def test_reattaching_an_unknown_job_raises_job_lost(self, jobs: Jobs) -> None:
        with anyio.fail_after(TIMEOUT_SECONDS), pytest.raises(JobLost):
            await jobs.runner.reattach(jobs.unknown_id)

    async def test_reattaching_a_succeeded_job_returns_or_raises_job_lost(
        self, jobs: Jobs,
    ) -> None:
        job_id = await run(jobs, Fate.SUCCEEDS)
        with anyio.fail_after(TIMEOUT_SECONDS), suppress(JobLost):
            await jobs.runner.reattach(job_id)

    async def test_reattaching_a_failed_job_raises(self, jobs: Jobs) -> None:
        ids: list[str] = []
        with pytest.raises(JobFailed):
            await run(jobs, Fate.FAILS, ids)
        with anyio.fail_after(TIMEOUT_SECONDS), pytest.raises((JobFailed, JobLost)):
            await jobs.runner.reattach(ids[0])

    async def test_cancelling_a_finished_job_changes_nothing(self, jobs: Jobs) -> None:
        job_id = await run(jobs, Fate.SUCCEEDS)
        with anyio.fail_after(TIMEOUT_SECONDS):
            await jobs.runner.cancel(job_id)
            with suppress(JobLost):
                await jobs.runner.reattach(job_id)  # still a success, if it can tell

    async def test_cancelling_a_running_job_fails_its_run(self, jobs: Jobs) -> None:
        ids: list[str] = []
        with anyio.fail_after(TIMEOUT_SECONDS), pytest.RaisesGroup(JobFailed):
            async with anyio.create_task_group() as group:
                group.start_soon(run, jobs, Fate.LASTS, ids)
                while not ids:
                    await anyio.sleep(0.01)
                await jobs.runner.cancel(ids[0])
