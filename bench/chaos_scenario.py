"""The chaos scenario, phase by phase: attack, settle, let the janitor sweep, stop, judge."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc
import asyncpg

from bench.chaos_checks import (
    Rev,
    RunRow,
    Workflow,
    backfills_not_done,
    beam_overlaps,
    dump_tables,
    duplicate_outputs,
    mismatched_outputs,
    read_revisions,
    read_runs,
    staging_tables,
    stale_partitions,
    table_versions,
    unrecorded_outputs,
    unreferenced_outputs,
)
from bench.chaos_faults import FaultLog, Faults
from bench.chaos_observe import (
    Executions,
    ProcSampler,
    percentile,
    read_executions,
    read_logs,
    scan_job_processes,
)
from bench.chaos_publisher import Published, Publisher
from bench.chaos_stack import Layout, Say, Stack, StackConfig, harness_pool
from bench.chaos_tasks import INPUT_ENDPOINT, INPUT_FILE, OUTPUT_ENDPOINT
from jobs.top_artists.sample_data import ENDPOINT as ECF_ENDPOINT

TOP_ARTISTS_ENDPOINT = "di.golden.path.charon.top_artists"
FIRST_DAY = date(2000, 1, 1)
FIRST_TOP_DAY = date(2018, 10, 1)
SETTLE_POLL_SECONDS = 0.5
JANITOR_POLL_SECONDS = 1.0
EXIT_MARGIN_SECONDS = 15.0
REGISTRY_KILLS = 2
JOBS_GONE_SECONDS = 5.0
ACTIVE = ("running", "publishing")


@dataclass(frozen=True)
class ChaosParams:
    partitions: int = 200
    top_days: int = 3
    fault_seconds: float = 150.0
    replicas: int = 3
    lease_seconds: int = 5
    seed: int = 1
    janitor_seconds: int = 5
    poll_ms: int = 200
    kill_every: float = 4.0
    """Mean seconds between two replica SIGKILLs."""
    late_share: float = 0.4
    """Late input revisions, as a share of the small task's partitions."""
    events: int = 20_000
    settle_seconds: float = 180.0
    backfill_days: int = 40
    """Days after the watched window that a backfill, started through a replica's API
    as the faults begin, runs one at a time."""

    @property
    def days(self) -> list[date]:
        return [FIRST_DAY + timedelta(days=n) for n in range(self.partitions)]

    @property
    def top(self) -> list[date]:
        return [FIRST_TOP_DAY + timedelta(days=n) for n in range(self.top_days)]

    @property
    def backfill(self) -> list[date]:
        after = FIRST_DAY + timedelta(days=self.partitions)
        return [after + timedelta(days=n) for n in range(self.backfill_days)]


@dataclass
class ChaosResult:
    must_be_zero: dict[str, int] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)
    figures: list[tuple[str, str]] = field(default_factory=list)
    faults: FaultLog = field(default_factory=FaultLog)
    published: Published = field(default_factory=Published)
    settle_seconds: float | None = None
    claim_to_start: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.must_be_zero.values())

    def zero(self, name: str, found: Sequence[str]) -> None:
        self.must_be_zero[name] = len(found)
        if found:
            self.details[name] = list(found)


async def scenario(params: ChaosParams, layout: Layout, dsn: str, say: Say) -> ChaosResult:
    config = StackConfig(params.replicas, params.lease_seconds, params.janitor_seconds,
                         params.poll_ms, FIRST_DAY, params.partitions, tuple(params.top))
    stack = Stack(layout, config, dsn, say)
    sampler = ProcSampler(layout.root)
    async with anyio.create_task_group() as group:
        try:
            await stack.start(group)
            say(f"up: registry service at {stack.registry_url} (pid {stack.registry.pid}),"
                f" replicas {', '.join(f'{r.name} (pid {r.pid})' for r in stack.replicas)}")
            sampling = anyio.CancelScope()
            group.start_soon(_sample, sampler, sampling)
            async with harness_pool(dsn) as pool, aiohttp.ClientSession() as session:
                result = await _attack_and_judge(params, stack, pool, session=session,
                                                 group=group, sampler=sampler,
                                                 sampling=sampling, say=say)
        finally:
            await stack.close()
            group.cancel_scope.cancel()
    return result


async def _sample(sampler: ProcSampler, scope: anyio.CancelScope) -> None:
    with scope:
        await sampler.run()


async def _attack_and_judge(
    params: ChaosParams, stack: Stack, pool: asyncpg.Pool[Any], *,
    session: aiohttp.ClientSession, group: anyio.abc.TaskGroup, sampler: ProcSampler,
    sampling: anyio.CancelScope, say: Say,
) -> ChaosResult:
    rng = random.Random(params.seed)
    publisher = Publisher(stack, pool, session, rng, say, events=params.events)
    faults = Faults(stack, pool, group, rng, say, kill_every=params.kill_every,
                    more_work=publisher.more_work)
    result = ChaosResult(faults=faults.log, published=publisher.done)
    say(f"faults for {params.fault_seconds:g} s; publishing {params.partitions} partitions"
        f" in bursts and {params.top_days} top-artists days")
    async with anyio.create_task_group() as attack:
        attack.start_soon(publisher.run, params.fault_seconds, params.days, params.top,
                          params.late_share)
        attack.start_soon(publisher.backfill, params.backfill)
        attack.start_soon(faults.run, params.fault_seconds)  # ends with every process back
    say("faults over, every process running: settling")
    result.settle_seconds = await _settle(params, pool, say)
    janitor = await _janitor_sweeps(params, stack, pool, say)
    codes = await _terminate_replicas(stack, say)
    sampling.cancel()
    left = await _jobs_left(stack.layout.root)
    await _judge(params, stack, pool, sampler=sampler, result=result, codes=codes)
    result.zero("job processes left once the replicas stopped", left)
    result.figures.append(("janitor wait after settling", f"{janitor:.1f} s"))
    return result


async def _settle(params: ChaosParams, pool: asyncpg.Pool[Any], say: Say) -> float | None:
    """Seconds until every partition is up to date (as far as the registry alone tells);
    None if the deadline passes first."""
    start = anyio.current_time()
    with anyio.move_on_after(params.settle_seconds):
        while True:
            stale = _stale(params, await read_revisions(pool))
            if not stale and not await backfills_not_done(pool, params.backfill):
                took = anyio.current_time() - start
                say(f"settled: every partition up to date, the backfill done, after"
                    f" {took:.1f} s")
                return took
            await anyio.sleep(SETTLE_POLL_SECONDS)
    say(f"NOT settled after {params.settle_seconds:g} s: {len(stale)} partitions stale,"
        f" e.g. {stale[0]}")
    return None


def _stale(params: ChaosParams, revisions: Sequence[Rev],
           tables: dict[str, str] | None = None) -> list[str]:
    small = Workflow(INPUT_ENDPOINT, OUTPUT_ENDPOINT, [*params.days, *params.backfill])
    top = Workflow(ECF_ENDPOINT, TOP_ARTISTS_ENDPOINT, params.top)
    return stale_partitions(revisions, small) + stale_partitions(revisions, top, tables)


async def _janitor_sweeps(params: ChaosParams, stack: Stack, pool: asyncpg.Pool[Any],
                          say: Say) -> float:
    """Give the janitors their time: until no staging is left and no run is left
    active (a janitor ends a run abandoned for a lease), or a lease and two sweeps (and
    a margin) have passed. Returns the seconds waited."""
    start = anyio.current_time()
    limit = params.lease_seconds + 2 * params.janitor_seconds + 5
    with anyio.move_on_after(limit):
        while True:
            uris = [r.uri for r in await read_revisions(pool)]
            left = unreferenced_outputs(stack.layout.outputs, uris)
            tables = await anyio.to_thread.run_sync(staging_tables, stack.layout.warehouse)
            active = [r for r in await read_runs(pool) if r.state in ACTIVE]
            if not left and tables == [] and not active:
                break
            await anyio.sleep(JANITOR_POLL_SECONDS)
    waited = anyio.current_time() - start
    say(f"janitor: waited {waited:.1f} s for staging to go")
    return waited


async def _terminate_replicas(stack: Stack, say: Say) -> dict[str, int | None]:
    codes: dict[str, int | None] = {}
    timeout = stack.config.shutdown_grace_seconds + EXIT_MARGIN_SECONDS

    async def terminate(name: str, index: int) -> None:
        codes[name] = await stack.replicas[index].terminate(timeout)

    async with anyio.create_task_group() as group:
        for index, replica in enumerate(stack.replicas):
            group.start_soon(terminate, replica.name, index)
    say("SIGTERM to every replica: exit codes "
        + ", ".join(f"{name} {code}" for name, code in sorted(codes.items())))
    return codes


async def _jobs_left(root: Path) -> list[str]:
    """Job processes still alive once every replica exited: none should outlive its
    owner. A moment is allowed for a killed group to be gone."""
    with anyio.move_on_after(JOBS_GONE_SECONDS):
        while await anyio.to_thread.run_sync(scan_job_processes, root):
            await anyio.sleep(JANITOR_POLL_SECONDS)
        return []
    return await anyio.to_thread.run_sync(scan_job_processes, root)


async def _judge(params: ChaosParams, stack: Stack, pool: asyncpg.Pool[Any], *,
                 sampler: ProcSampler, result: ChaosResult,
                 codes: dict[str, int | None]) -> None:
    layout = stack.layout
    await dump_tables(pool, layout.root)
    revisions, runs = await read_revisions(pool), await read_runs(pool)
    tables = await table_versions(layout.warehouse, params.top)
    executions = read_executions(layout.executions)
    facts = read_logs(replica.log for replica in stack.replicas)
    overlaps, lingering = beam_overlaps(sampler, facts, runs)
    endpoints = (OUTPUT_ENDPOINT, TOP_ARTISTS_ENDPOINT)
    small = Workflow(INPUT_ENDPOINT, OUTPUT_ENDPOINT, [*params.days, *params.backfill])
    staging = await anyio.to_thread.run_sync(staging_tables, layout.warehouse)

    result.zero("overlapping executions, small job (flock)",
                [f"pid {o['pid']} ran {o['input']} while pid {o['holder']} did"
                 for o in executions.overlaps])
    result.zero("overlapping executions, top-artists job (/proc)", overlaps)
    result.zero("partitions not up to date", _stale(params, revisions, tables))
    result.zero("input sets with two output revisions", duplicate_outputs(revisions, endpoints))
    result.zero("output revisions whose files do not match their lineage",
                mismatched_outputs(revisions, small, INPUT_FILE, [TOP_ARTISTS_ENDPOINT]))
    result.zero("output revisions no succeeded run records",
                unrecorded_outputs(revisions, runs, endpoints))
    result.zero("staging tables left", ["the warehouse stayed locked"] if staging is None
                else staging)
    result.zero("unreferenced output files and folders",
                unreferenced_outputs(layout.outputs, [r.uri for r in revisions]))
    result.zero("runs not final (running, publishing)",
                [f"{r.id} {r.family} {r.partition} is {r.state}" for r in runs
                 if r.state in ACTIVE])
    result.zero("daemon exits the script did not cause",
                [e for replica in stack.replicas for e in replica.unexpected_exits])
    result.zero("registry service exits the script did not cause",
                stack.registry.unexpected_exits)
    result.zero("replicas not exiting 0 on SIGTERM",
                [f"{name}: {code}" for name, code in codes.items() if code != 0])
    result.zero("publishes that never went through", result.published.failures)
    result.zero("backfills not done", await backfills_not_done(pool, params.backfill)
                if result.published.backfill else ["the backfill was never started"])
    result.zero("required faults not dealt", _missing_faults(result.faults))

    inputs = Counter(r.endpoint for r in revisions)
    result.claim_to_start = facts.claim_to_start
    result.figures += _figures(result, runs, executions, inputs=inputs,
                               beam_launches=facts.beam_launches, lingering=lingering,
                               sampler=sampler)
    result.figures.append(("notable log events", ", ".join(
        f"{name!r} {count}" for name, count in sorted(facts.notable.items()))))
    result.details["run failures, by error"] = [
        f"{count} x {error}" for error, count in facts.failures.most_common()]
    result.details["mid-publication runs, as they ended"] = [
        f"{r.id} {r.family}({r.partition}): {r.state}, attempt {r.attempt}, outputs"
        f" {dict(r.outputs)}" for r in runs if r.id in result.faults.mid_publication_runs]
    result.details["runs that failed at least once (their last error)"] = [
        f"{r.family}({r.partition}) {r.state}, {r.failures} failures: {r.error}"
        for r in runs if r.failures]


def _missing_faults(faults: FaultLog) -> list[str]:
    missing = []
    if faults.replica_kills < 1:
        missing.append("no replica SIGKILLed")
    if faults.replica_pauses < 1:
        missing.append("no replica paused past its lease")
    if not faults.mid_publication:
        missing.append("no replica paused mid-publication")
    if faults.registry_kills < REGISTRY_KILLS:
        missing.append(f"registry service SIGKILLed {faults.registry_kills} times, not 2")
    if not faults.connections_cut:
        missing.append("no PostgreSQL connections cut")
    return missing


def _figures(result: ChaosResult, runs: Sequence[RunRow], executions: Executions, *,
             inputs: Counter[str], beam_launches: int, lingering: int,
             sampler: ProcSampler) -> list[tuple[str, str]]:
    faults, published = result.faults, result.published
    starts, ends, cut_short = executions.starts, executions.ends, executions.cut_short
    states = Counter(r.state for r in runs)
    latency = [s * 1000 for s in result.claim_to_start]
    return [
        ("faults", f"{faults.replica_kills} replica SIGKILLs, {faults.replica_pauses} SIGSTOPs"
                   f" past the lease, {len(faults.mid_publication)} mid-publication"
                   f" ({faults.mid_publication_tries} tries), {faults.registry_kills} registry"
                   f" SIGKILLs, connections cut {faults.connections_cut}"),
        ("published", f"{published.inputs} inputs, {published.late} late revisions"
                      f" ({published.late_in_flight} aimed at runs in flight),"
                      f" {published.sample_days} top-artists days + {published.sample_late}"
                      f" late ({published.sample_late_in_flight} in flight),"
                      f" {published.retries} retried sends"),
        ("small job executions", f"{len(starts)} started, {len(ends)} ended,"
                                 f" {cut_short} cut short"),
        ("small job re-executions", f"{len(starts) - inputs[INPUT_ENDPOINT]}"
                                    f" ({len(starts)} executions - {inputs[INPUT_ENDPOINT]}"
                                    " input states)"),
        ("top-artists re-executions", f"{beam_launches - inputs[ECF_ENDPOINT]}"
                                      f" ({beam_launches} launches -"
                                      f" {inputs[ECF_ENDPOINT]} input states)"),
        ("superseded top-artists jobs seen ending beside their successor", str(lingering)),
        ("runs by state", ", ".join(f"{k} {v}" for k, v in sorted(states.items()))),
        ("runs that failed at least once", str(sum(1 for r in runs if r.failures))),
        ("highest attempt of a run", str(max((r.attempt for r in runs), default=0))),
        ("time to settle", "not settled" if result.settle_seconds is None
                           else f"{result.settle_seconds:.1f} s"),
        ("claim-to-start p50 / p90", f"{percentile(latency, 0.5):.1f} ms /"
                                     f" {percentile(latency, 0.9):.1f} ms"
                                     f" ({len(latency)} launches)"),
        ("/proc samples", f"{sampler.samples} ({len(sampler.groups)} top-artists job groups"
                          " seen)"),
    ]
