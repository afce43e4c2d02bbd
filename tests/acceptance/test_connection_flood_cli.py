"""The daemon under a flood of connections that never send a request, with a low limit
of file descriptors: its own work (stores, files, jobs) never runs out of them, so the
days it watches are published while the flood goes on, and its log holds one line a
while about the connections turned away, not a traceback per refused accept."""

from __future__ import annotations

import shutil
import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    CHARON,
    Cli,
    daily_daemon,
    daily_outputs,
    publish_daily_input,
    reap,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

DAYS = ("2020-03-01", "2020-03-02", "2020-03-03")
DESCRIPTORS = 256
FLOOD = 400


def test_a_connection_flood_starves_neither_the_runs_nor_the_log(
    tmp_path: Path, postgres_dsn: str
) -> None:
    prlimit = shutil.which("prlimit")
    assert prlimit is not None
    env = {**daily_daemon(tmp_path, DAYS[0], DAYS[-1], postgres_dsn),
           "CHARON_DAEMON__POLL_INTERVAL_MS": "200"}
    cli = Cli(tmp_path / "home", {k: v for k, v in env.items() if k.startswith("CHARON_")})
    log = tmp_path / "daemon.log"
    daemon, url = start([prlimit, f"--nofile={DESCRIPTORS}:{DESCRIPTORS}", CHARON, "daemon",
                         "--port", "0"], env, log, "daemon listening on ")
    port = int(url.rsplit(":", 1)[1])
    flood: list[socket.socket] = []
    try:
        flood.extend(_connections(port, FLOOD))
        for day in DAYS:
            publish_daily_input(cli, day)
        wait_until(lambda: all(daily_outputs(cli, day) >= 1 for day in DAYS), 60,
                   "the days to be published during the flood", log)
        assert daemon.poll() is None
        for connection in flood:
            connection.close()
        flood.clear()
        wait_until(lambda: _status_answers(url), 30, "/status once the flood ended", log)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=60) == 0
    finally:
        for connection in flood:
            connection.close()
        reap(daemon)
    text = log.read_text()
    assert "Too many open files" not in text
    assert text.count("connections turned away") <= 3


def _status_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/status?limit=1", timeout=5) as answer:  # noqa: S310  # loopback
            return bool(answer.status == 200)
    except OSError:
        return False


def _connections(port: int, count: int) -> list[socket.socket]:
    """Up to ``count`` connections, held open; one the daemon no longer accepts (its
    backlog full) is given up on."""
    made = []
    for _ in range(count):
        try:
            made.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            continue
    return made
