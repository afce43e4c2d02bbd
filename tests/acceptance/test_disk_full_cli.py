"""The daemon's state store on a disk that fills up, then is freed.

The state store's SQLite file lies on a small tmpfs of its own; the registry is on
PostgreSQL and the outputs on the ordinary disk, so only the state store's writes
fail. While the disk is full the daemon keeps answering, runs nothing it cannot
record, and publishes nothing; once space is freed it carries on by itself, and every
day is published exactly once.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
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

DAYS = [f"2020-02-{day:02d}" for day in range(1, 7)]
DISK_BYTES = 4 * 1024 * 1024


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs of 4 MiB of its own, mounted for the test (root only)."""
    mount, umount = shutil.which("mount"), shutil.which("umount")
    if mount is None or umount is None:
        pytest.skip("no mount command here")
    disk = tmp_path / "small-disk"
    disk.mkdir()
    mounted = subprocess.run([mount, "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs",
                              str(disk)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run([umount, "--lazy", str(disk)], check=True, capture_output=True)


def fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; the file."""
    filler = disk / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (b"\0" * 65536, b"\0"):  # the last, partly written chunk's rest too
            with pytest.raises(OSError, match="No space left") as full:  # noqa: PT012  # the loop ends by raising
                while True:
                    os.write(descriptor, chunk)
            assert full.value.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    return filler


def test_a_full_disk_stops_the_runs_not_the_daemon_and_freed_it_carries_on(
    tmp_path: Path, postgres_dsn: str, small_disk: Path
) -> None:
    env = {**daily_daemon(tmp_path, DAYS[0], DAYS[-1], postgres_dsn),
           "CHARON_STATE__PATH": str(small_disk / "state.sqlite"),
           "CHARON_DAEMON__POLL_INTERVAL_MS": "200", "CHARON_DAEMON__MAX_BACKOFF_SECONDS": "2"}
    cli = Cli(tmp_path / "home", {k: v for k, v in env.items() if k.startswith("CHARON_")})
    log = tmp_path / "daemon.log"
    daemon, url = start([CHARON, "daemon", "--port", "0"], env, log, "daemon listening on ")
    try:
        for day in DAYS[:2]:
            publish_daily_input(cli, day)
        wait_until(lambda: all(daily_outputs(cli, day) == 1 for day in DAYS[:2]), 60,
                   "the days before the disk filled", log)

        filler = fill(small_disk)
        for day in DAYS[2:]:
            publish_daily_input(cli, day)
        wait_until(lambda: "database or disk is full" in log.read_text(), 30,
                   "the daemon to meet the full disk", log)
        with urllib.request.urlopen(f"{url}/status?limit=1", timeout=10) as answer:  # noqa: S310  # loopback
            assert answer.status == 200
        assert daemon.poll() is None, "the daemon exited on a full disk"
        assert [daily_outputs(cli, day) for day in DAYS[2:]] == [0] * len(DAYS[2:])

        filler.unlink()
        wait_until(lambda: all(daily_outputs(cli, day) >= 1 for day in DAYS), 120,
                   "the days once the disk was freed", log)
        assert [daily_outputs(cli, day) for day in DAYS] == [1] * len(DAYS)
        daemon.terminate()
        assert daemon.wait(timeout=60) == 0
    finally:
        reap(daemon)
