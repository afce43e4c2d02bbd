"""A one-shot command stopped by Ctrl-C, SIGTERM or SIGHUP: one line and the shells' code
for it, no traceback, and what it claimed given up on the way out."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli, importing_tests, popen, resumed_attempts


def test_ctrl_c_stops_a_command_with_one_line_at_once(charon: Cli) -> None:
    """Ctrl-C as a big day of sample data is being made: the command stops now, not once
    the 20 s of making it are over (it did), and publishes nothing."""
    with popen([CHARON, "sample-data", "--date", "2018-10-31", "--events", "3000000"],
               env=charon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            assert process.stderr is not None
            said = process.stderr.readline()  # its progress: it is making the day now
            assert "generating sample data" in said, said
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=10)
        finally:
            _kill(process)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr
    listed = charon("registry", "ls", "di.golden.path.EndContentFactXT2", "2018-10-31")
    assert listed.returncode == 1, listed.stdout  # none


def _kill(process: subprocess.Popen[str]) -> None:
    """A process a failed test leaves running is killed, so that its pipes can close."""
    if process.poll() is None:
        process.kill()


def _daily_count(charon: Cli, started: Path, seconds: int) -> tuple[list[str], dict[str, str]]:
    """``charon run`` of a day of tests.support.backfill_tasks.DailyCount, whose run
    appends its day to ``started`` as it begins and then takes ``seconds``."""
    env = {**importing_tests(charon.env),
           "BACKFILL_RUNS_LOG": str(started), "BACKFILL_RUN_SECONDS": str(seconds)}
    return [CHARON, "run", "--module", "tests.support.backfill_tasks", "DailyCount",
            "--date", "2020-01-01"], env


def _wait_for_the_run(process: subprocess.Popen[str], started: Path) -> None:
    deadline = time.monotonic() + 60
    while not (started.exists() and started.read_text()):
        assert process.poll() is None, "charon ended before its run started"
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.05)


@pytest.mark.parametrize(("signum", "said"), [
    (signal.SIGTERM, "terminated"), (signal.SIGHUP, "hung up"), (signal.SIGINT, "interrupted"),
])
def test_a_run_stopped_by_a_signal_gives_its_claimed_run_up_at_once(
    charon: Cli, tmp_path: Path, signum: signal.Signals, said: str
) -> None:
    """A scheduler's time limit (SIGTERM), a closed SSH session (SIGHUP) or Ctrl-C: the
    run it claimed is released on the way out, so the next ``charon run`` runs it now,
    not once its lease (an hour by default) has run out."""
    started = tmp_path / "runs.log"
    task, env = _daily_count(charon, started, 120)
    with popen(task, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            _wait_for_the_run(process, started)
            process.send_signal(signum)
            _, stderr = process.communicate(timeout=60)
        finally:
            _kill(process)
    assert process.returncode == 128 + signum
    assert stderr.strip().splitlines()[-1] == said
    assert "Traceback" not in stderr

    again = subprocess.run(task, env={**env, "BACKFILL_RUN_SECONDS": "0"}, capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert started.read_text().splitlines() == ["2020-01-01", "2020-01-01"]


def test_a_killed_run_is_taken_over_at_once_by_the_next_run_on_its_machine(
    charon: Cli, tmp_path: Path
) -> None:
    """SIGKILL (the OOM killer, ``kill -9``) gives a run no chance to give its claim up;
    the next ``charon run`` on the same machine sees the claimer's process gone and takes
    its run over now, though its lease (an hour by default) has not run out."""
    started = tmp_path / "runs.log"
    task, env = _daily_count(charon, started, 120)
    with popen(task, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        try:
            _wait_for_the_run(process, started)
            process.kill()
            process.communicate(timeout=60)
        finally:
            _kill(process)
    assert process.returncode == -signal.SIGKILL

    again = subprocess.run(task, env={**env, "BACKFILL_RUN_SECONDS": "0"}, capture_output=True,
                           text=True, timeout=120, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    assert started.read_text().splitlines() == ["2020-01-01", "2020-01-01"]
    assert resumed_attempts(again.stderr) == [2]


def test_under_nohup_a_hangup_does_not_stop_a_run(charon: Cli, tmp_path: Path) -> None:
    """Started by ``nohup`` (SIGHUP ignored), a run goes on after its terminal closed."""
    nohup = shutil.which("nohup")
    assert nohup is not None
    started = tmp_path / "runs.log"
    task, env = _daily_count(charon, started, 2)
    with popen([nohup, *task], env=env, stdout=subprocess.PIPE,
               stderr=subprocess.PIPE) as process:
        try:
            _wait_for_the_run(process, started)
            process.send_signal(signal.SIGHUP)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            _kill(process)
    assert process.returncode == 0, stdout + stderr
    assert started.read_text().splitlines() == ["2020-01-01"]
