"""A backfill run by a real ``charon daemon`` outlives the daemon.

The engine allows one run at once and the backfill three days at once, so as the daemon
stops, one of the backfill's runs goes on and the others wait in line for its place.
Stopped (SIGTERM, a grace shorter than the run) or killed (SIGKILL) then, the daemon
leaves the backfill to be resumed: started again through the API of a new daemon, it is
the same backfill, and every day ends published once.
"""

from __future__ import annotations

import signal
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
RUN_SECONDS = "4"
"""Long enough for the stop to come while the backfill's first run goes on."""
STOPPED_WITHIN = 20


def config(tmp_path: Path) -> Path:
    path = tmp_path / "charon.toml"
    path.write_text(
        "[engine]\nmax_concurrent_runs = 1\n\n[daemon]\nshutdown_grace_seconds = 0\n\n"
        '[[workflows]]\nname = "daily"\nmodule = "tests.support.backfill_tasks"\n'
        f'task = "DailyCount"\nstart = "{WATCHED}"\nend = "{WATCHED}"\n'
    )
    return path


def runs_of(runs_log: Path) -> list[str]:
    return runs_log.read_text().split() if runs_log.exists() else []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
def test_a_backfill_with_runs_in_line_resumes_in_the_next_daemon(
        tmp_path: Path, stop: signal.Signals) -> None:
    cli = Cli(tmp_path / "home")
    runs_log = tmp_path / "runs.log"
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path)),
           "CHARON_API_TOKEN": API_TOKEN, "BACKFILL_RUNS_LOG": str(runs_log),
           "BACKFILL_RUN_SECONDS": RUN_SECONDS}
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        wait_until(lambda: revisions(cli, ENDPOINT, WATCHED) == 1, 60,
                   "the watched day to run", log)
        code, started = act(url, "/api/backfills", BACKFILL)
        assert code == 202
        assert started["total"] == len(DAYS)
        wait_until(lambda: len(runs_of(runs_log)) > 1, 30, "the backfill's first run", log)
        in_flight = runs_of(runs_log)[1:]
        assert len(in_flight) == 1  # the others wait for its place
        daemon.send_signal(stop)
        daemon.wait(timeout=STOPPED_WITHIN)
        if stop is signal.SIGTERM:
            assert daemon.returncode == 0, log.read_text()[-3000:]
    finally:
        reap(daemon)
    assert runs_of(runs_log) == [WATCHED, *in_flight]  # nothing ran past the stop
    assert all(revisions(cli, ENDPOINT, day) == 0 for day in DAYS)

    log = tmp_path / "daemon-again.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        code, resumed = act(url, "/api/backfills", BACKFILL)
        assert code == 202
        assert resumed["id"] == started["id"]
        wait_until(lambda: act(url, f"/api/backfills/{started['id']}")[1]["state"]
                   != "running", 60, "the resumed backfill to end", log)
        ended = act(url, f"/api/backfills/{started['id']}")[1]
        assert (ended["state"], ended["done"], ended["failed"]) == ("succeeded", len(DAYS), 0)
    finally:
        reap(daemon)
    assert all(revisions(cli, ENDPOINT, day) == 1 for day in DAYS)
    ran = runs_of(runs_log)
    # The run stopped in flight ran again from the start; every other day ran once.
    assert sorted(ran) == sorted([WATCHED, *in_flight, *DAYS])

