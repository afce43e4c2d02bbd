"""The reactive path end to end, every piece a subprocess.

`charon registry serve` (notifying the daemon by signed webhook), `charon daemon`
watching the top-artists workflow, and publishers using the registry API: the day
runs when its inputs arrive, re-runs with new lineage on a late revision, and the
daemon stops cleanly on SIGTERM.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestrator.stores.state.claims import NEIGHBOUR_RECHECK
from tests.acceptance.conftest import (
    CHARON,
    Cli,
    free_port,
    importing_tests,
    popen,
    reap,
    resumed_attempts,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

TOKEN = "acceptance-token"
SECRET = "acceptance-webhook-secret"
DAY = "2018-10-31"
ECF = "di.golden.path.EndContentFactXT2"
OUTPUT = "di.golden.path.charon.top_artists"


@dataclass(frozen=True)
class Stack:
    cli: Cli
    registry_url: str
    daemon_url: str
    daemon: subprocess.Popen[str]
    daemon_log: Path

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = self.cli(*args)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def get(self, url: str) -> dict[str, object]:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # loopback
            answer: dict[str, object] = json.load(response)
            return answer

    def latest(self, endpoint: str) -> dict[str, object]:
        return self.get(f"{self.registry_url}/v1/endpoints/{endpoint}/partitions/{DAY}/latest")

    def output_revisions(self) -> list[list[str]]:
        lines = self.cli("registry", "ls", OUTPUT, DAY).stdout.splitlines()[1:]
        return [line.split() for line in lines]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    home = tmp_path / "home"
    config = tmp_path / "charon.toml"
    config.write_text(
        '[[workflows]]\nname = "top_artists"\nmodule = "jobs.top_artists"\n'
        f'task = "TopArtistsJob"\nparams = {{ top_n = 10 }}\nstart = "{DAY}"\nend = "{DAY}"\n'
    )
    daemon_port = free_port()
    base = Cli(home).env
    registry, registry_url = start(
        [CHARON, "registry", "serve", "--port", "0"],
        {**base, "CHARON_REGISTRY_TOKEN": TOKEN, "CHARON_WEBHOOK_SECRET": SECRET,
         "CHARON_REGISTRY_SERVICE__SUBSCRIBERS":
             f"http://127.0.0.1:{daemon_port}/hooks/partitions"},
        tmp_path / "registry.log", "registry serving on ",
    )
    client_env = {"CHARON_REGISTRY__KIND": "http", "CHARON_REGISTRY__URL": registry_url,
                  "CHARON_REGISTRY_TOKEN": TOKEN}
    daemon_log = tmp_path / "daemon.log"
    daemon, daemon_url = start(
        [CHARON, "daemon", "--port", str(daemon_port)],
        {**base, **client_env, "CHARON_CONFIG": str(config), "CHARON_WEBHOOK_SECRET": SECRET,
         "CHARON_DAEMON__POLL_INTERVAL_MS": "200"},
        daemon_log, "daemon listening on ",
    )
    cli = Cli(home, client_env)
    try:
        yield Stack(cli, registry_url, daemon_url, daemon, daemon_log)
    finally:
        for process in (daemon, registry):
            reap(process)


def test_a_day_fires_reruns_on_late_data_and_stops_cleanly(stack: Stack) -> None:
    log = stack.daemon_log
    first = json.loads(stack.run("sample-data", "--date", DAY, "--events", "3000",
                                 "--json").stdout)
    wait_until(lambda: len(stack.output_revisions()) == 1, 120, "the first run", log)
    latest = stack.latest(OUTPUT)
    assert first["revision"] in latest["lineage"]  # type: ignore[operator]
    assert Path(str(latest["uri"]), "part").read_text().count("\n") == 10

    def final_rows() -> int:
        # The daemon opens the file between polls; DuckDB lets one process in at a time.
        path = stack.cli.home / "warehouse" / "scio-playground.duckdb"
        for _ in range(100):
            try:
                with duckdb.connect(str(path), read_only=True) as connection:
                    row = connection.execute(
                        "SELECT count(*) FROM charon.top_artists_daily20181031"
                    ).fetchone()
                    return int(row[0]) if row else 0
            except duckdb.IOException:
                time.sleep(0.1)
        pytest.fail("the warehouse file stayed locked")

    assert final_rows() == 10

    late = json.loads(stack.run("sample-data", "--date", DAY, "--events", "3000", "--seed",
                                "7", "--new-revision", "--json").stdout)
    wait_until(lambda: len(stack.output_revisions()) == 2, 120, "the re-run", log)
    newest = stack.latest(OUTPUT)
    assert late["revision"] in newest["lineage"]  # type: ignore[operator]
    assert first["revision"] not in newest["lineage"]  # type: ignore[operator]

    status = stack.get(f"{stack.daemon_url}/status")
    runs = status["runs"]
    assert isinstance(runs, list)
    assert [r["state"] for r in runs if r["task"].startswith("TopArtistsJob")] == [
        "succeeded", "succeeded"
    ]
    with urllib.request.urlopen(f"{stack.daemon_url}/metrics", timeout=10) as response:  # noqa: S310
        metrics = response.read().decode()
    assert 'charon_launches_total{workflow="top_artists"} 2' in metrics

    stack.daemon.send_signal(signal.SIGTERM)
    assert stack.daemon.wait(timeout=60) == 0
    events = [json.loads(line) for line in log.read_text().splitlines()
              if line.startswith("{")]
    assert any(e.get("event") == "daemon stopped" for e in events)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_as_soon_as_it_listens_stops_it_cleanly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    """SIGHUP too (a closed terminal): its default action would end it on the spot."""
    daemon, _url = start([CHARON, "daemon", "--port", "0"], Cli(tmp_path / "home").env,
                         tmp_path / "daemon.log", "daemon listening on ")
    try:
        daemon.send_signal(signum)
        assert daemon.wait(timeout=30) == 0, (tmp_path / "daemon.log").read_text()[-2000:]
    finally:
        reap(daemon)
    assert '"daemon stopped"' in (tmp_path / "daemon.log").read_text()


def test_under_nohup_a_hangup_does_not_stop_it(tmp_path: Path) -> None:
    """Started by ``nohup`` (SIGHUP ignored), the daemon outlives its terminal."""
    nohup = shutil.which("nohup")
    assert nohup is not None
    log = tmp_path / "daemon.log"
    daemon, url = start([nohup, CHARON, "daemon", "--port", "0"], Cli(tmp_path / "home").env,
                        log, "daemon listening on ")
    try:
        daemon.send_signal(signal.SIGHUP)
        time.sleep(1)
        assert daemon.poll() is None, log.read_text()[-2000:]
        with urllib.request.urlopen(f"{url}/status?limit=1", timeout=10) as answer:  # noqa: S310  # loopback
            assert answer.status == 200
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        reap(daemon)


def _counting_daemon(tmp_path: Path, runs: Path, days: int = 1) -> dict[str, str]:
    """The environment of a daemon watching ``days`` days from 2020-01-01 of
    tests.support.backfill_tasks' DailyCount, which needs no input: its run appends the
    day to ``runs`` as it begins, then takes two minutes. They all run at once, and a
    replica it cannot see die is counted live for two minutes."""
    config = tmp_path / "charon.toml"
    config.write_text(
        f"[engine]\nmax_concurrent_runs = {days}\n\n[daemon]\nreplica_timeout_seconds = 120\n\n"
        '[[workflows]]\nname = "count"\nmodule = "tests.support.backfill_tasks"\n'
        f'task = "DailyCount"\nmax_concurrent_runs = {days}\nstart = "2020-01-01"\n'
        f'end = "{date(2020, 1, days).isoformat()}"\n')
    return {**importing_tests(Cli(tmp_path / "home").env), "CHARON_CONFIG": str(config),
            "BACKFILL_RUNS_LOG": str(runs), "BACKFILL_RUN_SECONDS": "120"}


def _day_state(url: str) -> str | None:
    with urllib.request.urlopen(f"{url}/status?limit=1", timeout=10) as answer:  # noqa: S310  # loopback
        state: str | None = json.load(answer)["partitions"][0].get("state")
    return state


def test_a_daemon_killed_mid_run_and_started_again_takes_its_run_over_at_once(
    tmp_path: Path,
) -> None:
    """Killed by SIGKILL (the OOM killer) and started again on its machine (by systemd,
    say), the daemon resumes the runs it held now: not once their leases (an hour by
    default) have run out, nor, for the days its dead self's heartbeat still claims as
    that replica's (about half of them), once that heartbeat has (two minutes here)."""
    runs, days = tmp_path / "runs.log", 6
    env = _counting_daemon(tmp_path, runs, days)
    killed_log, log = tmp_path / "killed.log", tmp_path / "daemon.log"
    killed, _ = start([CHARON, "daemon", "--port", "0"], env, killed_log, "daemon listening on ")
    try:
        wait_until(lambda: runs.exists() and len(runs.read_text().splitlines()) == days, 60,
                   "the runs", killed_log)
        killed.kill()
    finally:
        reap(killed)
    again, _ = start([CHARON, "daemon", "--port", "0"], {**env, "BACKFILL_RUN_SECONDS": "0"},
                     log, "daemon listening on ")
    try:
        wait_until(lambda: log.read_text().count('"run succeeded"') == days, 30,
                   "the runs taken over", log)
    finally:
        reap(again)
    assert Counter(runs.read_text().splitlines()) == {
        date(2020, 1, day).isoformat(): 2 for day in range(1, days + 1)}
    assert resumed_attempts(log.read_text()) == [2] * days


def test_a_daemon_takes_over_the_run_of_a_charon_run_killed_beside_it(tmp_path: Path) -> None:
    """A ``charon run`` on the daemon's machine holds the day; the daemon leaves it be,
    looking at it again every NEIGHBOUR_RECHECK, and once that process is SIGKILLed
    resumes its run within that, not once its lease (an hour) has run out."""
    runs = tmp_path / "runs.log"
    env = _counting_daemon(tmp_path, runs)
    by_hand = popen([CHARON, "run", "--module", "tests.support.backfill_tasks", "DailyCount",
                     "--date", "2020-01-01"], env=env, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL)
    log = tmp_path / "daemon.log"
    try:
        wait_until(lambda: runs.exists() and bool(runs.read_text()), 60, "the run", log)
        daemon, url = start([CHARON, "daemon", "--port", "0"],
                            {**env, "BACKFILL_RUN_SECONDS": "0"}, log, "daemon listening on ")
        try:
            wait_until(lambda: _day_state(url) == "waiting", 30, "the daemon to find it held",
                       log)
            by_hand.kill()
            wait_until(lambda: '"run succeeded"' in log.read_text(),
                       NEIGHBOUR_RECHECK.total_seconds() + 15, "the run taken over", log)
        finally:
            reap(daemon)
    finally:
        reap(by_hand)
    assert runs.read_text().splitlines() == ["2020-01-01", "2020-01-01"]
    assert resumed_attempts(log.read_text()) == [2]
