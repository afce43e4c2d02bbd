"""Real Luigi from PyPI, in a venv of its own (bench/.venv-luigi), made on first use.

The benchmarks and the side-by-side tests compare charon with this Luigi; it never
shares charon's venv, so neither's dependencies bend the other's. Made under a file
lock, so tests and benchmarks started together build it once.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

LUIGI_VENV = Path(__file__).resolve().parent / ".venv-luigi"
# The Luigi the comparisons were written against; psycopg2 for its PostgreSQL
# CopyToTable and marker table (luigi.contrib.postgres).
REQUIREMENTS = ("luigi==3.8.1", "psycopg2-binary>=2.9")


def luigi_python() -> str:
    """The venv's interpreter, the venv made first if it is missing or unfinished."""
    python = LUIGI_VENV / "bin" / "python"
    done = LUIGI_VENV / ".installed"
    if done.exists():
        return str(python)
    LUIGI_VENV.parent.mkdir(parents=True, exist_ok=True)
    with (LUIGI_VENV.parent / ".venv-luigi.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            print("installing Luigi from PyPI into bench/.venv-luigi ...", file=sys.stderr)
            subprocess.run([sys.executable, "-m", "venv", str(LUIGI_VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS],
                           check=True)
            done.touch()
    return str(python)
