"""What the chaos benchmark watches from outside: /proc, the replicas' logs, the jobs' records.

- The top-artists Beam jobs are sampled in /proc every 100 ms: every live process
  running ``jobs.top_artists.pipeline`` (not its ``die_with_parent`` wrapper, not a
  zombie), with its process group, input ref and staged output. Two groups alive at
  once for one input ref are kept, to be told apart later by fingerprint.
- Each replica's JSON log gives the claim-to-start latency (its "run started" or "run
  resumed" line and the "job starting" line of the same run and attempt, stamped by
  one process) and which run each Beam job command belonged to.
- The small job's own records (``bench.chaos_job``): starts, ends and overlaps.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import anyio

from bench.chaos_job import EXECUTIONS

BEAM_PIPELINE = b"jobs.top_artists.pipeline"
SMALL_JOB = b"bench.chaos_job"
WRAPPER = b"die_with_parent"
SAMPLE_SECONDS = 0.1
FAILURE_WORDS = 80
_DEAD = frozenset({"Z", "X"})
_CLAIMED = ("run started", "run resumed")
NOTABLE = (
    "run failed", "run released", "lease lost: stopping the run",
    "run stopped: its lease is lost", "run superseded before publishing",
    "reattaching to job", "cannot reattach, launching again",
    "this publication was made by another attempt; discarding this attempt's copy",
    "removed unowned staging", "evaluation failed; trying again later",
    "could not renew a lease", "evaluation crashed", "backfill taken over",
    "backfill stopped", "backfill day not evaluated; tried again later",
)


@dataclass(frozen=True)
class BeamProcess:
    group: int
    pid: int
    input_ref: str
    output: str


@dataclass
class ProcSampler:
    """Samples /proc until cancelled; keeps only the moments worth a second look.

    Only this run's jobs count: those whose command line names a path under ``root``
    (other work on the machine may run the same pipeline).
    """

    root: Path
    samples: int = 0
    groups: set[int] = field(default_factory=set)
    crowded: list[list[BeamProcess]] = field(default_factory=list)
    """Samples where two process groups ran the pipeline for one input ref."""

    async def run(self) -> None:
        while True:
            found = await anyio.to_thread.run_sync(scan_beam_processes, self.root)
            self.samples += 1
            self.groups.update(p.group for p in found)
            by_ref: dict[str, set[int]] = {}
            for process in found:
                by_ref.setdefault(process.input_ref, set()).add(process.group)
            if any(len(groups) > 1 for groups in by_ref.values()):
                self.crowded.append(found)
            await anyio.sleep(SAMPLE_SECONDS)


def _ours(argv: list[bytes], root: Path) -> bool:
    under = str(root).encode()
    return any(under in arg for arg in argv)


def scan_beam_processes(root: Path) -> list[BeamProcess]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if (BEAM_PIPELINE not in argv or any(WRAPPER in a for a in argv)
                    or not _ours(argv, root)):
                continue
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue  # it ended while we looked
        # The command name (field 2) may hold anything: count fields from the last ')'.
        fields = stat[stat.rindex(b")") + 2:].split()
        if fields[0].decode() in _DEAD:
            continue
        flags = _flags(arg.decode(errors="replace") for arg in argv)
        found.append(BeamProcess(int(fields[2]), int(entry), flags.get("endContentFact", ""),
                                 flags.get("textOutput", "")))
    return found


def scan_job_processes(root: Path) -> list[str]:
    """Every live process of this run's jobs (the small job, the Beam job, their
    wrappers)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{entry}/stat").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2:].split()[0].decode() in _DEAD:
            continue
        if _ours(argv, root) and any(
            arg in (BEAM_PIPELINE, SMALL_JOB) or WRAPPER in arg for arg in argv
        ):
            found.append(f"pid {entry}: {b' '.join(argv).decode(errors='replace')[:200]}")
    return found


def _flags(argv: Iterable[str]) -> dict[str, str]:
    return {key[2:]: value for key, _, value in (a.partition("=") for a in argv)
            if key.startswith("--")}


@dataclass
class LogFacts:
    claim_to_start: list[float] = field(default_factory=list)
    """Seconds from a run's claim being logged to its job being launched."""
    run_of_output: dict[str, str] = field(default_factory=dict)
    """A Beam job's staged text output → the run that launched it."""
    beam_launches: int = 0
    lines: int = 0
    notable: Counter[str] = field(default_factory=Counter)
    """How often each of the NOTABLE events was logged."""
    failures: Counter[str] = field(default_factory=Counter)
    """The errors of "run failed" events, by their first words."""


def read_logs(paths: Iterable[Path]) -> LogFacts:
    facts = LogFacts()
    for path in paths:
        claimed: dict[tuple[str, int], datetime] = {}
        for line in path.read_text(errors="replace").splitlines():
            if not line.startswith("{"):
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short when its process was killed
            facts.lines += 1
            _note(event, claimed, facts)
    return facts


def _note(event: dict[str, object], claimed: dict[tuple[str, int], datetime],
          facts: LogFacts) -> None:
    name, run_id, attempt = event.get("event"), event.get("run_id"), event.get("attempt")
    if name in NOTABLE:
        facts.notable[str(name)] += 1
    if name == "run failed":
        facts.failures[str(event.get("error", ""))[:FAILURE_WORDS]] += 1
    if not isinstance(run_id, str) or not isinstance(attempt, int):
        return
    stamp = datetime.fromisoformat(str(event["timestamp"]))
    if name in _CLAIMED:
        claimed[(run_id, attempt)] = stamp
    elif name == "job starting":
        started = claimed.pop((run_id, attempt), None)
        if started is not None:
            facts.claim_to_start.append((stamp - started).total_seconds())
        command = str(event.get("command", ""))
        if BEAM_PIPELINE.decode() in command:
            facts.beam_launches += 1
            output = _flags(command.split()).get("textOutput")
            if output:
                facts.run_of_output[output] = run_id


@dataclass
class Executions:
    """The small job's records: every start, end and overlap, by process."""

    starts: list[dict[str, object]] = field(default_factory=list)
    ends: list[dict[str, object]] = field(default_factory=list)
    overlaps: list[dict[str, object]] = field(default_factory=list)

    @property
    def cut_short(self) -> int:
        """Executions that started and never ended: killed with their owner, or stopped."""
        return len({e["pid"] for e in self.starts} - {e["pid"] for e in self.ends})


def read_executions(folder: Path) -> Executions:
    found = Executions()
    path = folder / EXECUTIONS
    if not path.exists():
        return found
    kinds = {"start": found.starts, "end": found.ends, "overlap": found.overlaps}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        kinds[record["event"]].append(record)
    return found


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0
