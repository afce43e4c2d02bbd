"""The daemon through its sources' outages: the registry service killed, PostgreSQL
restarted. It keeps answering /status, says what is down, and carries on by itself
when they are back. Every piece is a subprocess; the state store and the registry
are on the machine's PostgreSQL server."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.noop_tasks import OUTPUT_ENDPOINT as OUTPUT
from orchestrator.testing.postgres import cluster_version, ensure_postgres
from orchestrator.web.signing import signed_headers
from tests.acceptance.conftest import (
    CHARON,
    Cli,
    daily_daemon,
    free_port,
    importing_tests,
    publish_daily_input,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

TOKEN = "outage-token"
DAYS = ("2020-01-01", "2020-01-02", "2020-01-03")
WEBHOOK_SECRET = "outage-webhook-secret"


def start_registry(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[str]:
    """The registry service on a fixed port, so that a restart comes back where it was."""
    process, _url = start([CHARON, "registry", "serve", "--port", str(port)], env, log,
                          "registry serving on ")
    return process


def start_daemon(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    return start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")


@dataclass
class Stack:
    cli: Cli
    env: dict[str, str]
    registry_port: int
    registry_log: Path
    registry: subprocess.Popen[str]
    daemon_env: dict[str, str]
    daemon: subprocess.Popen[str]
    daemon_url: str
    daemon_log: Path

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    def kill_registry(self) -> None:
        self.registry.kill()
        self.registry.wait(timeout=10)
        assert self.registry.stdout is not None
        self.registry.stdout.close()

    def restart_registry(self) -> None:
        self.registry = start_registry(self.env, self.registry_port, self.registry_log)

    def kill_daemon(self) -> None:
        self.daemon.kill()
        self.daemon.wait(timeout=10)
        assert self.daemon.stdout is not None
        self.daemon.stdout.close()

    def restart_daemon(self) -> None:
        self.daemon_log = self.daemon_log.with_name(f"restarted-{self.daemon_log.name}")
        self.daemon, self.daemon_url = start_daemon(self.daemon_env, self.daemon_log)

    def ask_for(self, day: str) -> int:
        """POST a signed run request for ``day``; the answer's status."""
        body = json.dumps({"workflow": "daily", "date": day}).encode()
        request = urllib.request.Request(  # noqa: S310  # loopback
            f"{self.daemon_url}/hooks/runs", body, method="POST",
            headers={"Content-Type": "application/json",
                     **signed_headers(WEBHOOK_SECRET.encode(), body)})
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # loopback
            return int(response.status)

    def status(self) -> dict[str, Any]:
        """GET /status; the test fails if it does not answer 200 with JSON."""
        with urllib.request.urlopen(f"{self.daemon_url}/status", timeout=10) as response:  # noqa: S310  # loopback
            assert response.status == 200
            answer: dict[str, Any] = json.load(response)
            return answer

    def source_up(self, name: str) -> bool | None:
        source = self.status()["sources"].get(name)
        return None if source is None else bool(source["up"])

    def publish_input(self, day: str) -> None:
        publish_daily_input(self.cli, day)

    def published(self, day: str) -> bool:
        try:
            with urllib.request.urlopen(  # noqa: S310  # loopback
                f"{self.registry_url}/v1/endpoints/{OUTPUT}/partitions/{day}/latest", timeout=5,
            ) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False


@pytest.fixture
def stack(tmp_path: Path, postgres_dsn: str) -> Iterator[Stack]:
    env = {**daily_daemon(tmp_path, DAYS[0], DAYS[-1], postgres_dsn),
           "CHARON_REGISTRY_TOKEN": TOKEN}
    registry_port = free_port()
    client = {**env, "CHARON_REGISTRY__KIND": "http",
              "CHARON_REGISTRY__URL": f"http://127.0.0.1:{registry_port}",
              # The client gives up fast while the service is down: the test polls.
              "CHARON_REGISTRY__TIMEOUT_SECONDS": "2"}
    registry = start_registry(env, registry_port, tmp_path / "registry.log")
    daemon_env = {**client, "CHARON_STATE__KIND": "postgres",
                  "CHARON_STATE__DSN": postgres_dsn, "CHARON_DAEMON__POLL_INTERVAL_MS": "200",
                  "CHARON_DAEMON__MAX_BACKOFF_SECONDS": "2",
                  "CHARON_DAEMON__REPLICA_TIMEOUT_SECONDS": "3",
                  "CHARON_WEBHOOK_SECRET": WEBHOOK_SECRET}
    daemon, daemon_url = start_daemon(daemon_env, tmp_path / "daemon.log")
    stack = Stack(Cli(tmp_path / "home", client), env, registry_port,
                  tmp_path / "registry.log", registry, daemon_env, daemon, daemon_url,
                  tmp_path / "daemon.log")
    try:
        yield stack
    finally:
        ensure_postgres()  # whatever happened, the server is left running
        for process in (stack.daemon, stack.registry):
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
            assert process.stdout is not None
            if not process.stdout.closed:
                process.stdout.close()


def pg_cluster(action: str) -> None:
    """Stop or start the machine's PostgreSQL server, as its administrator would."""
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster_version(), "main", action]
    subprocess.run(command, check=True, capture_output=True, timeout=60)


@pytest.mark.alone  # stops the machine's PostgreSQL, which every other test may be using
def test_status_through_a_registry_outage_and_a_postgres_restart(stack: Stack) -> None:
    log = stack.daemon_log
    stack.publish_input(DAYS[0])
    wait_until(lambda: stack.published(DAYS[0]), 60, "the first day", log)

    stack.kill_registry()
    wait_until(lambda: stack.source_up("registry") is False, 30,
               "/status to report the registry down", log)
    assert stack.daemon.poll() is None
    stack.restart_registry()
    stack.publish_input(DAYS[1])
    wait_until(lambda: stack.published(DAYS[1]), 60, "the day after the outage", log)
    # The change feed long-polls: it is seen up again once a poll has come back.
    wait_until(lambda: stack.source_up("registry") is True, 30,
               "/status to report the registry back", log)

    pg_cluster("stop")
    try:
        wait_until(lambda: stack.source_up("state store") is False, 30,
                   "/status to report the state store down", log)
        for _ in range(3):  # it keeps answering while the database is away
            assert stack.status()["sources"]["state store"]["failures"] >= 1
    finally:
        pg_cluster("start")
        ensure_postgres()
    wait_until(lambda: stack.source_up("state store") is True, 60,
               "/status to report the state store back", log)
    stack.publish_input(DAYS[2])
    wait_until(lambda: stack.published(DAYS[2]), 90, "the day after the restart", log)
    assert stack.daemon.poll() is None, "the daemon exited on its own"
    # A run publishes, then records its success: the status may lag the registry a moment.
    wait_until(lambda: succeeded_days(stack) == list(DAYS), 30, "every day's run succeeded", log)


def test_a_registry_answering_unreadable_json_is_an_outage_the_daemon_rides_out(
    stack: Stack,
) -> None:
    """Something else answers at the registry's address, with JSON nested past what a
    decoder follows: the daemon says the registry is down, as for any outage, and carries
    on once the registry is back. Before, its change feed's sensor died of the
    RecursionError, and the daemon with it."""
    log = stack.daemon_log
    stack.publish_input(DAYS[0])
    wait_until(lambda: stack.published(DAYS[0]), 60, "the first day", log)
    stack.kill_registry()
    unreadable, _url = start(
        [sys.executable, "-m", "tests.support.unreadable_service", str(stack.registry_port)],
        importing_tests(stack.env), log.with_name("unreadable.log"), "serving on ")
    try:
        wait_until(lambda: "nested too deeply" in log.read_text()
                   and stack.source_up("registry") is False, 30,
                   "/status to report the registry down", log)
        assert stack.daemon.poll() is None, "the daemon exited on an unreadable answer"
    finally:
        unreadable.kill()
        unreadable.wait(timeout=10)
        assert unreadable.stdout is not None
        unreadable.stdout.close()
    stack.restart_registry()
    stack.publish_input(DAYS[1])
    wait_until(lambda: stack.published(DAYS[1]), 60, "the day after the outage", log)
    assert stack.daemon.poll() is None


def succeeded_days(stack: Stack) -> list[str]:
    return sorted(r["partition"] for r in stack.status()["runs"] if r["state"] == "succeeded")


def test_a_day_asked_for_is_run_though_the_daemon_was_killed_before_running_it(
    stack: Stack, postgres_dsn: str,
) -> None:
    """Answered 202, a request for a day outside the window is the only thing that will
    ever evaluate that day: the sender does not ask again. Its first evaluation fails
    (the registry is down); the daemon is killed; the one started after it runs it."""
    outside = "2019-06-01"
    stack.publish_input(outside)
    stack.kill_registry()
    assert stack.ask_for(outside) == 202
    wait_until(lambda: any("evaluation failed" in line and f"daily {outside}" in line
                           for line in stack.daemon_log.read_text().splitlines()),
               30, "the asked day's evaluation to fail", stack.daemon_log)
    stack.kill_daemon()
    stack.restart_registry()
    stack.restart_daemon()
    wait_until(lambda: stack.published(outside), 60, "the asked day published",
               stack.daemon_log)
    assert stack.daemon.poll() is None
