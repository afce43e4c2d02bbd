"""Orchestration overhead: 1,000 ready partitions of a task whose run() does nothing.

Side by side in one run, on the same 1,000 tasks:
  charon   `charon run --module bench.noop_tasks Thousand`: the state store (a SQLite file)
           records every run durably; at the default engine.max_concurrent_runs (4) and at 64
  luigi    `luigi --module bench.luigi_tasks Thousand --local-scheduler --workers 1`, Luigi
           from PyPI installed into its own venv (bench/.venv-luigi) on first use
Each is timed as a whole command, cold, and again with 0 tasks; the overhead is the
difference, so neither interpreter's start-up is counted against the orchestration.
The two are timed in turns, and each figure is the best of --repeat runs: on a shared
machine noise only ever adds, and a median of differences moved by a tenth of a
second from one invocation to the next.
Usage: .venv/bin/python bench/thousand_tasks.py [--tasks 1000] [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.luigi_venv import luigi_python

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHARON = str(Path(sys.executable).parent / "charon")
def base_env() -> dict[str, str]:
    """This environment, with bytecode caching on: with PYTHONDONTWRITEBYTECODE set,
    every start compiles charon's modules from source again (Luigi's came compiled
    from pip), and that start-up noise swamps the tenth of a second measured here."""
    return {key: value for key, value in os.environ.items()
            if key != "PYTHONDONTWRITEBYTECODE"}


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{argv[0]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def charon_once(tasks: int, concurrency: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        env = {**base_env(), "CHARON_HOME": home, "CHARON_LOG__LEVEL": "warning",
               "PYTHONPATH": str(ROOT), "BENCH_TASKS": str(tasks),
               "CHARON_ENGINE__MAX_CONCURRENT_RUNS": str(concurrency)}
        return timed([CHARON, "run", "--module", "bench.noop_tasks", "Thousand"], env, ROOT)


def luigi_once(python: str, tasks: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**base_env(), "PYTHONPATH": str(ROOT), "BENCH_TASKS": str(tasks),
               "LUIGI_CONFIG_PATH": str(Path(tmp) / "none.cfg")}
        return timed([python, "-m", "luigi", "--module", "bench.luigi_tasks", "Thousand",
                      "--local-scheduler", "--workers", "1", "--log-level", "WARNING"], env, ROOT)


def best_of(once: Callable[[int], float], tasks: int, repeat: int) -> tuple[float, float]:
    """The best total with ``tasks`` tasks and with none, the two timed in turns."""
    once(0)  # untimed: fills the bytecode caches
    totals, startups = [], []
    for _ in range(repeat):
        totals.append(once(tasks))
        startups.append(once(0))
    return min(totals), min(startups)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    python = luigi_python()
    version = subprocess.run([python, "-c", "import luigi; print(luigi.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    runners: dict[str, Callable[[int], float]] = {
        "charon (4 at once)": lambda n: charon_once(n, 4),
        "charon (64 at once)": lambda n: charon_once(n, 64),
        f"luigi {version}": lambda n: luigi_once(python, n),
    }
    print(f"{args.tasks} no-op tasks, best of {args.repeat} cold runs each")
    print(f"{'':<22}{'total s':>9}{'start-up s':>12}{'overhead s':>12}{'per task ms':>13}")
    overheads = {}
    for name, once in runners.items():
        total, startup = best_of(once, args.tasks, args.repeat)
        overheads[name] = total - startup
        print(f"{name:<22}{total:>9.3f}{startup:>12.3f}{total - startup:>12.3f}"
              f"{(total - startup) / args.tasks * 1000:>13.3f}")
    luigi = overheads[f"luigi {version}"]
    for name in list(runners)[:2]:
        print(f"luigi overhead / {name} overhead: {luigi / overheads[name]:.1f}x")
    print(f"reproduce: .venv/bin/python bench/thousand_tasks.py --tasks {args.tasks} "
          f"--repeat {args.repeat}")


if __name__ == "__main__":
    main()
