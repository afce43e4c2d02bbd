"""A top-artists day: the Beam job, DuckDB on the same files, and what charon adds.

For each size it makes a sample day once, then times, in turns, ``--repeat`` times:
  beam      the pipeline alone (`python -m jobs.top_artists.pipeline` with the day's inputs)
  duckdb    the same answer in DuckDB alone (bench/top_artists_duckdb.py), checked to be
            byte for byte the pipeline's text output
  charon    `charon run` from cold in a copy of the day's home: sensors, fingerprint,
            claim, launch, commit, publish
  re-run    `charon run` again: the idempotent no-op
``--beam-option`` (repeatable) is passed to the pipeline, and to charon's jobs through
beam.options. Run it niced when the machine is shared.
Usage: .venv/bin/python bench/top_artists_day.py [--events 20000 200000] [--repeat 3]
       [--beam-option=--direct_num_workers=2 ...] [--no-charon]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHARON = str(Path(sys.executable).parent / "charon")
DAY = "2018-10-31"
TRACK_ENTITY = "scio-playground:di_golden_path.track_entity_20181031"
TOP_N = "100"
RUN = ["run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY, "--top-n", TOP_N]
COLUMNS = ("beam", "duckdb", "charon", "re-run")


def environment(home: Path, beam_options: list[str]) -> dict[str, str]:
    return {**os.environ, "CHARON_HOME": str(home), "CHARON_LOG__LEVEL": "warning",
            "CHARON_BEAM__OPTIONS": ",".join(beam_options)}


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def measure(events: int, repeat: int, beam_options: list[str], with_charon: bool,
            ) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {column: [] for column in COLUMNS}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "day"
        env = environment(base, beam_options)
        run = [CHARON, "sample-data", "--date", DAY, "--events", str(events)]
        subprocess.run(run, env=env, capture_output=True, check=True)
        listed = subprocess.run([CHARON, "registry", "ls", "di.golden.path.EndContentFactXT2",
                                 DAY], env=env, capture_output=True, text=True, check=True)
        avro_glob = f"{listed.stdout.splitlines()[1].split()[2]}/*.avro"
        for n in range(repeat):
            beam_out, duckdb_out = Path(tmp) / f"beam{n}", Path(tmp) / f"duckdb{n}"
            samples["beam"].append(timed([
                sys.executable, "-m", "jobs.top_artists.pipeline", "--runner=DirectRunner",
                f"--duckdbDir={base / 'warehouse'}", f"--endContentFact={avro_glob}",
                f"--trackEntity={TRACK_ENTITY}", f"--textOutput={beam_out}",
                "--bqOutput=scio-playground:bench.beam", f"--topN={TOP_N}", *beam_options,
            ]))
            samples["duckdb"].append(timed([
                sys.executable, "-m", "bench.top_artists_duckdb", avro_glob,
                str(base / "warehouse"), TRACK_ENTITY, TOP_N, str(duckdb_out),
            ]))
            if (beam_out / "part").read_bytes() != duckdb_out.read_bytes():
                sys.exit(f"the Beam job and DuckDB disagree: {beam_out}/part, {duckdb_out}")
            if with_charon:
                home = Path(tmp) / f"home{n}"
                shutil.copytree(base, home)
                samples["charon"].append(timed([CHARON, *RUN], environment(home, beam_options)))
                samples["re-run"].append(timed([CHARON, *RUN], environment(home, beam_options)))
    return samples


def spread(values: list[float]) -> str:
    return (f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"
            if values else "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--beam-option", action="append", default=[], dest="beam_options")
    parser.add_argument("--no-charon", action="store_true")
    args = parser.parse_args()
    print(f"median (min, max) of {args.repeat} runs each; {os.cpu_count()} cores;"
          f" Beam options: {' '.join(args.beam_options) or 'none'}")
    for events in args.events:
        samples = measure(events, args.repeat, args.beam_options, not args.no_charon)
        beam, duckdb = (statistics.median(samples[column]) for column in ("beam", "duckdb"))
        print(f"{events:,} events")
        for column in COLUMNS:
            print(f"  {column:<8} {spread(samples[column])}")
        fastest = min(samples["beam"]) / min(samples["duckdb"])
        print(f"  beam / duckdb {beam / duckdb:.1f}x (medians), {fastest:.1f}x (fastest runs)")
        if samples["charon"]:
            print(f"  charon's overhead {statistics.median(samples['charon']) - beam:.2f} s")
    options = [f"--beam-option={option}" for option in args.beam_options]
    print("reproduce: .venv/bin/python bench/top_artists_day.py " + " ".join(
        ["--events", *map(str, args.events), "--repeat", str(args.repeat), *options,
         *(["--no-charon"] if args.no_charon else [])]))


if __name__ == "__main__":
    main()
