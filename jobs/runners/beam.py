"""The local job launcher: runs a job's command line (orchestrator.tasks.commands) as a
subprocess, where the Beam runner runs the pipeline in process, and spark-submit.

Every command builds this runner, and most run no job (every in-process task, every
re-run that finds its outputs complete): the process machinery (jobs.runners.processes,
anyio's text streams), a tenth of a command's start-up, is imported when a job runs.
"""

from __future__ import annotations

import collections
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from orchestrator.errors import JobFailed, JobLost
from orchestrator.log import get_logger, job_output

if TYPE_CHECKING:
    import anyio.abc
    from anyio.streams.text import TextReceiveStream

LOG_TAIL = 20


class SubprocessJobRunner:
    """Runs a job as a child process, streaming its output into the log.

    The job runs in a process group of its own and dies with this process (see
    jobs.runners.processes). Stopping it, when its run is cancelled or its lease lost, stops
    the whole group. A job started by an earlier process cannot be followed: if it is
    still running on this machine (its owner paused past its lease) reattach() stops
    it, and the engine launches the job again.
    """

    finds_jobs_by_name = False

    def __init__(self) -> None:
        self._processes: dict[str, anyio.abc.Process] = {}

    async def reattach(self, job_id: str) -> None:
        from jobs.runners.processes import LocalJob, stop_job  # noqa: PLC0415  # see top

        job = LocalJob.parse(job_id)
        if job is None:
            raise JobLost(f"job {job_id} ran as a child of a process that has gone")
        if not job.here:
            raise JobLost(f"job {job_id} ran on {job.host}: its owner stops it when it wakes "
                          "to find its lease lost; launching again")
        if not await stop_job(job, grace=0):
            raise JobLost(f"job {job_id} is not running any more")
        raise JobLost(f"job {job_id} was still running, its owner having lost its lease: "
                      "the orphaned job was stopped; launching again")

    async def cancel(self, job_id: str) -> None:
        from jobs.runners.processes import (  # noqa: PLC0415  # see top
            STOP_GRACE_SECONDS,
            LocalJob,
            stop_job,
            stop_process,
        )

        if process := self._processes.get(job_id):
            # The task awaiting run() sees the job end, and reaps it.
            await stop_process(process)
            return
        job = LocalJob.parse(job_id)
        if job is not None and job.here:
            await stop_job(job, grace=STOP_GRACE_SECONDS)
            return
        # Failing the run fences its owner out, and the owner stops the job itself.
        get_logger("charon.job").warning(
            "the job runs where it cannot be stopped from here; its owner stops it",
            job_id=job_id)

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        from jobs.runners.processes import (  # noqa: PLC0415  # see top
            LocalJob,
            close_process,
            start_process,
        )

        log = get_logger("charon.job")
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL)
        log.info("job starting", job_name=job_name, command=" ".join(argv))
        process = await start_process(argv)
        job_id = str(LocalJob.started(process))
        self._processes[job_id] = process
        try:
            await on_started(job_id)
            await stream_log(process, tail)
            returncode = await process.wait()
        finally:
            # Cancelled (lease lost, shutting down) or failed: the group goes first.
            await close_process(process)
            del self._processes[job_id]
        if returncode != 0:
            raise JobFailed(f"job exited with code {returncode}; {log_tail(tail)}")
        log.info("job finished", returncode=returncode)


async def stream_log(
    process: anyio.abc.Process,
    tail: collections.deque[str],
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Copy the job's output into the log and the run's log line by line until it
    closes, keeping a tail."""
    from anyio.streams.text import TextReceiveStream  # noqa: PLC0415  # see top

    log = get_logger("charon.job")
    assert process.stdout is not None  # start_process asks for a pipe
    async for line in _lines(TextReceiveStream(process.stdout, errors="replace")):
        tail.append(line)
        log.info("job log", line=line)
        await job_output(line)
        if on_line is not None:
            on_line(line)


def log_tail(tail: collections.deque[str]) -> str:
    return "last output:\n" + "\n".join(tail)


async def _lines(chunks: TextReceiveStream) -> AsyncIterator[str]:
    pending = ""
    async for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split("\n")
        for line in complete:
            if line.strip():
                yield line.rstrip()
    if pending.strip():
        yield pending.rstrip()
