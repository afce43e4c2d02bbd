"""Dataflow job tracking through the CLI, against the fake Dataflow REST API.

``charon run`` launches tests/support/fake_dataflow_pipeline.py (a stand-in for Beam's
DataflowRunner submission) with ``beam.runner = "DataflowRunner"``; the job "runs" on
tests/support/fake_dataflow.py until the test ends it.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli
from tests.support.fake_dataflow import FakeDataflowServer

pytestmark = pytest.mark.slow

DAY = "2018-10-31"
TASK = ("--module", "tests.support.dataflow_tasks", "FakeDataflowTopArtists", "--date", DAY,
        "--top-n", "5")
OUTPUT = "di.golden.path.charon.top_artists"


@pytest.fixture
def fake() -> Iterator[FakeDataflowServer]:
    server = FakeDataflowServer()
    with server.serve_in_thread():
        yield server


@pytest.fixture
def env(charon: Cli, fake: FakeDataflowServer) -> dict[str, str]:
    made = charon("sample-data", "--date", DAY, "--events", "500")
    assert made.returncode == 0, made.stderr
    return {**charon.env, "CHARON_BEAM__RUNNER": "DataflowRunner",
            "CHARON_DATAFLOW__API_ROOT": fake.root,
            "CHARON_DATAFLOW__POLL_INTERVAL_MS": "50",
            # Longer than a slow machine ever stalls a renewal; a killed process's run is
            # taken over at once on its own machine, whatever its lease.
            "CHARON_ENGINE__LEASE_SECONDS": "60"}


def start(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[str]:
    with log.open("w") as stderr:
        return subprocess.Popen([CHARON, *args], env=env, stdout=subprocess.PIPE,
                                stderr=stderr, text=True)


def wait_for(check: Callable[[], object], timeout: float = 20) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.05)
    raise AssertionError("timed out")


def recorded_job_id(home: Path) -> str | None:
    """The run's job id, read from the state store without writing to it."""
    path = home / "state.sqlite"
    if not path.exists():
        return None
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        row = connection.execute("SELECT job_id FROM runs WHERE job_id IS NOT NULL").fetchone()
    return str(row[0]) if row else None


def test_a_killed_run_is_reattached_to_its_job_after_a_restart_never_resubmitted(
    charon: Cli, fake: FakeDataflowServer, env: dict[str, str], tmp_path: Path
) -> None:
    first = start(env, tmp_path / "first.log", "run", *TASK)
    job_id = str(wait_for(lambda: recorded_job_id(charon.home)))
    os.kill(first.pid, signal.SIGKILL)  # no clean-up of any kind; the job runs on
    first.communicate(timeout=10)  # reaps it and closes its pipe
    [job] = fake.jobs.values()
    assert job_id == f"projects/scio-playground/locations/europe-west1/jobs/{job.id}"
    assert job.state == "JOB_STATE_PENDING"

    log = tmp_path / "second.log"
    second = start(env, log, "run", *TASK)
    wait_for(lambda: "reattaching to job" in log.read_text())
    fake.set_state(job.id, "JOB_STATE_DONE")
    stdout, _ = second.communicate(timeout=30)
    assert second.returncode == 0, log.read_text()
    assert "published textOutput" in stdout
    assert fake.created == 1
    listed = charon("registry", "ls", OUTPUT, DAY)
    assert len(listed.stdout.splitlines()) == 2  # a header and one revision


def test_charon_cancel_cancels_the_running_job(
    charon: Cli, fake: FakeDataflowServer, env: dict[str, str], tmp_path: Path
) -> None:
    running = start(env, tmp_path / "run.log", "run", *TASK)
    wait_for(lambda: recorded_job_id(charon.home))
    [job] = fake.jobs.values()

    cancel = [CHARON, "cancel", *TASK]
    cancelled = subprocess.run(cancel, env=env, capture_output=True, text=True, timeout=60,
                               check=False)
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled FakeDataflowTopArtists(date=2018-10-31" in cancelled.stdout
    assert job.id in cancelled.stdout
    assert fake.state(job.id) in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")

    running.communicate(timeout=30)
    assert running.returncode == 1  # its job was cancelled under it
    again = subprocess.run(cancel, env=env, capture_output=True, text=True, timeout=60,
                           check=False)
    assert again.returncode == 1
    assert "nothing to cancel" in again.stdout
    assert fake.created == 1


def test_a_job_past_its_worker_timeout_is_cancelled_on_dataflow(
    charon: Cli, fake: FakeDataflowServer, env: dict[str, str], tmp_path: Path
) -> None:
    timed = ("--module", "tests.support.dataflow_tasks", "TimedFakeDataflowTopArtists",
             *TASK[3:])
    ran = subprocess.run([CHARON, "run", *timed], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "stopped after 2 s, its worker_timeout" in ran.stdout + ran.stderr
    [job] = fake.jobs.values()
    assert fake.state(job.id) in ("JOB_STATE_CANCELLING", "JOB_STATE_CANCELLED")
    listed = charon("registry", "ls", OUTPUT, DAY)
    assert listed.returncode == 1  # nothing published
