"""Push with a subscriber paused, every piece a subprocess: `charon registry serve`
notifies two `charon daemon`s by signed webhook, and one of them is stopped with
SIGSTOP (a replica paused by its host, a debugger, a frozen container). The kernel
still takes connections to its port and nothing answers them: each notification to it
waits out its timeout (10 s) and retries. The other daemon's days must run as their
inputs arrive all the same, not behind the paused one's deliveries."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import (
    CHARON,
    Cli,
    daily_outputs,
    free_port,
    importing_tests,
    publish_daily_input,
    reap,
    start,
    wait_until,
)

pytestmark = pytest.mark.slow

TOKEN = "acceptance-token"
SECRET = "acceptance-webhook-secret"
DAYS = [f"2024-01-0{n}" for n in range(1, 9)]
PUSHED_WITHIN = 45.0
"""Seconds from the last publish. The daemons read the service's registry file and poll
it only every 10 minutes, so only a webhook launches a day sooner, and a paused
subscriber's deliveries hold a notifier for about a minute each (5 attempts of 10 s):
held behind them, the 8 days would take about 8 minutes. Pushed, they took 21 s on a
slow machine under the suite's two workers, past the 15 s bound this had before."""


def daemon_env(home: Path, registry: Path) -> dict[str, str]:
    config = home.parent / f"{home.name}.toml"
    config.write_text(
        '[[workflows]]\nname = "daily"\nmodule = "bench.noop_tasks"\ntask = "Daily"\n'
        f'start = "{DAYS[0]}"\nend = "{DAYS[-1]}"\n'
    )
    return {**importing_tests(Cli(home).env), "CHARON_CONFIG": str(config),
            "CHARON_REGISTRY__PATH": str(registry), "CHARON_WEBHOOK_SECRET": SECRET,
            "CHARON_DAEMON__POLL_INTERVAL_MS": "600000"}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for process in reversed(started):
            reap(process)  # SIGKILL ends a stopped process too


def test_a_paused_daemon_holds_back_no_other_daemons_webhooks(
    tmp_path: Path, processes: list[subprocess.Popen[str]]
) -> None:
    paused_port, live_port = free_port(), free_port()
    hooks = [f"http://127.0.0.1:{port}/hooks/partitions" for port in (paused_port, live_port)]
    registry = tmp_path / "registry.sqlite"
    service, url = start(
        [CHARON, "registry", "serve", "--port", "0"],
        {**Cli(tmp_path / "service").env, "CHARON_REGISTRY__PATH": str(registry),
         "CHARON_REGISTRY_TOKEN": TOKEN, "CHARON_WEBHOOK_SECRET": SECRET,
         "CHARON_REGISTRY_SERVICE__SUBSCRIBERS": ",".join(hooks)},
        tmp_path / "service.log", "registry serving on ",
    )
    processes.append(service)
    client = {"CHARON_REGISTRY__KIND": "http", "CHARON_REGISTRY__URL": url,
              "CHARON_REGISTRY_TOKEN": TOKEN}
    for name, port in (("paused", paused_port), ("live", live_port)):
        daemon, _ = start([CHARON, "daemon", "--port", str(port)],
                          daemon_env(tmp_path / name, registry), tmp_path / f"{name}.log",
                          "daemon listening on ")
        processes.append(daemon)
    paused = processes[1]
    paused.send_signal(signal.SIGSTOP)
    publisher = Cli(tmp_path / "publisher", client)
    for day in DAYS:
        publish_daily_input(publisher, day)
    published = time.monotonic()
    wait_until(lambda: all(daily_outputs(publisher, day) for day in DAYS), PUSHED_WITHIN,
               "the live daemon's days, pushed", tmp_path / "service.log")
    assert time.monotonic() - published < PUSHED_WITHIN
    assert [daily_outputs(publisher, day) for day in DAYS] == [1] * len(DAYS)
