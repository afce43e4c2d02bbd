"""Two charon processes sharing one PostgreSQL state store run each partition once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio
import anyio.to_thread
import asyncpg

from tests.acceptance.conftest import CHARON, Cli

ROOT = Path(__file__).resolve().parents[2]
TASKS = 300


async def run_noop_tasks(charon: Cli, dsn: str) -> subprocess.CompletedProcess[str]:
    env = {**charon.env, "CHARON_STATE__KIND": "postgres", "CHARON_STATE__DSN": dsn,
           "PYTHONPATH": str(ROOT), "BENCH_TASKS": str(TASKS)}

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run([CHARON, "run", "--module", "bench.noop_tasks", "Thousand"],
                              env=env, capture_output=True, text=True, timeout=120,
                              check=False)

    return await anyio.to_thread.run_sync(call)


async def test_two_processes_on_one_state_store_run_every_partition_once(
    charon: Cli, postgres_dsn: str,
) -> None:
    results: list[subprocess.CompletedProcess[str]] = []

    async def one() -> None:
        results.append(await run_noop_tasks(charon, postgres_dsn))

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        group.start_soon(one)
    done = [line for result in results for line in result.stdout.splitlines()
            if line.startswith("Noop(") and line.endswith(": ran")]
    assert len(done) == len(set(done)) == TASKS, [r.stderr[-2000:] for r in results]

    connection = await asyncpg.connect(postgres_dsn)
    try:
        runs = await connection.fetch("SELECT state, attempt FROM charon_state.runs")
    finally:
        await connection.close()
    assert len(runs) == TASKS
    assert {(row["state"], row["attempt"]) for row in runs} == {("succeeded", 1)}

    again = await run_noop_tasks(charon, postgres_dsn)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
