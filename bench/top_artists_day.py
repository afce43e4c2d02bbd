"""How much charon adds to a top-artists day, side by side with the bare Beam pipeline.

For each size it makes a sample day in a fresh home, then times, in one run:
  bare      the pipeline alone (`python -m jobs.top_artists.pipeline` with the same inputs)
  charon    `charon run` from cold: sensors, fingerprint, claim, launch, commit, publish
  re-run    `charon run` again: the idempotent no-op
Usage: .venv/bin/python bench/top_artists_day.py [--events 20000 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHARON = str(Path(sys.executable).parent / "charon")
DAY = "2018-10-31"
TRACK_ENTITY = "scio-playground:di_golden_path.track_entity_20181031"
RUN = ["run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY, "--top-n", "100"]


def charon(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CHARON_HOME": str(home), "CHARON_LOG__LEVEL": "warning"}
    return subprocess.run([CHARON, *args], env=env, capture_output=True, text=True, check=True)


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def measure(events: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        charon(home, "sample-data", "--date", DAY, "--events", str(events))
        listed = charon(home, "registry", "ls", "di.golden.path.EndContentFactXT2", DAY)
        input_uri = listed.stdout.splitlines()[1].split()[2]
        bare = timed([
            sys.executable, "-m", "jobs.top_artists.pipeline", "--runner=DirectRunner",
            f"--duckdbDir={home / 'warehouse'}", f"--endContentFact={input_uri}/*.avro",
            f"--trackEntity={TRACK_ENTITY}", f"--textOutput={home / 'storage' / 'bare'}",
            "--bqOutput=scio-playground:bench.bare", "--topN=100",
        ])
        env = {**os.environ, "CHARON_HOME": str(home), "CHARON_LOG__LEVEL": "warning"}
        cold = timed([CHARON, *RUN], env)
        rerun = timed([CHARON, *RUN], env)
    return bare, cold, rerun


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{'events':>9} {'bare s':>8} {'charon s':>9} {'overhead s':>11} {'re-run s':>9}")
    for events in args.events:
        samples = [measure(events) for _ in range(args.repeat)]
        bare, cold, rerun = (statistics.median(column) for column in zip(*samples, strict=True))
        print(f"{events:>9} {bare:>8.2f} {cold:>9.2f} {cold - bare:>11.2f} {rerun:>9.2f}")
    print(f"median of {args.repeat} runs each; {os.cpu_count()} cores")
    print("reproduce: .venv/bin/python bench/top_artists_day.py "
          + " ".join(["--events", *map(str, args.events), "--repeat", str(args.repeat)]))


if __name__ == "__main__":
    main()
