"""Job launchers: the golden path's ScioJobTask command line, and its subprocess."""

from __future__ import annotations

import collections
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

import anyio
import anyio.abc
import structlog
from anyio.streams.text import TextReceiveStream

from jobs.runners.processes import (
    STOP_GRACE_SECONDS,
    LocalJob,
    close_process,
    start_process,
    stop_job,
    stop_process,
)
from orchestrator.config import BeamSettings
from orchestrator.errors import JobFailed, JobLost, UsageError
from orchestrator.model import InputRevision
from orchestrator.tasks.task import BeamJobTask

# (task attribute / beam setting, command-line flag), in the golden-path tutorial's order.
DATAFLOW_OPTIONS = (
    ("project", "--project"),
    ("region", "--region"),
    ("staging_location", "--stagingLocation"),
    ("temp_location", "--tempLocation"),
    ("autoscaling_algorithm", "--autoscalingAlgorithm"),
    ("max_num_workers", "--maxNumWorkers"),
)
JOB_NAME_FLAG = "--jobName="
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
LOG_TAIL = 20


def job_name(task_family: str, partition: str, fingerprint: str) -> str:
    """The job's name, the same for every attempt at one (task, partition, fingerprint).

    Dataflow job names are lowercase letters, digits and hyphens, starting with a letter.
    """
    raw = f"charon-{task_family}-{partition}-{fingerprint[:12]}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")[:1023]


def beam_command(
    task: BeamJobTask,
    *,
    inputs: Mapping[str, InputRevision],
    outputs: Mapping[str, str],
    beam: BeamSettings,
    job_options: Sequence[str] = (),
    job_name: str | None = None,
) -> list[str]:
    """The job's argument list.

    Runner and Dataflow options first (with ``job_name``, ``--jobName`` last among them),
    then one ``--<key>=<ref>`` per requires() key and per output() key in declaration
    order, then ``args()``.
    """
    python = beam.python or sys.executable
    argv = [python, "-m", task.pipeline, f"--runner={beam.runner}"]
    if beam.runner == "DataflowRunner":
        for attribute, flag in DATAFLOW_OPTIONS:
            value = getattr(task, attribute) or getattr(beam, attribute)
            if value:
                argv.append(f"{flag}={value}")
        if job_name:
            argv.append(f"{JOB_NAME_FLAG}{job_name}")
    argv.append("--blocking")
    argv.extend(job_options)
    for key, value in [*((k, i.ref) for k, i in inputs.items()), *outputs.items()]:
        if not _KEY.match(key):
            raise UsageError(
                f"{task.task_family}: key {key!r} cannot be a job argument; "
                "requires() and output() of a job task must be dicts keyed by argument names"
            )
        argv.append(f"--{key}={value}")
    argv.extend(task.args())
    return argv


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
        if process := self._processes.get(job_id):
            # The task awaiting run() sees the job end, and reaps it.
            await stop_process(process)
            return
        job = LocalJob.parse(job_id)
        if job is not None and job.here:
            await stop_job(job, grace=STOP_GRACE_SECONDS)
            return
        # Failing the run fences its owner out, and the owner stops the job itself.
        structlog.get_logger("charon.job").warning(
            "the job runs where it cannot be stopped from here; its owner stops it",
            job_id=job_id)

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        log = structlog.get_logger("charon.job")
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
    """Copy the job's output into the log line by line until it closes, keeping a tail."""
    log = structlog.get_logger("charon.job")
    assert process.stdout is not None  # start_process asks for a pipe
    async for line in _lines(TextReceiveStream(process.stdout, errors="replace")):
        tail.append(line)
        log.info("job log", line=line)
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
