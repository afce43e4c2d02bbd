"""A top-artists day on the emulators whose ``charon run`` is SIGKILLed while it publishes.

A fault-injecting proxy stands between charon (and its Beam job) and bqemulator. It
lets one publication request through, so that it takes effect, holds its answer back,
and the test kills charon right then: after the table's move was asked (the copy job
exists, charon never heard so) or after the staging table's drop. The next
``charon run`` must finish that publication, not start the run again: one copy job,
the final table holding what the job wrote, no staging table left, one revision
pointing at the same rows.
"""

from __future__ import annotations

import json
import re
import signal
from datetime import date
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.storage.gcs import GcsStorage
from orchestrator.stores.warehouse.bigquery import BigQueryWarehouse
from orchestrator.tablespec import TableSpec
from tests.acceptance.conftest import CHARON
from tests.support.emulators import (  # noqa: F401  (pytest finds fixtures by their imported names)
    BUCKET,
    Emulator,
    bigquery_emulator,
    charon_on_emulators,
    clear_bigquery,
    gcs_emulator,
)
from tests.support.fault_proxy import FaultInjectingProxy, Forwarded, serving

pytestmark = pytest.mark.slow

DAY = date(2018, 10, 31)
OUTPUT = "di.golden.path.charon.top_artists"
FINAL = TableSpec("scio-playground", "charon", "top_artists_daily20181031")
RUN = ("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY.isoformat(),
       "--top-n", "20", "--local-scheduler")
STAGING_DATASET = "_incoming_EU"


def moves_the_table(request: Forwarded) -> bool:
    return (request.method == "POST" and re.search(r"/jobs(\?|$)", request.path) is not None
            and b'"copy"' in request.body)


def drops_the_staging_table(request: Forwarded) -> bool:
    return request.method == "DELETE" and f"/datasets/{STAGING_DATASET}/tables/" in request.path


def after_the_move(forwarded: list[Forwarded]) -> bool:
    return moves_the_table(forwarded[-1])


def after_the_staging_drop(forwarded: list[Forwarded]) -> bool:
    # Only the drop after the move: a run may drop staging tables it finds unowned first.
    return drops_the_staging_table(forwarded[-1]) and any(map(moves_the_table, forwarded))


KILLED_AFTER = {"the move was asked": after_the_move,
                "the staging table was dropped": after_the_staging_drop}


def cloud_env(home: Path, bigquery: Emulator, gcs: Emulator,
              proxy: FaultInjectingProxy) -> dict[str, str]:
    return {**charon_on_emulators(home, bigquery, gcs),
            "BIGQUERY_EMULATOR_HOST": proxy.host,  # charon and its job go through it
            # Longer than a slow machine ever stalls a renewal: with 1 s, a resumed run
            # there once lost its lease while publishing, and stopped (rightly).
            "CHARON_ENGINE__LEASE_SECONDS": "60"}


def events(log: str) -> list[str]:
    """The events of charon's JSON log lines."""
    found = []
    for line in log.splitlines():
        try:
            found.append(str(json.loads(line)["event"]))
        except (ValueError, KeyError, TypeError):
            continue
    return found


async def run_killed_when_held(env: dict[str, str], proxy: FaultInjectingProxy,
                               log: Path) -> None:
    """``charon run``, SIGKILLed the moment the proxy holds an answer back."""
    with log.open("wb") as stderr:
        process: Process = await anyio.open_process([CHARON, *RUN], env=env, stderr=stderr)
        async with process:
            with anyio.move_on_after(240):
                async with anyio.create_task_group() as group:
                    async def ended_first() -> None:
                        await process.wait()
                        group.cancel_scope.cancel()

                    group.start_soon(ended_first)
                    await proxy.held.wait()
                    group.cancel_scope.cancel()
            process.send_signal(signal.SIGKILL)
            await process.wait()
    proxy.release()
    if not proxy.held.is_set():
        raise AssertionError("charon ended, or took 240 s, before publishing:\n"
                             + await anyio.Path(log).read_text())


async def published_lines(home: Path, gcs: Emulator) -> list[str]:
    """The output's revisions (there must be one), and the lines of the file it points at."""
    registry = await SqliteRegistry.open(home / "registry.sqlite")
    try:
        [revision] = await registry.list(OUTPUT, DAY.isoformat())
    finally:
        await registry.aclose()
    storage = await GcsStorage.open(api_root=gcs.url)
    try:
        return [line async for line in storage.read_lines(f"{revision.uri}/part")]
    finally:
        await storage.aclose()


async def warehouse_state(bigquery: Emulator) -> tuple[list[str], list[object]]:
    """The final table's rows as the text output spells them, and the staging tables."""
    warehouse = await BigQueryWarehouse.open(
        project="scio-playground", location="EU", api_root=f"{bigquery.url}/bigquery/v2",
        list_concurrency=1,  # bqemulator: one table read at a time (see test_cloud_adapters)
    )
    try:
        rows = sorted(await warehouse.read_rows(FINAL), key=lambda row: int(str(row["rank"])))
        staging = await warehouse.list_tables(FINAL.project, STAGING_DATASET)
    finally:
        await warehouse.aclose()
    return [f"{r['artist_gid']}\t{r['artist_name']}\t{r['streams']}" for r in rows], list(staging)


@pytest.mark.parametrize("killed_after", KILLED_AFTER)
async def test_a_run_killed_while_publishing_is_finished_once_by_the_next(
    killed_after: str, tmp_path: Path, bigquery_emulator: Emulator,  # noqa: F811
    gcs_emulator: Emulator,  # noqa: F811
) -> None:
    clear_bigquery(bigquery_emulator)
    proxy = FaultInjectingProxy(bigquery_emulator.url, hold=KILLED_AFTER[killed_after])
    async with serving(proxy):
        env = cloud_env(tmp_path / "home", bigquery_emulator, gcs_emulator, proxy)
        made = await anyio.run_process(
            [CHARON, "sample-data", "--date", DAY.isoformat(), "--events", "3000"],
            env=env, check=False)
        assert made.returncode == 0, (made.stdout + made.stderr).decode()
        first_log = tmp_path / "first.log"
        await run_killed_when_held(env, proxy, first_log)
        assert events(await anyio.Path(first_log).read_text()).count("run started") == 1

        # No wait for its lease: a killed process's run is taken over at once on its own
        # machine.
        again = await anyio.run_process([CHARON, *RUN], env=env, check=False)
        log = again.stderr.decode()
        assert again.returncode == 0, log

    assert "run resumed" in events(log), log
    assert "run started" not in events(log), log  # the Beam job was not run again
    assert len([f for f in proxy.forwarded if moves_the_table(f)]) == 1
    lines = await published_lines(tmp_path / "home", gcs_emulator)
    table_lines, staging = await warehouse_state(bigquery_emulator)
    assert len(lines) == 20
    assert table_lines == lines
    assert staging == []
