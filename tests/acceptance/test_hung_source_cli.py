"""A paused warehouse holds up only the days that read it.

A real ``charon daemon`` watches two workflows: one reads a BigQuery table a day (a
bqemulator of this test's own), the other a registry partition a day. The emulator is
paused with SIGSTOP before the daemon starts: its port still takes connections, and
nothing answers them, as with a frozen server or a stuck proxy. The registry days must
run within a few lookup timeouts (the daemon's evaluators, shared by both workflows,
each waited for BigQuery's client timeouts and retries, minutes, before), and the
daemon's status says the warehouse is down; once the emulator runs again and a table
appears, its day runs too, without a restart.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.stores.warehouse.base import Column
from orchestrator.stores.warehouse.bigquery import BigQueryWarehouse
from orchestrator.tablespec import TableSpec
from tests.acceptance.conftest import (
    API_TOKEN,
    CHARON,
    Cli,
    act,
    importing_tests,
    reap,
    revisions,
    start,
    wait_until,
)
from tests.support.emulators import Emulator, start_bigquery
from tests.support.two_sources_tasks import DATASET, PLAYS, PROJECT, table_of

pytestmark = pytest.mark.slow

DAYS = ("2020-01-01", "2020-01-02", "2020-01-03")
LOOKUP_TIMEOUT = 3
REGISTRY_DAYS_WITHIN = 30.0
"""Seconds: a few lookup timeouts, and far less than one BigQuery call's retries."""


@pytest.fixture
def bigquery(tmp_path: Path) -> Iterator[Emulator]:
    yield from start_bigquery(tmp_path)


def config(tmp_path: Path) -> Path:
    path = tmp_path / "charon.toml"
    workflows = [("tables", "FromTable"), ("plays", "FromRegistry")]
    path.write_text(
        f"[daemon]\nmax_backoff_seconds = 2\n\n[engine]\n"
        f"lookup_timeout_seconds = {LOOKUP_TIMEOUT}\n\n"
        '[warehouse]\nkind = "bigquery"\nproject = "scio-playground"\n'
        + "".join(
            f'\n[[workflows]]\nname = "{name}"\nmodule = "tests.support.two_sources_tasks"\n'
            f'task = "{task}"\nstart = "{DAYS[0]}"\nend = "{DAYS[-1]}"\n'
            for name, task in workflows)
    )
    return path


def status(url: str, query: str) -> dict[str, Any]:
    """The test's own daemon's ``/status?<query>`` (on the loopback)."""
    with urllib.request.urlopen(f"{url}/status?{query}", timeout=10) as answer:  # noqa: S310
        found: dict[str, Any] = json.load(answer)
    return found


def warehouse_health(url: str) -> dict[str, object]:
    health: dict[str, object] = status(url, "limit=1")["sources"]["warehouse"]
    return health


async def create_table(bigquery: Emulator, day: str) -> None:
    warehouse = await BigQueryWarehouse.open(
        project=PROJECT, location="EU", api_root=f"{bigquery.url}/bigquery/v2")
    try:
        await warehouse.create_table(TableSpec(PROJECT, DATASET, table_of(day)),
                                     [Column("plays", "INT64")], [(1,)])
    finally:
        await warehouse.aclose()


def test_a_paused_warehouse_holds_up_only_the_days_that_read_it(
        tmp_path: Path, bigquery: Emulator) -> None:
    cli = Cli(tmp_path / "home")
    for day in DAYS:
        folder = cli.home / "storage" / "inputs" / day
        folder.mkdir(parents=True)
        (folder / "part").write_text("plays\n")
        assert cli("registry", "publish", PLAYS, day, str(folder)).returncode == 0
    os.kill(bigquery.process.pid, signal.SIGSTOP)
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path)),
           "BIGQUERY_EMULATOR_HOST": bigquery.host}
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        wait_until(lambda: all(revisions(cli, "two.sources.from.registry", day) == 1
                               for day in DAYS),
                   REGISTRY_DAYS_WITHIN, "the registry days to run", log)
        said = log.read_text()
        assert "source not answering" in said
        assert "the warehouse is not answering" in said
        assert all(revisions(cli, "two.sources.from.table", day) == 0 for day in DAYS)
        # Its own poll of the tables is bounded the same way: the status says so.
        wait_until(lambda: not warehouse_health(url)["up"], REGISTRY_DAYS_WITHIN,
                   "the status to say the warehouse is down", log)
        assert "the warehouse" in str(warehouse_health(url)["last_error"])

        os.kill(bigquery.process.pid, signal.SIGCONT)
        anyio.run(create_table, bigquery, DAYS[0])
        wait_until(lambda: revisions(cli, "two.sources.from.table", DAYS[0]) == 1,
                   60, "the table's day to run once the warehouse answers", log)
        assert "source answering again" in log.read_text()
        wait_until(lambda: warehouse_health(url)["up"] is True, 60,
                   "the status to say the warehouse is up again", log)
    finally:
        os.kill(bigquery.process.pid, signal.SIGCONT)
        reap(daemon)


def rerun(url: str, task: str) -> int:
    """Ask the daemon's API to re-run the newest run of ``task``; its HTTP status."""
    [run_id] = [run["id"] for run in status(url, "limit=1")["runs"] if run["task"] == task]
    return act(url, f"/api/runs/{run_id}/rerun", {})[0]


def day_error(url: str) -> object:
    """The table workflow's first day's latest error, as ``/status`` shows it."""
    return next(day["error"] for day in status(url, "workflow=tables")["partitions"]
                if day["partition"] == DAYS[0])


def test_a_re_run_asked_while_the_warehouse_is_silent_runs_once_it_answers(
        tmp_path: Path, bigquery: Emulator) -> None:
    """The re-run's evaluation fails (the table cannot be looked up): the day keeps the
    re-run, and runs it once the warehouse answers, rather than serve the request with
    an evaluation that runs nothing."""
    cli = Cli(tmp_path / "home")
    anyio.run(create_table, bigquery, DAYS[0])
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path)),
           "BIGQUERY_EMULATOR_HOST": bigquery.host, "CHARON_API_TOKEN": API_TOKEN}
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        wait_until(lambda: revisions(cli, "two.sources.from.table", DAYS[0]) == 1, 60,
                   "the table's day to run", log)
        os.kill(bigquery.process.pid, signal.SIGSTOP)
        assert rerun(url, f"FromTable(date={DAYS[0]})") == 202
        wait_until(lambda: "the warehouse is not answering" in str(day_error(url)),
                   REGISTRY_DAYS_WITHIN, "the re-run's evaluation to fail", log)
        os.kill(bigquery.process.pid, signal.SIGCONT)
        wait_until(lambda: revisions(cli, "two.sources.from.table", DAYS[0]) == 2, 60,
                   "the re-run to run once the warehouse answers", log)
    finally:
        os.kill(bigquery.process.pid, signal.SIGCONT)
        reap(daemon)


BACKFILL = {"workflow": "tables", "interval": "2019-12-01-2019-12-03"}
BACKFILL_DAYS = ("2019-12-01", "2019-12-02")


def test_a_backfill_through_the_daemon_rides_out_a_silent_warehouse(
        tmp_path: Path, bigquery: Emulator) -> None:
    """Its days' evaluations fail while the warehouse is silent: they are tried again
    with the daemon's backoff, and the backfill ends done once it answers, rather than
    failed, to be started again by hand."""
    cli = Cli(tmp_path / "home")
    for day in BACKFILL_DAYS:
        anyio.run(create_table, bigquery, day)
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path)),
           "BIGQUERY_EMULATOR_HOST": bigquery.host, "CHARON_API_TOKEN": API_TOKEN}
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        os.kill(bigquery.process.pid, signal.SIGSTOP)
        code, started = act(url, "/api/backfills", BACKFILL)
        assert (code, started["total"]) == (202, len(BACKFILL_DAYS))
        wait_until(lambda: "the warehouse is not answering" in log.read_text(),
                   REGISTRY_DAYS_WITHIN, "the backfill's days to fail", log)
        os.kill(bigquery.process.pid, signal.SIGCONT)
        path = f"/api/backfills/{started['id']}"
        wait_until(lambda: act(url, path)[1]["state"] != "running", 60,
                   "the backfill to end", log)
        ended = act(url, path)[1]
        assert (ended["state"], ended["done"], ended["failed"]) == (
            "succeeded", len(BACKFILL_DAYS), 0)
        assert all(revisions(cli, "two.sources.from.table", day) == 1 for day in BACKFILL_DAYS)
    finally:
        os.kill(bigquery.process.pid, signal.SIGCONT)
        reap(daemon)
