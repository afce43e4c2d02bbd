"""The local job launcher: runs a job's command line (orchestrator.tasks.commands) as a
subprocess, where the Beam runner runs the pipeline in process, and spark-submit.

Every command builds this runner, and most run no job (every in-process task, every
re-run that finds its outputs complete): the process machinery (jobs.runners.processes,
anyio's text streams), a tenth of a command's start-up, is imported when a job runs.
"""

from __future__ import annotations

import collections
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import anyio

from orchestrator.errors import JobFailed, JobLost
from orchestrator.log import get_logger, job_output

if TYPE_CHECKING:
    import anyio.abc
    from anyio.streams.text import TextReceiveStream

LOG_TAIL = 20
LOG_DRAIN_SECONDS = 2.0
"""How long a job's output is still read once the job has exited."""
MAX_JOB_LINE = 16 * 1024
"""Characters of one line of a job's output that reach the log; the rest is cut."""
LINE_BREAKS = re.compile(r"[\r\n]")


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
            returncode = await exit_code(process, tail)
        finally:
            # Cancelled (lease lost, shutting down) or failed: the group goes first.
            await close_process(process)
            del self._processes[job_id]
        if returncode != 0:
            raise JobFailed(f"job exited with code {returncode}; {log_tail(tail)}")
        log.info("job finished", returncode=returncode)


async def exit_code(
    process: anyio.abc.Process,
    tail: collections.deque[str],
    on_line: Callable[[str], None] | None = None,
) -> int:
    """The job's exit code, its output streamed into the log meanwhile. Once it has
    exited, what its pipe still holds is read for up to LOG_DRAIN_SECONDS, no longer: a
    process it started may hold the pipe open for good (a run waited on such a one, its
    job long done), and the caller stops what is left of the job's group."""
    read = anyio.Event()

    async def reading() -> None:
        await stream_log(process, tail, on_line)
        read.set()

    async with anyio.create_task_group() as group:
        group.start_soon(reading)
        returncode = await process.wait()
        with anyio.move_on_after(LOG_DRAIN_SECONDS):
            await read.wait()
        group.cancel_scope.cancel()
    return returncode


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
    """The job's lines, a carriage return ending one too (a progress bar's updates, each
    of which a terminal shows in turn), blank ones left out."""
    line = _Line()
    async for chunk in chunks:
        *ends, rest = LINE_BREAKS.split(chunk)
        for piece in ends:
            if shown := line.end(piece):
                yield shown
        line.add(rest)
    if shown := line.end(""):
        yield shown


class _Line:
    """A line of a job's output as its pieces arrive, at most MAX_JOB_LINE characters of
    it kept: a job writing without line breaks (a binary dump, a progress bar that only
    returns its carriage) was held whole in the daemon's memory, and split again at each
    chunk, so its time grew with the square of the line's length, on the event loop."""

    def __init__(self) -> None:
        self._text, self._cut = "", False

    def add(self, piece: str) -> None:
        if not self._cut:
            self._text += piece
            if len(self._text) > MAX_JOB_LINE:
                self._text, self._cut = self._text[:MAX_JOB_LINE], True

    def end(self, piece: str) -> str:
        """The line, ended by a break after ``piece``: "" if blank."""
        self.add(piece)
        shown = self._text.rstrip() + (f" [cut at {MAX_JOB_LINE} characters]" if self._cut
                                       else "")
        self._text, self._cut = "", False
        return shown.strip() and shown
