"""Who holds a run's lease: a name that tells a claimer on the same machine whether its
process has died.

A lease's owner is a charon process, ``<host>:<pid>:<token>``, followed on Linux by
``@<boot>.<pid namespace>.<start time>``. A run whose owner is gone is taken over at
once rather than when its lease (an hour by default) runs out: a process that was
killed can write nothing more, and its jobs died with it (jobs.runners.processes).
Gone means provably so: the claimer sees the same machine (the same boot of the same
kernel, the same pid namespace) and /proc shows the owner's pid free, ended, or taken
by a later process. Any other owner, on another machine or in another container,
named otherwise, or alive but paused, keeps its lease until it runs out.
"""

from __future__ import annotations

import os
import re
import secrets
import socket

from orchestrator import procfs

_OWNER = re.compile(
    r"[^:@]*:(?P<pid>\d+):[0-9a-f]+@(?P<machine>[0-9a-f]+\.\d+)\.(?P<start_time>\d+)"
)


def lease_owner() -> str:
    """A name for this process as the owner of the leases it takes."""
    pid = os.getpid()
    name = f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"
    machine, me = procfs.this_machine(), procfs.stat(pid)
    if machine is None or me is None:
        return name
    return f"{name}@{machine}.{me.start_time}"


def here(owner: str | None) -> bool:
    """Whether ``owner`` names a process of this machine, whose death :func:`gone` sees."""
    return _of_this_machine(owner) is not None


def gone(owner: str | None) -> bool:
    """Whether ``owner`` names a process of this machine that no longer runs."""
    found = _of_this_machine(owner)
    if found is None:
        return False
    process = procfs.stat(int(found["pid"]))
    return (process is None or process.ended
            or process.start_time != int(found["start_time"]))


def _of_this_machine(owner: str | None) -> re.Match[str] | None:
    found = _OWNER.fullmatch(owner or "")
    machine = procfs.this_machine()
    if found is None or machine is None or found["machine"] != str(machine):
        return None
    return found
