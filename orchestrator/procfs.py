"""What Linux's /proc says of a process: whether it still runs, and which one it is.

Reading /proc does not block: the kernel makes its files up on the spot, so these are
called from the event loop as cheaply as a dict lookup. Elsewhere than on Linux every
answer is None: nothing is known.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

DEAD_STATES = frozenset({"Z", "X"})
"""Zombie, dead: the process has ended; only its exit status waits for its parent."""


@dataclass(frozen=True)
class ProcessStat:
    state: str
    group: int
    start_time: int
    """Clock ticks after boot: tells a process from a later one given the same pid."""

    @property
    def ended(self) -> bool:
        return self.state in DEAD_STATES


def stat(pid: int) -> ProcessStat | None:
    """What /proc/<pid>/stat says of a process; None when there is no such process."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError, NotADirectoryError):
        return None
    # Field 2, the command's name, is in parentheses and may hold spaces and
    # parentheses: count the fields from the last ')'. The rest start at field 3.
    fields = data[data.rindex(b")") + 2:].split()
    return ProcessStat(state=fields[0].decode(), group=int(fields[2]),
                       start_time=int(fields[19]))


@dataclass(frozen=True)
class Machine:
    """The running kernel (its boot) and the pid namespace this process sees: two
    processes that see the same machine mean the same process by the same pid."""

    boot: str
    pid_namespace: int

    def __str__(self) -> str:
        return f"{self.boot}.{self.pid_namespace}"


@functools.cache  # neither changes while the process lives
def this_machine() -> Machine | None:
    """The machine this process sees; None where /proc does not tell it (not Linux,
    or a /proc mounted for another pid namespace than this process's)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    # The first 12 digits of a random 128-bit boot id tell two boots apart as well.
    return Machine(boot.replace("-", "")[:12], namespace)
