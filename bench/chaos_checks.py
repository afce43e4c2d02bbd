"""The chaos benchmark's verdict: what the registry, the state store, the warehouse and
the storage folder hold once the system has settled.

Read straight from where charon keeps them (PostgreSQL, the DuckDB files, the
folder), not through charon's own reports, so a bug there cannot hide itself.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import duckdb

from bench.chaos_observe import LogFacts, ProcSampler
from jobs.top_artists import TrackEntity
from orchestrator.stores.warehouse.duckdb import DuckDBWarehouse
from sensors.warehouse import WarehouseSensor

SELECT_REVISIONS = (
    "SELECT id, endpoint, partition, uri, lineage, seq FROM charon_registry.revisions"
)
SELECT_RUNS = (
    "SELECT id, family, partition, fingerprint, state, attempt, generation, failures,"
    " outputs::text AS outputs, error FROM charon_state.runs"
)
SELECT_BACKFILLS = (
    "SELECT b.id, b.state, b.owner, d.day, d.status FROM charon_state.backfills b"
    " LEFT JOIN charon_state.backfill_days d ON d.backfill_id = b.id"
)
STAGING_TABLES = (
    "SELECT schema_name || '.' || table_name FROM duckdb_tables()"
    " WHERE starts_with(schema_name, '_incoming_')"
)


@dataclass(frozen=True)
class Rev:
    id: str
    endpoint: str
    partition: str
    uri: str
    lineage: tuple[str, ...]
    seq: int


@dataclass(frozen=True)
class RunRow:
    id: str
    family: str
    partition: str
    fingerprint: str
    state: str
    attempt: int
    generation: int
    failures: int
    outputs: Mapping[str, str]
    error: str | None


async def dump_tables(pool: asyncpg.Pool[Any], folder: Path) -> None:
    """The runs and revisions as they ended, kept with the run's files: the database
    is dropped at the end, and a failure needs them to be understood."""
    for name, sql in (("runs", "SELECT * FROM charon_state.runs ORDER BY seq"),
                      ("revisions", "SELECT * FROM charon_registry.revisions ORDER BY seq")):
        rows = [{k: str(v) for k, v in dict(row).items()} for row in await pool.fetch(sql)]
        text = "\n".join(json.dumps(row) for row in rows) + "\n"
        await anyio.Path(folder / f"{name}.jsonl").write_text(text)


async def read_revisions(pool: asyncpg.Pool[Any]) -> list[Rev]:
    rows = await pool.fetch(SELECT_REVISIONS)
    return [Rev(r["id"], r["endpoint"], r["partition"], r["uri"], tuple(r["lineage"]), r["seq"])
            for r in rows]


async def read_runs(pool: asyncpg.Pool[Any]) -> list[RunRow]:
    rows = await pool.fetch(SELECT_RUNS)
    return [RunRow(r["id"], r["family"], r["partition"], r["fingerprint"], r["state"],
                   r["attempt"], r["generation"], r["failures"], json.loads(r["outputs"]),
                   r["error"]) for r in rows]


async def backfills_not_done(pool: asyncpg.Pool[Any], days: Sequence[date]) -> list[str]:
    """What keeps the recorded backfills from being done: one not succeeded, or one of
    ``days`` (the backfill's) not recorded done."""
    rows = await pool.fetch(SELECT_BACKFILLS)
    wrong = sorted({f"backfill {r['id']} is {r['state']} (runner {r['owner'] or 'none'})"
                    for r in rows if r["state"] != "succeeded"})
    statuses = {r["day"]: r["status"] for r in rows if r["day"] is not None}
    wrong += [f"backfill day {day} is {statuses.get(day.isoformat(), 'not recorded')}"
              for day in days if statuses.get(day.isoformat()) not in ("done", "complete")]
    return wrong


@dataclass(frozen=True)
class Workflow:
    """One watched workflow, as the checks see it: which endpoint feeds which."""

    input_endpoint: str
    output_endpoint: str
    partitions: Sequence[date]


def stale_partitions(revisions: Sequence[Rev], workflow: Workflow,
                     also_in_lineage: Mapping[str, str] | None = None) -> list[str]:
    """Partitions whose outputs are not exactly one revision built from the latest
    inputs, or whose newest output revision is not that one.

    ``also_in_lineage``: per partition, another input's current version that the
    up-to-date output must list too (the top-artists day's TrackEntity table).
    """
    latest_input: dict[str, Rev] = {}
    outputs: dict[str, list[Rev]] = defaultdict(list)
    for rev in sorted(revisions, key=lambda r: r.seq):
        if rev.endpoint == workflow.input_endpoint:
            latest_input[rev.partition] = rev
        elif rev.endpoint == workflow.output_endpoint:
            outputs[rev.partition].append(rev)
    stale = []
    for day in workflow.partitions:
        partition = day.isoformat()
        latest = latest_input.get(partition)
        if latest is None:
            stale.append(f"{workflow.input_endpoint} {partition}: no input was published")
            continue
        wanted = {latest.id, *([also_in_lineage[partition]] if also_in_lineage else [])}
        built = [o for o in outputs[partition] if wanted <= set(o.lineage)]
        newest = outputs[partition][-1] if outputs[partition] else None
        if len(built) != 1 or newest is None or newest.id != built[0].id:
            stale.append(f"{workflow.output_endpoint} {partition}: {len(built)} revisions built"
                         f" from the latest inputs {sorted(wanted)}; newest output"
                         f" {newest.id if newest else None}")
    return stale


def duplicate_outputs(revisions: Sequence[Rev], endpoints: Iterable[str]) -> list[str]:
    """Input sets that got two output revisions or more."""
    wanted = set(endpoints)
    count = Counter((r.endpoint, r.partition, frozenset(r.lineage))
                    for r in revisions if r.endpoint in wanted)
    return [f"{endpoint} {partition}: {n} revisions from lineage {sorted(lineage)}"
            for (endpoint, partition, lineage), n in count.items() if n > 1]


def unrecorded_outputs(revisions: Sequence[Rev], runs: Sequence[RunRow],
                       endpoints: Iterable[str]) -> list[str]:
    """Output revisions that no succeeded run lists among its outputs."""
    recorded = {v for run in runs if run.state == "succeeded" for v in run.outputs.values()}
    wanted = set(endpoints)
    return [f"{r.endpoint} {r.partition} revision {r.id} ({r.uri})" for r in revisions
            if r.endpoint in wanted and r.id not in recorded]


def unreferenced_outputs(outputs: Path, uris: Iterable[str]) -> list[str]:
    """Everything under ``outputs`` outside every folder a revision names, hidden
    files included: the topmost such folders (with their file count) and files."""
    named = {uri.rstrip("/") for uri in uris}
    ancestors = {str(parent) for uri in named for parent in Path(uri).parents}
    found = []
    for folder, dirs, files in os.walk(outputs):
        kept = []
        for name in sorted(dirs):
            path = os.path.join(folder, name)
            if path in named:
                continue
            if path in ancestors:
                kept.append(name)
            else:
                inside = sum(len(f) for _, _, f in os.walk(path))
                found.append(f"folder {path} ({inside} files)")
        dirs[:] = kept
        found.extend(f"file {os.path.join(folder, name)}" for name in sorted(files))
    return found


def staging_tables(warehouse: Path) -> list[str] | None:
    """Staging tables in every project's DuckDB file; None while a writer holds one."""
    found: list[str] = []
    for path in sorted(warehouse.glob("*.duckdb")):
        try:
            with duckdb.connect(str(path), read_only=True) as connection:
                rows = connection.execute(STAGING_TABLES).fetchall()
        except duckdb.IOException:
            return None
        found.extend(f"{path.stem}:{row[0]}" for row in rows)
    return found


def beam_overlaps(sampler: ProcSampler, facts: LogFacts,
                  runs: Sequence[RunRow]) -> tuple[list[str], int]:
    """Two live executions of one (day, fingerprint) seen at once, from the /proc
    samples; and how many pairs of one day's jobs overlapped with different
    fingerprints (a superseded run's job still ending beside its successor's).

    A job is tied to its run by its staged output, which the replica logged when
    launching it; one that cannot be tied is counted as an overlap, to be looked at.
    """
    fingerprint_of = {run.id: run.fingerprint for run in runs}
    overlaps: dict[frozenset[int], str] = {}
    lingering: set[frozenset[int]] = set()
    for sample in sampler.crowded:
        by_ref: dict[str, dict[int, str]] = defaultdict(dict)
        for process in sample:
            run_id = facts.run_of_output.get(process.output, "")
            by_ref[process.input_ref][process.group] = fingerprint_of.get(run_id, "")
        for ref, groups in by_ref.items():
            if len(groups) < 2:
                continue
            pair = frozenset(groups)
            prints = list(groups.values())
            if "" in prints or len(set(prints)) < len(prints):
                overlaps[pair] = (f"process groups {sorted(pair)} ran {ref} at once,"
                                  f" fingerprints {prints}")
            else:
                lingering.add(pair)
    return sorted(overlaps.values()), len(lingering)


async def table_versions(warehouse_dir: Path, days: Iterable[date]) -> dict[str, str]:
    """Each top-artists day's TrackEntity version, as charon's own sensor names it: the
    id an up-to-date output lists in its lineage. Read once the replicas are stopped."""
    warehouse = DuckDBWarehouse(warehouse_dir, "EU")
    sensor = WarehouseSensor(warehouse)
    versions = {}
    try:
        for day in days:
            found = await sensor.lookup("trackEntity", TrackEntity(date=day).output())
            versions[day.isoformat()] = found.revision_id if found else "no TrackEntity table"
    finally:
        await warehouse.aclose()
    return versions


def mismatched_outputs(revisions: Sequence[Rev], workflow: Workflow, input_file: str,
                       other_endpoints: Iterable[str] = ()) -> list[str]:
    """Output revisions whose files do not say they were built from their lineage.

    The small job writes ``partition P built from REF`` as the first line of its part
    file: REF must be the input file of the one revision the lineage names. Other
    endpoints' revisions must at least have their part file.
    """
    by_id = {r.id: r for r in revisions}
    wrong = []
    for rev in revisions:
        if rev.endpoint in other_endpoints and not _first_line(rev):
            wrong.append(f"{rev.endpoint} {rev.partition} revision {rev.id}: no part file")
        if rev.endpoint != workflow.output_endpoint:
            continue
        sources = [by_id.get(i) for i in rev.lineage]
        source = sources[0] if len(sources) == 1 else None
        if source is None or source.endpoint != workflow.input_endpoint:
            wrong.append(f"{rev.endpoint} {rev.partition} revision {rev.id}: lineage"
                         f" {list(rev.lineage)} is not one input revision")
            continue
        expected = f"partition {rev.partition} built from {source.uri.rstrip('/')}/{input_file}"
        if (found := _first_line(rev)) != expected:
            wrong.append(f"{rev.endpoint} {rev.partition} revision {rev.id}: part file says"
                         f" {found!r}, lineage says {source.id} ({source.uri})")
    return wrong


def _first_line(rev: Rev) -> str:
    try:
        with (Path(rev.uri) / "part").open() as part:
            return part.readline().rstrip("\n")
    except OSError:
        return ""
