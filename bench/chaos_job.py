"""The chaos benchmark's job: a stand-in for a Beam pipeline that records how it ran.

    python -m bench.chaos_job --runner=DirectRunner --blocking --input=<file>
        --output=<folder> --partition=<day> --chaosLog=<folder> [other --flags]

It takes the command line the Beam launcher builds (``jobs.runners.beam.beam_command``:
``--key=value`` flags, unknown ones ignored), reads its input file, works for a
random 0.2-1 s while writing its output to a hidden temporary file, and renames that
to ``<output>/part``. Beam's file sinks do the same in spirit: output is written
aside and appears under its final name at the end.

What it records, under ``--chaosLog``:

- ``executions.jsonl``: a ``start`` and an ``end`` line per execution (pid,
  partition, input ref, wall-clock time); an execution killed midway has no end.
- an exclusive, non-blocking ``flock`` on ``locks/<partition>-<hash of input ref>``
  held for the whole execution. The kernel drops it when the process dies, so
  finding it held means another execution of the same (partition, input) is alive
  at this moment: an ``overlap`` line, naming the holder's pid.

Imports nothing of Beam or charon: it starts fast, as many times as the run needs.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path

WORK_SECONDS = (0.2, 1.0)
STEPS = 4
EXECUTIONS = "executions.jsonl"
LOCKS = "locks"
USAGE = 2


def flags(argv: list[str]) -> dict[str, str]:
    """``--key=value`` arguments as a dict; bare flags (``--blocking``) map to ""."""
    found: dict[str, str] = {}
    for arg in argv:
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            found[key] = value
    return found


def record(log_dir: Path, **fields: object) -> None:
    """One JSON line, appended in a single write so concurrent jobs never interleave."""
    line = json.dumps({**fields, "pid": os.getpid(), "at": time.time()}) + "\n"
    descriptor = os.open(log_dir / EXECUTIONS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def lock_path(log_dir: Path, partition: str, ref: str) -> Path:
    digest = hashlib.sha256(ref.encode()).hexdigest()[:16]
    return log_dir / LOCKS / f"{partition}-{digest}.lock"


def take_lock(path: Path) -> tuple[int, str | None]:
    """The lock's descriptor (kept open: the lock lives as long as this process) and,
    when another live process holds it, that process's pid as it wrote it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return descriptor, os.pread(descriptor, 64, 0).decode(errors="replace").strip()
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, str(os.getpid()).encode(), 0)
    return descriptor, None


def work(ref: str, output: Path, partition: str) -> None:
    data = Path(ref).read_text()
    output.mkdir(parents=True, exist_ok=True)
    temp = output / f".part.inprogress-{os.getpid()}"
    pause = random.uniform(*WORK_SECONDS) / STEPS
    with temp.open("w") as handle:
        handle.write(f"partition {partition} built from {ref}\n")
        for step in range(STEPS):
            time.sleep(pause)
            handle.write(f"step {step}: {data}")
            handle.flush()
        os.fsync(handle.fileno())
    temp.rename(output / "part")


def main(argv: list[str]) -> int:
    given = flags(argv)
    missing = [k for k in ("input", "output", "partition", "chaosLog") if not given.get(k)]
    if missing:
        print(f"error: missing --{', --'.join(missing)}", file=sys.stderr)
        return USAGE
    log_dir, ref, partition = Path(given["chaosLog"]), given["input"], given["partition"]
    _descriptor, holder = take_lock(lock_path(log_dir, partition, ref))
    if holder is not None:
        record(log_dir, event="overlap", partition=partition, input=ref, holder=holder)
    record(log_dir, event="start", partition=partition, input=ref, output=given["output"])
    print(f"chaos job {os.getpid()} for {partition} from {ref}", flush=True)
    work(ref, Path(given["output"]), partition)
    record(log_dir, event="end", partition=partition, input=ref, output=given["output"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
