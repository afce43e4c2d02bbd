"""Run a job that dies, with everything it started, when the process that started it dies.

    python -I -S die_with_parent.py <parent pid> -- <command> [<argument>...]

Linux only. jobs.runners.processes starts every job through this script, in a session of its
own, because anyio.open_process has no preexec_fn: the parent-death signal
(prctl PR_SET_PDEATHSIG) has to be asked for by the started process itself.

The script stays while the job runs, as the leader of the job's process group, with
the job as its child. A parent-death signal alone would not do: it reaches one
process, and a job's own children (the JVM of spark-submit, Beam's workers) would
outlive it. So:

- when the parent dies, even by SIGKILL, the kernel sends this process SIGHUP, and it
  SIGKILLs its whole group: itself, the job, and whatever the job started (short of
  what left the group on purpose, with setsid or setpgid);
- the job gets SIGKILL should this process die on its own (the signal survives
  execve for commands that are not setuid);
- SIGTERM, which charon sends the group to stop a job, is ignored here: the job
  decides how to end, and this process ends as the job did, with its exit code or
  by its signal.

The kernel sends the parent-death signal when the *thread* that forked the process
exits: charon starts jobs from its event loop's thread (asyncio forks there), which
lives as long as the charon process.

It imports nothing of charon and little of the standard library: it runs once per job,
and its start-up is part of the job's.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NoReturn

PARENT_GONE = 75
"""Exit code when the parent died before the job could be tied to it: nothing ran."""
CANNOT_EXECUTE = 127
"""Exit code when the command cannot be executed, as a shell says it."""
USAGE = 64

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_OWNER_DIED = signal.SIGHUP
# Python starts with these ignored, and an ignored signal stays ignored across execve;
# the job gets their default action, as subprocess gives it.
_PYTHON_IGNORES = (signal.SIGPIPE, signal.SIGXFSZ)


def main(args: list[str]) -> int:
    if len(args) < 3 or not args[0].isdigit() or args[1] != "--":
        print("usage: die_with_parent.py <parent pid> -- <command> [<argument>...]",
              file=sys.stderr)
        return USAGE
    parent, command = int(args[0]), args[2:]
    signal.signal(_OWNER_DIED, _kill_group)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if not _die_with(parent, _OWNER_DIED):
        return PARENT_GONE
    supervisor = os.getpid()
    job = os.fork()
    if job == 0:
        _exec(command, supervisor=supervisor)
    return _exit_code(job)


def _die_with(parent: int, signum: int) -> bool:
    """Get ``signum`` when ``parent`` dies; False if it is no longer this one's parent."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # Asked for after the fork: a parent that died before it would never send it.
    return os.getppid() == parent


def _kill_group(signum: int, frame: object) -> None:
    os.killpg(0, signal.SIGKILL)


def _exec(command: list[str], *, supervisor: int) -> NoReturn:
    """In the forked child: become the job."""
    try:
        for signum in (signal.SIGTERM, *_PYTHON_IGNORES):
            signal.signal(signum, signal.SIG_DFL)
        if not _die_with(supervisor, signal.SIGKILL):
            os._exit(PARENT_GONE)
        # The job's own argument list, as given: no shell.
        os.execvp(command[0], command)  # noqa: S606
    except OSError as exc:
        print(f"cannot start job {command[0]!r}: {exc}", file=sys.stderr, flush=True)
    finally:
        # Never return into the supervisor's code, whatever went wrong.
        os._exit(CANNOT_EXECUTE)


def _exit_code(job: int) -> int:
    """The job's exit code; a job killed by a signal has this process killed by it too."""
    _, status = os.waitpid(job, 0)
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        if -code != signal.SIGKILL:  # whose action cannot be set, and is to end a process
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
        return 128 - code  # a signal whose default is not to end a process: as a shell says
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
