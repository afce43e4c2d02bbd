"""Real Luigi from PyPI, and charon alone, each in a venv of its own, made on first use.

The benchmarks and the side-by-side tests compare charon with this Luigi; it never
shares charon's venv, so neither's dependencies bend the other's. The timings of whole
commands run charon from its own venv too (bench/.venv-charon: charon and its
dependencies, no extras), as a user installs it: the development venv also holds the
test tools, whose `rich` structlog imports at every start when it is there.
Made under a file lock, so tests and benchmarks started together build each once.
"""

from __future__ import annotations

import fcntl
import hashlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
LUIGI_VENV = HERE / ".venv-luigi"
CHARON_VENV = HERE / ".venv-charon"
# The Luigi the comparisons were written against; psycopg2 for its PostgreSQL
# CopyToTable and marker table (luigi.contrib.postgres).
REQUIREMENTS = ("luigi==3.8.1", "psycopg2-binary>=2.9")


def luigi_python() -> str:
    """The Luigi venv's interpreter, the venv made first if it is missing or unfinished."""
    return _venv_python(LUIGI_VENV, REQUIREMENTS, "")


def charon_python() -> str:
    """The interpreter of a venv holding this checkout of charon (editable) and nothing more,
    installed again when pyproject.toml changes (its dependencies, its `charon` script)."""
    project = (HERE.parent / "pyproject.toml").read_bytes()
    return _venv_python(CHARON_VENV, ("--editable", str(HERE.parent)),
                        hashlib.sha256(project).hexdigest()[:12])


def _venv_python(venv: Path, requirements: Sequence[str], version: str) -> str:
    python = venv / "bin" / "python"
    done = venv / f".installed{version and '-'}{version}"
    if done.exists():
        return str(python)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            print(f"installing {' '.join(requirements)} into {venv.name} ...", file=sys.stderr)
            if not python.exists():
                subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *requirements],
                           check=True)
            for stale in venv.glob(".installed*"):
                stale.unlink()
            done.touch()
    return str(python)
