"""A backfill the daemon's API accepted is not lost with the daemon running it.

Two real ``charon daemon`` replicas share one PostgreSQL (state and registry). Each
allows one run at once, and the backfill three days at once, so as the replica running
it stops, one of its runs goes on and the others wait in line for its place. Stopped
(SIGTERM, a grace shorter than the run) or killed (SIGKILL) then, it leaves the
backfill to the other replica, which takes it over by itself, and every day ends
published once. Paused (SIGSTOP) past the replica timeout instead, it is thought gone
and its backfill taken over the same way; woken, it finds that out at its next write
to the backfill's record, and stops running it. Cancelled through either replica's
API, it is stopped by its runner, no other day of it begins, and nobody takes it over,
even once its runner is killed.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

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
from tests.support.backfill_tasks import ENDPOINT

pytestmark = pytest.mark.slow

WATCHED = "2020-01-01"
BACKFILL = {"workflow": "daily", "interval": "2019-12-01-2019-12-05", "max_parallel": 3}
DAYS = ("2019-12-01", "2019-12-02", "2019-12-03", "2019-12-04")
RUN_SECONDS = "3"
"""Long enough for the stop to come while the backfill's first run goes on."""
REPLICA_TIMEOUT = 3
"""Seconds: a replica silent this long is gone (daemon.replica_timeout_seconds)."""
LEASE = 6
"""Seconds: how long the paused replica's run holds up the other."""
TAKEN_OVER_WITHIN = 30


def config(tmp_path: Path) -> Path:
    path = tmp_path / "charon.toml"
    path.write_text(
        f"[engine]\nmax_concurrent_runs = 1\nlease_seconds = {LEASE}\n\n"
        "[daemon]\nshutdown_grace_seconds = 0\n"
        f"replica_timeout_seconds = {REPLICA_TIMEOUT}\n\n"
        '[[workflows]]\nname = "daily"\nmodule = "tests.support.backfill_tasks"\n'
        f'task = "DailyCount"\nstart = "{WATCHED}"\nend = "{WATCHED}"\n'
    )
    return path


def runs_of(runs_log: Path) -> list[str]:
    return runs_log.read_text().split() if runs_log.exists() else []


@dataclass
class Pair:
    """Two replicas on one PostgreSQL, the first running a backfill with its first run
    going: their processes, addresses and logs, the backfill and that run's day."""

    cli: Cli
    runs_log: Path
    first: subprocess.Popen[str]
    url: str
    first_log: Path
    other: subprocess.Popen[str]
    other_url: str
    other_log: Path
    backfill: str
    in_flight: list[str]


@contextmanager
def two_replicas(tmp_path: Path, postgres_dsn: str) -> Iterator[Pair]:
    on_postgres = {"CHARON_STATE__KIND": "postgres", "CHARON_STATE__DSN": postgres_dsn,
                   "CHARON_REGISTRY__KIND": "postgres", "CHARON_REGISTRY__DSN": postgres_dsn}
    cli = Cli(tmp_path / "home", on_postgres)
    runs_log = tmp_path / "runs.log"
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path)),
           "CHARON_API_TOKEN": API_TOKEN, "BACKFILL_RUNS_LOG": str(runs_log),
           "BACKFILL_RUN_SECONDS": RUN_SECONDS}
    first_log, other_log = tmp_path / "first.log", tmp_path / "other.log"
    first, url = start([CHARON, "daemon", "--port", "0"], env, first_log,
                       "daemon listening on ")
    other, other_url = start([CHARON, "daemon", "--port", "0"], env, other_log,
                             "daemon listening on ")
    try:
        wait_until(lambda: revisions(cli, ENDPOINT, WATCHED) == 1, 60,
                   "the watched day to run", first_log)
        code, started = act(url, "/api/backfills", BACKFILL)
        assert (code, started["total"]) == (202, len(DAYS))
        assert started["runner"] == act(url, "/status?limit=1")[1]["owner"]
        wait_until(lambda: len(runs_of(runs_log)) > 1, 30, "the backfill's first run",
                   first_log)
        in_flight = runs_of(runs_log)[1:]
        assert len(in_flight) == 1  # the others wait for its place
        yield Pair(cli, runs_log, first, url, first_log, other, other_url, other_log,
                   started["id"], in_flight)
    finally:
        reap(first)
        reap(other)


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP],
                         ids=["stopped", "killed", "paused"])
def test_a_backfill_whose_replica_is_gone_is_taken_over_and_each_day_published_once(
        tmp_path: Path, postgres_dsn: str, stop: signal.Signals) -> None:
    with two_replicas(tmp_path, postgres_dsn) as pair:
        first, first_log, other_log, other_url = (
            pair.first, pair.first_log, pair.other_log, pair.other_url)
        first.send_signal(stop)
        if stop is not signal.SIGSTOP:
            first.wait(timeout=20)
        if stop is signal.SIGTERM:
            assert first.returncode == 0, first_log.read_text()[-3000:]

        path = f"/api/backfills/{pair.backfill}"
        wait_until(lambda: "backfill taken over" in other_log.read_text(),
                   TAKEN_OVER_WITHIN, "the other replica to take the backfill over", other_log)
        if stop is signal.SIGSTOP:
            first.send_signal(signal.SIGCONT)
            wait_until(lambda: f"backfill {pair.backfill} is run by replica" in
                       first_log.read_text(), 30, "the woken replica to stop the backfill",
                       first_log)
            assert first.poll() is None  # the daemon goes on
        wait_until(lambda: act(other_url, path)[1]["state"] != "running", 60,
                   "the backfill to end", other_log)
        ended = act(other_url, path)[1]
        assert (ended["state"], ended["done"], ended["failed"]) == ("succeeded", len(DAYS), 0)
        assert ended["runner"] == act(other_url, "/status?limit=1")[1]["owner"]
    assert all(revisions(pair.cli, ENDPOINT, day) == 1 for day in DAYS)
    # The run stopped in flight ran again from its start; every other day ran once.
    ran = Counter(runs_of(pair.runs_log))
    assert ran == Counter([WATCHED, *DAYS]) + Counter(pair.in_flight) or (
        # Woken before its lease ran out, the paused replica may finish its run itself.
        stop is signal.SIGSTOP and ran == Counter([WATCHED, *DAYS]))


def test_a_cancelled_backfill_ends_its_day_going_on_and_nobody_takes_it_over(
        tmp_path: Path, postgres_dsn: str) -> None:
    with two_replicas(tmp_path, postgres_dsn) as pair:
        cancel = f"/api/backfills/{pair.backfill}/cancel"
        code, cancelled = act(pair.other_url, cancel, {})  # from any replica
        assert (code, cancelled["state"]) == (200, "cancelled")
        wait_until(lambda: '"backfill stopped"' in pair.first_log.read_text(), 30,
                   "its runner to stop", pair.first_log)
        pair.first.kill()
        pair.first.wait(timeout=10)
        # Past the dead replica's timeout and two looks for a backfill to take over.
        time.sleep(REPLICA_TIMEOUT + 2 * REPLICA_TIMEOUT / 3 + 1)
        assert "backfill taken over" not in pair.other_log.read_text()
        ended = act(pair.other_url, f"/api/backfills/{pair.backfill}")[1]
        assert (ended["state"], ended["done"]) == ("cancelled", 0)
    assert runs_of(pair.runs_log) == [WATCHED, *pair.in_flight]  # no other day began
    assert all(revisions(pair.cli, ENDPOINT, day) == 0 for day in DAYS
               if day not in pair.in_flight)
