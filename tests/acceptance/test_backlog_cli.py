"""One workflow's backlog holds up no other workflow's days.

A real ``charon daemon`` watches a workflow of 100 days, all ready, whose runs take two
minutes, and a second workflow. The daemon's evaluators (64, and one for each run the
engine allows at once) are shared by every workflow; the backlog's days used to wait
for a place each holding one. Under the backlog's own limit (two at a time), a day of
the second workflow, ready and with places free under the engine's limit, waited for
the backlog to drain: it must run within seconds. Under the engine's limit (the
backlog's allowing more), that day cannot run before a backlog run ends, but it must be
evaluated: seen ready, its input found, within seconds.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.adapters import open_adapters
from orchestrator.config import load_settings
from tests.acceptance.conftest import (
    CHARON,
    Cli,
    importing_tests,
    reap,
    revisions,
    start,
    wait_until,
)
from tests.support.backlog_tasks import SLOW_INPUT
from tests.support.two_sources_tasks import PLAYS

pytestmark = pytest.mark.slow

FIRST = date(2020, 1, 1)
BACKLOG = 100
QUICK_WITHIN = 20.0
"""Seconds: far less than one run of the backlog (two minutes)."""


def config(tmp_path: Path, *, engine_runs: int = 4, backlog_runs: int = 2) -> Path:
    path = tmp_path / "charon.toml"
    last = FIRST + timedelta(days=BACKLOG - 1)
    path.write_text(
        f"[engine]\nmax_concurrent_runs = {engine_runs}\n\n"
        '[[workflows]]\nname = "slow"\nmodule = "tests.support.backlog_tasks"\ntask = "Slow"\n'
        f'start = "{FIRST}"\nend = "{last}"\nmax_concurrent_runs = {backlog_runs}\n\n'
        '[[workflows]]\nname = "quick"\nmodule = "tests.support.two_sources_tasks"\n'
        f'task = "FromRegistry"\nstart = "{FIRST}"\nend = "{FIRST}"\n'
    )
    return path


async def publish(env: dict[str, str], endpoint: str, days: int, folder: Path) -> None:
    """``days`` partitions from FIRST, through the registry the daemon reads."""
    async with open_adapters(load_settings(env)) as adapters:
        for n in range(days):
            await adapters.registry.publish(endpoint, (FIRST + timedelta(days=n)).isoformat(),
                                            str(folder))


@contextmanager
def backlog_daemon(tmp_path: Path, **limits: int) -> Iterator[
        tuple[Cli, dict[str, str], str, Path]]:
    """A daemon (its home, environment, address and log) whose backlog's first two runs
    have started, the other workflow's input not yet published."""
    cli = Cli(tmp_path / "home")
    env = {**importing_tests(cli.env), "CHARON_CONFIG": str(config(tmp_path, **limits))}
    folder = cli.home / "storage" / "inputs"
    folder.mkdir(parents=True)
    (folder / "part").write_text("input\n")
    anyio.run(publish, env, SLOW_INPUT, BACKLOG, folder)
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        wait_until(lambda: log.read_text().count('"run started"') >= 2, 60,
                   "the backlog's first two runs", log)
        yield cli, env, url, log
    finally:
        reap(daemon)


def publish_the_other_day(cli: Cli, env: dict[str, str]) -> None:
    anyio.run(publish, env, PLAYS, 1, cli.home / "storage" / "inputs")


def test_a_backlog_of_long_runs_holds_up_no_other_workflow(tmp_path: Path) -> None:
    with backlog_daemon(tmp_path) as (cli, env, _url, log):
        publish_the_other_day(cli, env)
        wait_until(lambda: revisions(cli, "two.sources.from.registry", FIRST.isoformat()) == 1,
                   QUICK_WITHIN, "the other workflow's day to run", log)
        assert log.read_text().count('"run started"') == 3  # the backlog: two at a time


def quick_day(url: str) -> dict[str, object]:
    """The second workflow's day, as ``/status`` shows it."""
    # The test's own daemon on the loopback: no scheme or host from outside.
    with urllib.request.urlopen(f"{url}/status?workflow=quick", timeout=10) as answer:  # noqa: S310
        [day] = json.load(answer)["partitions"]
    assert isinstance(day, dict)
    return day


def test_a_backlog_at_the_engine_s_limit_holds_up_no_evaluation(tmp_path: Path) -> None:
    with backlog_daemon(tmp_path, engine_runs=2, backlog_runs=10) as (cli, env, url, log):
        wait_until(lambda: PLAYS in str(quick_day(url).get("waiting_for")), QUICK_WITHIN,
                   "the other workflow's day to wait for its input", log)
        publish_the_other_day(cli, env)
        wait_until(lambda: quick_day(url).get("waiting_for") == [], QUICK_WITHIN,
                   "the other workflow's day to be seen ready", log)
        assert quick_day(url)["state"] == "waiting"  # for a place: the engine's are taken
        assert log.read_text().count('"run started"') == 2  # the engine's limit
