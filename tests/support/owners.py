"""Lease owners that are real processes of this machine: one that has ended, one paused."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator

PRINT_OWNER = "from orchestrator.owners import lease_owner; print(lease_owner(), flush=True)"
"""Python code that prints the lease owner's name of the process running it."""


def ended_owner() -> str:
    """The lease owner's name of a charon process that has run and ended."""
    done = subprocess.run([sys.executable, "-c", PRINT_OWNER], capture_output=True,
                          text=True, check=True, timeout=60)
    return done.stdout.strip()


@contextlib.contextmanager
def paused_owner() -> Iterator[str]:
    """The lease owner's name of a charon process stopped by SIGSTOP while in the block."""
    with subprocess.Popen(
        [sys.executable, "-c", f"{PRINT_OWNER}; import time; time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    ) as process:
        try:
            assert process.stdout is not None
            owner = process.stdout.readline().strip()
            process.send_signal(signal.SIGSTOP)
            yield owner
        finally:
            process.kill()
            process.wait()
