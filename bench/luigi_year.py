"""A year of Luigi's top-artists example, charon and Luigi side by side.

``Top10Artists --date-interval 2012`` requires 366 daily ``Streams`` files. Each is
timed as a whole command, on the same files (made once by `charon sample-data
--streams`, then copied afresh for every run):
  first run   nothing built yet: both aggregate the 366 files and write the top 10
  re-run      everything complete: both only check the 366 inputs and the outputs
  charon   `charon run --module jobs.luigi_top_artists Top10Artists --date-interval 2012`
           (embedded defaults: SQLite registry and state store, local storage), charon
           alone in bench/.venv-charon, as Luigi is alone in its own
  luigi    `luigi --module bench.luigi_top_artists Top10Artists --date-interval 2012
           --local-scheduler --workers 1`, Luigi from PyPI in bench/.venv-luigi
The two are timed in turns; each figure is min / median / max over --repeat runs, and
the ratio is charon's median over Luigi's.
Usage: .venv/bin/python bench/luigi_year.py [--interval 2012] [--events 1000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.luigi_venv import charon_python, luigi_python
from bench.thousand_tasks import ROOT, base_env, timed

PHASES = ("first run", "re-run")
Once = Callable[[Path, str], tuple[float, float]]


def charon_env(home: Path) -> dict[str, str]:
    return {**base_env(), "CHARON_HOME": str(home), "CHARON_LOG__LEVEL": "warning",
            "PYTHONPATH": str(ROOT)}


def charon_command() -> str:
    return str(Path(charon_python()).parent / "charon")


def make_streams(interval: str, events: int, into: Path) -> Path:
    """The interval's stream files, once; every run copies them."""
    subprocess.run([charon_command(), "sample-data", "--streams", "--date-interval", interval,
                    "--events", str(events)], env=charon_env(into), cwd=ROOT,
                   capture_output=True, check=True)
    return into / "storage" / "data"


def charon_once(streams: Path, interval: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        shutil.copytree(streams, Path(home) / "storage" / "data")
        argv = [charon_command(), "run", "--module", "jobs.luigi_top_artists", "Top10Artists",
                "--date-interval", interval]
        env = charon_env(Path(home))
        return timed(argv, env, ROOT), timed(argv, env, ROOT)


def luigi_once(python: str, streams: Path, interval: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(streams, Path(work) / "data")
        env = {**base_env(), "PYTHONPATH": str(ROOT),
               "LUIGI_CONFIG_PATH": str(Path(work) / "none.cfg")}
        argv = [python, "-m", "luigi", "--module", "bench.luigi_top_artists", "Top10Artists",
                "--date-interval", interval, "--local-scheduler", "--workers", "1",
                "--log-level", "WARNING"]
        first = timed(argv, env, Path(work))
        if not (Path(work) / "data" / f"top_artists_{interval}.tsv").exists():
            raise SystemExit("luigi wrote no top 10: its run failed")
        return first, timed(argv, env, Path(work))


def spread(times: list[float]) -> str:
    return f"{min(times):.3f} / {statistics.median(times):.3f} / {max(times):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", default="2012")
    parser.add_argument("--events", type=int, default=1000, help="streams a day")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    python = luigi_python()
    version = subprocess.run([python, "-c", "import luigi; print(luigi.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as template:
        streams = make_streams(args.interval, args.events, Path(template))
        runners: dict[str, Once] = {
            "charon": charon_once,
            f"luigi {version}": lambda data, interval: luigi_once(python, data, interval),
        }
        for once in runners.values():  # untimed: fills the bytecode caches
            once(streams, args.interval)
        times: dict[str, dict[str, list[float]]] = {
            name: {phase: [] for phase in PHASES} for name in runners
        }
        for _ in range(args.repeat):
            for name, once in runners.items():
                for phase, elapsed in zip(PHASES, once(streams, args.interval), strict=True):
                    times[name][phase].append(elapsed)
    print(f"Top10Artists --date-interval {args.interval}, {args.events} streams a day, "
          f"{args.repeat} runs each; seconds, min / median / max")
    print(f"{'':<14}{'first run':>26}{'re-run':>26}")
    for name, phases in times.items():
        print(f"{name:<14}" + "".join(f"{spread(phases[p]):>26}" for p in PHASES))
    charon, luigi = times["charon"], times[f"luigi {version}"]
    for phase in PHASES:
        ratio = statistics.median(charon[phase]) / statistics.median(luigi[phase])
        print(f"{phase}: charon / luigi = {ratio:.2f}x (medians)")
    print(f"reproduce: .venv/bin/python bench/luigi_year.py --interval {args.interval} "
          f"--events {args.events} --repeat {args.repeat}")


if __name__ == "__main__":
    main()
