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
the ratio is charon's median over Luigi's. On a busy machine a median moves by a tenth
from one run of the bench to the next; --instructions counts the instructions each
command executes instead (valgrind's callgrind, once each: load does not move them).
Usage: .venv/bin/python bench/luigi_year.py [--interval 2012] [--events 1000] [--repeat 15]
       [--instructions]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.luigi_venv import charon_python, luigi_python
from bench.thousand_tasks import ROOT, base_env, timed

PHASES = ("first run", "re-run")
Measure = Callable[[list[str], dict[str, str], Path], float]
"""A whole command's cost: its seconds, or its instructions."""
Once = Callable[[Path, str, Measure], tuple[float, float]]
COUNTED = re.compile(r"Collected : (\d+)")


def counted(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """The instructions the command executes, in millions, counted by callgrind."""
    if (valgrind := shutil.which("valgrind")) is None:
        raise SystemExit("--instructions needs valgrind (apt-get install valgrind)")
    result = subprocess.run([valgrind, "--tool=callgrind", "--callgrind-out-file=/dev/null",
                             *argv], env=env, cwd=cwd, capture_output=True, text=True,
                            check=False)
    if result.returncode != 0 or not (found := COUNTED.search(result.stderr)):
        raise SystemExit(f"{argv[0]} under callgrind failed:\n{result.stderr[-2000:]}")
    return int(found[1]) / 1e6


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


def charon_once(streams: Path, interval: str, measure: Measure) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as home:
        shutil.copytree(streams, Path(home) / "storage" / "data")
        argv = [charon_command(), "run", "--module", "jobs.luigi_top_artists", "Top10Artists",
                "--date-interval", interval]
        env = charon_env(Path(home))
        return measure(argv, env, ROOT), measure(argv, env, ROOT)


def luigi_once(python: str, streams: Path, interval: str,
               measure: Measure) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as work:
        shutil.copytree(streams, Path(work) / "data")
        env = {**base_env(), "PYTHONPATH": str(ROOT),
               "LUIGI_CONFIG_PATH": str(Path(work) / "none.cfg")}
        argv = [python, "-m", "luigi", "--module", "bench.luigi_top_artists", "Top10Artists",
                "--date-interval", interval, "--local-scheduler", "--workers", "1",
                "--log-level", "WARNING"]
        first = measure(argv, env, Path(work))
        if not (Path(work) / "data" / f"top_artists_{interval}.tsv").exists():
            raise SystemExit("luigi wrote no top 10: its run failed")
        return first, measure(argv, env, Path(work))


def spread(figures: list[float], unit: str) -> str:
    if len(figures) == 1:
        return f"{figures[0]:,.0f}" if unit.startswith("millions") else f"{figures[0]:.3f}"
    return f"{min(figures):.3f} / {statistics.median(figures):.3f} / {max(figures):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", default="2012")
    parser.add_argument("--events", type=int, default=1000, help="streams a day")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--instructions", action="store_true",
                        help="count each command's instructions once instead of timing it")
    args = parser.parse_args()
    measure, repeat, unit = ((counted, 1, "millions of instructions") if args.instructions
                             else (timed, args.repeat, "seconds, min / median / max"))
    python = luigi_python()
    version = subprocess.run([python, "-c", "import luigi; print(luigi.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory() as template:
        streams = make_streams(args.interval, args.events, Path(template))
        runners: dict[str, Once] = {
            "charon": charon_once,
            f"luigi {version}": lambda data, interval, measure: luigi_once(
                python, data, interval, measure),
        }
        for once in runners.values():  # unmeasured: fills the bytecode caches
            once(streams, args.interval, timed)
        figures: dict[str, dict[str, list[float]]] = {
            name: {phase: [] for phase in PHASES} for name in runners
        }
        for _ in range(repeat):
            for name, once in runners.items():
                for phase, figure in zip(PHASES, once(streams, args.interval, measure),
                                         strict=True):
                    figures[name][phase].append(figure)
    print(f"Top10Artists --date-interval {args.interval}, {args.events} streams a day, "
          f"{repeat} runs each; {unit}")
    print(f"{'':<14}{'first run':>26}{'re-run':>26}")
    for name, phases in figures.items():
        print(f"{name:<14}" + "".join(f"{spread(phases[p], unit):>26}" for p in PHASES))
    charon, luigi = figures["charon"], figures[f"luigi {version}"]
    for phase in PHASES:
        ratio = statistics.median(charon[phase]) / statistics.median(luigi[phase])
        print(f"{phase}: charon / luigi = {ratio:.2f}x (medians)")
    print(f"reproduce: .venv/bin/python bench/luigi_year.py --interval {args.interval} "
          f"--events {args.events} --repeat {args.repeat}"
          + (" --instructions" if args.instructions else ""))


if __name__ == "__main__":
    main()
