"""``charon run`` of a job that hangs, past its task's ``worker_timeout``: the job's
process is stopped, the run fails with the reason, and nothing is published."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli, importing_tests

pytestmark = pytest.mark.slow


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_job_past_its_worker_timeout_is_stopped_and_its_run_fails(
    charon: Cli, tmp_path: Path
) -> None:
    pid_file = tmp_path / "job.pid"
    env = {**importing_tests(charon.env), "HANGING_JOB_PID": str(pid_file)}
    began = time.monotonic()
    ran = subprocess.run(
        [CHARON, "run", "--module", "tests.support.timeout_tasks", "Hangs",
         "--date", "2020-01-01"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - began
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "stopped after 2 s, its worker_timeout" in ran.stdout + ran.stderr
    assert took < 60
    assert not alive(int(pid_file.read_text()))
    listed = charon("registry", "ls", "hangs.output", "2020-01-01")
    assert listed.returncode == 1  # no revision
