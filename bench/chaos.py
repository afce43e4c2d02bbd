"""Chaos: does every (task, partition) get published once per input state, whatever
happens to the processes running it?

A fresh PostgreSQL database holds the state store and the registry; the registry
service (a subprocess, on a fixed port) fronts the registry; --replicas `charon
daemon` subprocesses share the database, the service and one home (storage, DuckDB
warehouse). They watch --partitions days of a small job task (bench.chaos_tasks,
whose job records every execution and any overlap) and --top-days days of the real
top-artists Beam job. While inputs arrive in bursts, with late revisions, the
harness deals faults for --fault-seconds: replicas SIGKILLed and restarted, paused
past their lease (one of them mid-publication), the registry service SIGKILLed and
restarted, PostgreSQL connections cut; and a backfill of --backfill-days days after
the watched ones is started through a replica's API as they begin, to be taken over
whenever the replica running it dies. Then it lets the system settle and checks
(see bench/chaos_scenario.py, bench/chaos_checks.py): figures that must be zero,
and how long settling and launching took.
Usage: .venv/bin/python bench/chaos.py [--partitions 200] [--top-days 3]
       [--fault-seconds 150] [--replicas 3] [--lease 5] [--backfill-days 40] [--seed 1]
       [--keep DIR]
Exit status 1 when a must-be-zero figure is not zero.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_scenario import ChaosParams, ChaosResult, scenario  # after the path is set
from bench.chaos_stack import Layout
from orchestrator.testing.postgres import temporary_database

__all__ = ["ChaosParams", "ChaosResult", "main", "report", "run_chaos"]
DETAILS_SHOWN = 10


async def run_chaos(params: ChaosParams, root: Path,
                    say: Callable[[str], None] = print) -> ChaosResult:
    """Run the scenario with its files under ``root``; progress lines go to ``say``."""
    started = time.monotonic()

    def progress(line: str) -> None:
        say(f"[{time.monotonic() - started:6.1f}s] {line}")

    layout = Layout(root)
    layout.make()
    async with temporary_database("charon_chaos") as dsn:
        progress(f"database {dsn.rsplit('/', 1)[1]}; files under {root}")
        result = await scenario(params, layout, dsn, progress)
    result.figures.append(("total time", f"{time.monotonic() - started:.1f} s"))
    return result


def command(params: ChaosParams) -> str:
    return (f".venv/bin/python bench/chaos.py --partitions {params.partitions}"
            f" --top-days {params.top_days} --fault-seconds {params.fault_seconds:g}"
            f" --replicas {params.replicas} --lease {params.lease_seconds}"
            f" --backfill-days {params.backfill_days} --seed {params.seed}")


def report(params: ChaosParams, result: ChaosResult) -> str:
    """The figures, the details of anything wrong, the verdict and the command."""
    lines = [f"chaos: {params.partitions} partitions + {params.top_days} top-artists days"
             f" + a backfill of {params.backfill_days} days,"
             f" {params.replicas} replicas, lease {params.lease_seconds} s,"
             f" {params.fault_seconds:g} s of faults, seed {params.seed}", "must be zero:"]
    width = max(len(name) for name in result.must_be_zero)
    lines += [f"  {name:<{width}}  {value}" for name, value in result.must_be_zero.items()]
    lines.append("figures:")
    width = max(len(name) for name, _ in result.figures)
    lines += [f"  {name:<{width}}  {value}" for name, value in result.figures]
    for name, found in result.details.items():
        if found:
            lines.append(f"{name}:")
            lines += [f"  {item}" for item in found[:DETAILS_SHOWN]]
            if len(found) > DETAILS_SHOWN:
                lines.append(f"  ... and {len(found) - DETAILS_SHOWN} more")
    wrong = [f"{name} = {value}" for name, value in result.must_be_zero.items() if value]
    lines.append("verdict: " + ("PASS, every must-be-zero figure is 0" if not wrong
                                else "FAIL, " + "; ".join(wrong)))
    lines.append(f"reproduce: {command(params)}")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> tuple[ChaosParams, Path | None]:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    defaults = ChaosParams()
    parser.add_argument("--partitions", type=int, default=defaults.partitions)
    parser.add_argument("--top-days", type=int, default=defaults.top_days)
    parser.add_argument("--fault-seconds", type=float, default=defaults.fault_seconds)
    parser.add_argument("--replicas", type=int, default=defaults.replicas)
    parser.add_argument("--lease", type=int, default=defaults.lease_seconds)
    parser.add_argument("--backfill-days", type=int, default=defaults.backfill_days)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the run's files (logs, storage) here; by default they"
                             " are removed, unless the verdict is FAIL")
    args = parser.parse_args(argv)
    if args.replicas < 2 or args.partitions < 1 or args.top_days < 1 or args.backfill_days < 0:
        parser.error("at least 2 replicas, 1 partition and 1 top-artists day, and no"
                     " negative number of backfill days")
    return ChaosParams(partitions=args.partitions, top_days=args.top_days,
                       fault_seconds=args.fault_seconds, replicas=args.replicas,
                       lease_seconds=args.lease, backfill_days=args.backfill_days,
                       seed=args.seed), args.keep


def main(argv: list[str] | None = None) -> int:
    params, keep = parse(argv)
    root = keep or Path(tempfile.mkdtemp(prefix="charon-chaos-"))
    result = anyio.run(run_chaos, params, root, lambda line: print(line, flush=True))
    print(report(params, result), flush=True)
    if result.ok and keep is None:
        shutil.rmtree(root, ignore_errors=True)
    elif keep is None:
        print(f"the run's files are kept for a look: {root}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
