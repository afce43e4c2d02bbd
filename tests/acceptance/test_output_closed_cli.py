"""A command whose output's reader goes away before the end (``charon registry ls ... |
head``): the shells' code for it, 141, as a command killed by SIGPIPE, and no traceback
(it was a 40-line one). A command whose output cannot be written (a full disk: /dev/full)
says so in one line. A daemon whose log's reader goes away goes on (it died)."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import anyio
import pytest

from orchestrator.stores.registry.sqlite import SqliteRegistry
from tests.acceptance.conftest import (
    CHARON,
    Cli,
    daily_outputs,
    importing_tests,
    popen,
    publish_daily_input,
)

ENDPOINT, PARTITION = "listed.output", "2018-10-31"
REVISIONS = 600
"""Lines of about 180 bytes: more than a pipe holds (64 KiB), so the listing is still
being written when its reader goes."""


def test_a_listing_whose_reader_stops_early_ends_quietly(charon: Cli) -> None:
    anyio.run(publish_many, charon.home / "registry.sqlite")
    with popen([CHARON, "registry", "ls", ENDPOINT, PARTITION], env=charon.env,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("REVISION_ID")  # `head -1`
        process.stdout.close()
        stderr = process.stderr.read()
        process.wait(timeout=60)
    assert (process.returncode, stderr) == (141, "")


@pytest.mark.parametrize("command", [
    ("registry", "ls", ENDPOINT, PARTITION),
    ("daemon", "--port", "0"),  # its `daemon listening on` line
], ids=["a listing", "a daemon"])
def test_output_to_a_full_disk_is_one_line_not_a_traceback(
    charon: Cli, command: tuple[str, ...]
) -> None:
    anyio.run(publish_many, charon.home / "registry.sqlite")
    with Path("/dev/full").open("w") as full:
        ended = subprocess.run([CHARON, *command], env=charon.env, stdout=full,
                               stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert "Traceback" not in ended.stderr
    assert (ended.returncode, ended.stderr.splitlines()[-1]) == (
        1, "error: cannot write to standard output: No space left on device")


async def publish_many(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = await SqliteRegistry.open(path)
    try:
        for n in range(REVISIONS):
            await registry.publish(ENDPOINT, PARTITION, f"/data/{n:04}/{'x' * 150}")
    finally:
        await registry.aclose()


def test_a_daemon_whose_log_reader_exits_goes_on_and_counts_the_lines_lost(
    charon: Cli, tmp_path: Path,
) -> None:
    """``charon daemon 2>&1 | some-filter``, and the filter exits: the daemon's next log
    line found the pipe closed, and the daemon died of it."""
    config = tmp_path / "charon.toml"
    config.write_text('[daemon]\nport = 0\npoll_interval_ms = 200\n\n[[workflows]]\n'
                      'name = "daily"\nmodule = "bench.noop_tasks"\ntask = "Daily"\n'
                      'start = "2000-01-01"\nend = "2000-01-03"\n')
    cli = dataclasses.replace(charon, extra={"CHARON_CONFIG": str(config)})
    with popen([CHARON, "daemon"], env=importing_tests(cli.env), stdout=subprocess.PIPE,
               stderr=subprocess.PIPE) as daemon:
        try:
            assert daemon.stdout is not None
            assert daemon.stderr is not None
            url = daemon.stdout.readline().strip().rsplit(" ", 1)[1]
            assert '"daemon started"' in daemon.stderr.readline()
            daemon.stderr.close()  # the filter exits
            publish_daily_input(cli, "2000-01-02")
            deadline = time.monotonic() + 60
            while daily_outputs(cli, "2000-01-02") == 0:
                assert daemon.poll() is None, "the daemon died"
                assert time.monotonic() < deadline, "the day never ran"
                time.sleep(0.2)
            with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:  # noqa: S310
                metrics = response.read().decode()
            dropped = next(line for line in metrics.splitlines()
                           if line.startswith("charon_log_lines_dropped_total"))
            assert float(dropped.split()[-1]) > 0  # the run's lines, at least
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=60) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
