"""One-shot runs of many leaves: `charon run` against Luigi, side by side in one run.

A wrapper task requires --tasks leaves; each leaf reads its day's input file and writes
a copy as its output. The same files are made once, then copied afresh for every run:
  charon   `charon run --module bench.noop_tasks Leaves` on the embedded defaults: each
           input is a revision in the SQLite registry (one file, `part`, in local
           storage), each output a new registry revision, every run recorded in the
           SQLite state store
  luigi    `luigi --module bench.luigi_tasks Leaves --local-scheduler --workers 1`, Luigi
           from PyPI in bench/.venv-luigi: each input a local file (an ExternalTask),
           each output a local file target
Each is timed as a whole command, cold; the two are timed in turns at each size, and
each figure is min / median / max over --repeat runs, the ratio charon's median over
Luigi's. Luigi runs only at the sizes up to --luigi-max (its scheduler is quadratic in
the number of tasks: 9 s at 1,000, about 21 minutes a run at 10,000 on this machine;
100,000 would take a day).
Usage: .venv/bin/python bench/oneshot_leaves.py [--tasks 1000 10000 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import anyio

from bench.luigi_venv import luigi_python
from bench.noop_tasks import INPUT_ENDPOINT, LEAF_FILE, LEAF_FIRST_DAY
from bench.thousand_tasks import CHARON, ROOT, base_env, timed
from orchestrator.stores.registry.sqlite import SqliteRegistry

# Publishes in flight at once while the inputs are made: enough to fill a group commit.
PUBLISHING = 256
Once = Callable[[], float]


def days(tasks: int) -> list[str]:
    return [(LEAF_FIRST_DAY + timedelta(days=n)).isoformat() for n in range(tasks)]


def write_inputs(folder: Path, tasks: int) -> list[Path]:
    """One small file per day, ``<folder>/<day>/part``; the folders, by day's order."""
    made = []
    for day in days(tasks):
        (folder / day).mkdir(parents=True)
        (folder / day / LEAF_FILE).write_bytes(f"{day}\n".encode())
        made.append(folder / day)
    return made


async def publish_inputs(home: Path, folders: list[Path]) -> None:
    registry = await SqliteRegistry.open(home / "registry.sqlite")
    limit = anyio.Semaphore(PUBLISHING)

    async def publish(folder: Path) -> None:
        async with limit:
            await registry.publish(INPUT_ENDPOINT, folder.name, str(folder))

    try:
        async with anyio.create_task_group() as group:
            for folder in folders:
                group.start_soon(publish, folder)
    finally:
        await registry.aclose()


def make_templates(tasks: int, into: Path) -> tuple[Path, Path]:
    """A charon home holding the inputs (files and revisions) and Luigi's input files."""
    charon, luigi = into / "charon", into / "luigi"
    folders = write_inputs(charon / "storage" / "in", tasks)
    anyio.run(publish_inputs, charon, folders)
    shutil.copytree(charon / "storage" / "in", luigi / "in")
    return charon, luigi


def count_outputs(folder: Path) -> int:
    return sum(1 for path in folder.rglob(LEAF_FILE) if path.is_file())


def checked(who: str, made: int, tasks: int) -> None:
    if made != tasks:
        raise SystemExit(f"{who} made {made} outputs of {tasks}")


def charon_once(charon: str, template: Path, tasks: int) -> float:
    """The inputs stay where their revisions point (the template's storage); the
    registry is copied afresh, and the run's outputs are removed after it."""
    with tempfile.TemporaryDirectory() as home:
        shutil.copy(template / "registry.sqlite", home)
        env = {**base_env(), "CHARON_HOME": home, "CHARON_LOG__LEVEL": "warning",
               "PYTHONPATH": str(ROOT), "BENCH_TASKS": str(tasks),
               "CHARON_STORAGE__ROOT": str(template / "storage")}
        try:
            elapsed = timed([charon, "run", "--module", "bench.noop_tasks", "Leaves"], env, ROOT)
            checked("charon", count_outputs(template / "storage" / "outputs"), tasks)
        finally:
            shutil.rmtree(template / "storage" / "outputs", ignore_errors=True)
        return elapsed


def luigi_once(python: str, template: Path, tasks: int) -> float:
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "in").symlink_to(template / "in")
        env = {**base_env(), "PYTHONPATH": str(ROOT), "BENCH_TASKS": str(tasks),
               "LUIGI_CONFIG_PATH": str(Path(work) / "none.cfg")}
        elapsed = timed([python, "-m", "luigi", "--module", "bench.luigi_tasks", "Leaves",
                         "--local-scheduler", "--workers", "1", "--log-level", "WARNING"],
                        env, Path(work))
        checked("luigi", count_outputs(Path(work) / "out"), tasks)
        return elapsed


def spread(times: list[float]) -> str:
    return f"{min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f}"


def measure(charon: str, tasks: int, repeat: int, luigi: str | None) -> dict[str, list[float]]:
    """Each runner's times at one size, the runners taken in turns."""
    with tempfile.TemporaryDirectory() as scratch:
        charon_home, luigi_work = make_templates(tasks, Path(scratch))
        runners: dict[str, Once] = {
            "charon": lambda: charon_once(charon, charon_home, tasks)}
        if luigi is not None:
            runners["luigi"] = lambda: luigi_once(luigi, luigi_work, tasks)
        times: dict[str, list[float]] = {name: [] for name in runners}
        for _ in range(repeat):
            for name, once in runners.items():
                times[name].append(once())
                # As it goes: a run of Luigi at 10,000 leaves takes about 20 minutes.
                print(f"  {tasks} leaves, {name}: {times[name][-1]:.2f} s", flush=True)
        return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--luigi-max", type=int, default=10_000)
    parser.add_argument("--charon", default=CHARON, help="the charon command to time")
    args = parser.parse_args()
    python = luigi_python()
    version = subprocess.run([python, "-c", "import luigi; print(luigi.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # untimed: fills the bytecode caches
    measure(args.charon, 10, 1, python)
    print(f"one-shot runs of N leaves, {args.repeat} cold runs each; seconds, "
          "min / median / max, and per leaf (median)")
    for tasks in args.tasks:
        luigi = python if tasks <= args.luigi_max else None
        times = measure(args.charon, tasks, args.repeat, luigi)
        for name, measured in times.items():
            label = "charon" if name == "charon" else f"luigi {version}"
            per_leaf = statistics.median(measured) / tasks * 1000
            print(f"{tasks:>7} leaves  {label:<12}{spread(measured):>26}"
                  f"  {per_leaf:7.3f} ms a leaf")
        if "luigi" in times:
            ratio = statistics.median(times["charon"]) / statistics.median(times["luigi"])
            print(f"{tasks:>7} leaves  charon / luigi = {ratio:.2f}x (medians)")
    print("reproduce: .venv/bin/python bench/oneshot_leaves.py --tasks "
          f"{' '.join(map(str, args.tasks))} --repeat {args.repeat} --luigi-max {args.luigi_max}")


if __name__ == "__main__":
    main()
