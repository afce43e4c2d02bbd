"""A long-running job for tests/integration/test_job_processes.py.

``python tests/support/job_child.py <directory> [--ignore-sigterm]`` starts a grandchild (a
plain subprocess, tied to nothing: it dies only if something kills it), writes
``<directory>/pids`` (its pid, its process group, the grandchild's pid) once both
run, then appends a line to ``<directory>/heartbeat`` every 50 ms until killed.
With --ignore-sigterm neither it nor the grandchild ends on SIGTERM.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HEARTBEAT_SECONDS = 0.05


def main(directory: Path, *, ignore_sigterm: bool) -> None:
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    pids = directory / "pids"
    pids.with_suffix(".tmp").write_text(f"{os.getpid()} {os.getpgid(0)} {grandchild.pid}\n")
    pids.with_suffix(".tmp").replace(pids)
    with (directory / "heartbeat").open("a") as heartbeat:
        while True:
            heartbeat.write(f"{time.time()}\n")
            heartbeat.flush()
            time.sleep(HEARTBEAT_SECONDS)


if __name__ == "__main__":
    main(Path(sys.argv[1]), ignore_sigterm="--ignore-sigterm" in sys.argv[2:])
