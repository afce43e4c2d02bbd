"""Job processes: each in a group of its own, dying with charon, stopped whole.

A job starts in a new session, so it and everything it spawns (spark-submit starts a
JVM; Beam may start workers) form one process group, signalled as one. On Linux it
starts through jobs/die_with_parent.py, which leads that group and kills it when the
charon process that started the job dies, even by SIGKILL. Elsewhere the job runs
directly, still in its own group, but does not die with charon.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc

from orchestrator.errors import JobFailed

STOP_GRACE_SECONDS = 5.0
"""How long a job has to end on SIGTERM before its group gets SIGKILL."""
# Run by its path, not imported: charon needs none of it, and its start-up is a job's.
_WRAPPER = Path(__file__).with_name("die_with_parent.py")
_LINUX = sys.platform == "linux"


async def start_process(argv: Sequence[str]) -> anyio.abc.Process:
    """The job's process, leading a new process group, its stderr merged into a stdout pipe."""
    try:
        return await anyio.open_process(
            _tied_to_this_process(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise JobFailed(f"cannot start job {argv[0]!r}: {exc}") from exc


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
    """:func:`stop_process`, then close its pipes."""
    with anyio.CancelScope(shield=True):
        await stop_process(process)
        await process.aclose()


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # every process of the group has ended
        os.killpg(pgid, signum)
