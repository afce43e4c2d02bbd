"""Job processes: each in a group of its own, dying with charon, named exactly, stopped whole.

A job starts in a new session, so it and everything it spawns (spark-submit starts a
JVM; Beam may start workers) form one process group, signalled as one. On Linux it
starts through jobs/runners/die_with_parent.py, which leads that group and kills it when the
charon process that started the job dies, even by SIGKILL. Elsewhere the job runs
directly, still in its own group, but does not die with charon.

A local job's id names its group leader exactly: host, pid, and the process's start
time, which tells a pid reused since from the job's own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from orchestrator import procfs
from orchestrator.errors import JobFailed
from orchestrator.log import get_logger

STOP_GRACE_SECONDS = 5.0
"""How long a job has to end on SIGTERM before its group gets SIGKILL."""
GONE_TIMEOUT_SECONDS = 10.0
"""How long a group of another process may take to die once SIGKILLed."""
_POLL_SECONDS = 0.05
# Run by its path, not imported: charon needs none of it, and its start-up is a job's.
_WRAPPER = Path(__file__).with_name("die_with_parent.py")
_LINUX = sys.platform == "linux"


@dataclass(frozen=True)
class LocalJob:
    """A job process on one machine, named as its id: ``local:<host>:<pid>:<start time>``.

    The start time (field 22 of /proc/<pid>/stat, clock ticks after boot) tells the
    job's process from a later one that got the same pid.
    """

    host: str
    pid: int
    start_time: int

    def __str__(self) -> str:
        return f"local:{self.host}:{self.pid}:{self.start_time}"

    @classmethod
    def parse(cls, job_id: str) -> LocalJob | None:
        """The job the id names; None for an id that names none exactly, such as the
        ``local-<pid>`` of earlier versions."""
        parts = job_id.split(":")
        if len(parts) != 4 or parts[0] != "local" or not parts[1]:
            return None
        _, host, pid, start_time = parts
        if not (pid.isdigit() and start_time.isdigit()):
            return None
        return cls(host, int(pid), int(start_time))

    @classmethod
    def started(cls, process: anyio.abc.Process) -> LocalJob:
        """The job of a process just started here (not yet reaped, so still in /proc)."""
        stat = procfs.stat(process.pid)
        # Where there is no /proc, 0 stands for the start time: such a job is never
        # stopped by its id, only by the process that started it.
        return cls(socket.gethostname(), process.pid, stat.start_time if stat else 0)

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()


async def start_process(argv: Sequence[str]) -> anyio.abc.Process:
    """The job's process, leading a new process group, its stderr merged into a stdout pipe.

    Shielded from cancellation: the process is forked before the first wait inside
    (for its pipes), and a cancellation there left it to asyncio, which kills the
    leader alone, leaving the job's own children running and its pipe open. Once it is
    returned, the caller stops the whole group whatever happens (:func:`close_process`).
    """
    try:
        with anyio.CancelScope(shield=True):
            process = await anyio.open_process(
                _tied_to_this_process(argv), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
    except OSError as exc:
        raise JobFailed(f"cannot start job {argv[0]!r}: {exc}") from exc
    return process


def _tied_to_this_process(argv: Sequence[str]) -> list[str]:
    if not _LINUX:
        return list(argv)
    # The wrapper's parent-death signal comes when the thread that forked it exits:
    # asyncio forks in the event loop's thread, which lives as long as charon.
    # -I -S: the wrapper needs no site-packages, environment or script directory.
    return [sys.executable, "-I", "-S", str(_WRAPPER), str(os.getpid()), "--", *argv]


async def stop_process(process: anyio.abc.Process) -> None:
    """Stop the group a process started here leads; return once the leader is reaped.

    SIGTERM first, SIGKILL after STOP_GRACE_SECONDS. Shielded from cancellation: a
    cancelled caller still leaves no job behind.
    """
    with anyio.CancelScope(shield=True):
        # Until asyncio reaps the leader (and sets returncode) the group keeps its
        # number: the signal cannot reach another group that took the number since.
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGTERM)
            with anyio.move_on_after(STOP_GRACE_SECONDS):
                await process.wait()
        if process.returncode is None:
            _signal_group(process.pid, signal.SIGKILL)
            # A SIGKILLed process ends; asyncio reaps it, being its parent.
            await process.wait()


async def close_process(process: anyio.abc.Process) -> None:
    """:func:`stop_process`, then what the job left running in its group, then close its
    pipes."""
    with anyio.CancelScope(shield=True):
        await stop_process(process)
        await _stop_leftovers(process.pid)
        await process.aclose()


async def _stop_leftovers(pgid: int) -> None:
    """Stop what a job started and left running in its group once it exited (or ignored
    the SIGTERM that ended it): one still writing where the job wrote would change its
    output after it was checked and published. A live member keeps the group's number
    taken, as the leader does, so the signals reach no other group; what left the group
    on purpose (setsid) is beyond reach, as it is of the parent-death signal."""
    try:
        os.killpg(pgid, 0)  # the common case, at the price of one call: nobody is left
    except ProcessLookupError:
        return
    if not await _group_running(pgid):
        return
    log = get_logger("charon.job").bind(group=pgid)
    log.warning("the job left processes running; stopping them")
    try:
        await _stop_group(pgid, f"what job group {pgid} left", grace=STOP_GRACE_SECONDS)
    except JobFailed:
        # SIGKILLed, they end once their system call does (a hung NFS read); the run's
        # own outcome, or its cancellation, stays what it was.
        log.exception("the job's leftover processes outlive SIGKILL")


async def stop_job(job: LocalJob, *, grace: float) -> bool:
    """Stop the group of a job another process started on this machine, and wait until
    it is gone; False, and nothing signalled, when the job is not running any more.

    SIGKILL after ``grace`` seconds (at once if 0). Its processes count as gone once
    they are zombies: a parent that is stopped reaps none. Raise JobFailed when the
    group outlives SIGKILL by GONE_TIMEOUT_SECONDS.
    """
    stat = procfs.stat(job.pid)
    # While its leader is there, even as a zombie, no other group can take its number.
    if stat is None or stat.start_time != job.start_time or not await _group_running(job.pid):
        return False
    await _stop_group(job.pid, f"job {job}", grace=grace)
    return True


async def _stop_group(pgid: int, what: str, *, grace: float) -> None:
    """SIGTERM, SIGKILL after ``grace`` seconds (at once if 0), until no process of the
    group runs; JobFailed when it outlives SIGKILL by GONE_TIMEOUT_SECONDS."""
    if grace > 0:
        _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await _until_gone(pgid)
            return
        # Still running: the group still holds its number.
    _signal_group(pgid, signal.SIGKILL)
    with anyio.move_on_after(GONE_TIMEOUT_SECONDS):
        await _until_gone(pgid)
        return
    raise JobFailed(f"{what} still runs {GONE_TIMEOUT_SECONDS:g} s after SIGKILL")


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # every process of the group has ended
        os.killpg(pgid, signum)


async def _until_gone(pgid: int) -> None:
    # Polled: /proc tells of another process's group only when asked; nothing wakes a waiter.
    while await _group_running(pgid):  # noqa: ASYNC110
        await anyio.sleep(_POLL_SECONDS)


async def _group_running(pgid: int) -> bool:
    return await anyio.to_thread.run_sync(_any_running_in, pgid)


def _any_running_in(pgid: int) -> bool:
    """Whether a process of the group has not ended (reads all of /proc)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = procfs.stat(int(entry))
            if stat is not None and stat.group == pgid and not stat.ended:
                return True
    return False
