"""``charon backfill`` over a month, SIGKILLed in the middle and run again: it resumes its
own backfill, every day is published once, and its progress is shown throughout."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

from tests.acceptance.conftest import CHARON, Cli, resumed_attempts

ROOT = Path(__file__).resolve().parents[2]
COMMAND = [CHARON, "backfill", "--module", "tests.support.backfill_tasks", "DailyCount",
           "--date-interval", "2018-10", "--max-parallel", "2"]
OCTOBER = [f"2018-10-{day:02d}" for day in range(1, 32)]
DAY_LINE = re.compile(r"\[\s*(\d+)/31\] (2018-10-\d\d) (.+)")
KILL_AFTER = 10
"""Days finished when the first backfill is killed."""


def test_a_killed_backfill_resumes_and_runs_each_day_once(charon: Cli, tmp_path: Path) -> None:
    runs_log = tmp_path / "runs.log"
    env = {**charon.env, "PYTHONPATH": str(ROOT), "BACKFILL_RUNS_LOG": str(runs_log),
           "BACKFILL_RUN_SECONDS": "0.2"}  # under the default lease, an hour
    first = subprocess.Popen(COMMAND, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    assert first.stdout is not None
    started = first.stdout.readline()
    match = re.fullmatch(r"backfill (bf-\w+) started: 31 days of 2018-10, oldest first\n",
                         started)
    assert match, started
    before: list[str] = []
    while len(before) < KILL_AFTER:
        line = first.stdout.readline()
        assert line, f"it ended early after {before}"
        before.append(line.rstrip("\n"))
    # Killed with a run in flight, which only a takeover can finish.
    deadline = time.monotonic() + 30
    while len(runs_log.read_text().split()) <= KILL_AFTER:
        assert time.monotonic() < deadline, "no run began after the first days"
        time.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    first.stdout.close()
    done_before = [m[2] for m in map(DAY_LINE.fullmatch, before) if m and m[3] == "ran"]
    assert [int(m[1]) for m in map(DAY_LINE.fullmatch, before) if m] == list(
        range(1, KILL_AFTER + 1))
    assert len(done_before) == KILL_AFTER

    second = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=120,
                            check=False)
    assert second.returncode == 0, second.stdout + second.stderr[-3000:]
    lines = second.stdout.splitlines()
    assert lines[0].startswith(f"backfill {match[1]} resumed, ")
    days = {m[2]: m[3] for m in map(DAY_LINE.fullmatch, lines) if m}
    assert sorted(days) == OCTOBER
    assert all(days[day] == "done before this resume" for day in done_before)
    assert f"backfill {match[1]}: 31 of 31 days done" in lines
    resumed = resumed_attempts(second.stderr)
    assert resumed
    assert all(attempt == 2 for attempt in resumed)

    # Each day's run executed once, but for those the kill interrupted mid-run (at most
    # --max-parallel), which were taken over at once: their owner's process is gone.
    executions = Counter(runs_log.read_text().split())
    assert sorted(executions) == OCTOBER
    assert all(executions[day] == 1 for day in done_before)
    assert sum(executions.values()) <= len(OCTOBER) + 2
    with sqlite3.connect(charon.home / "state.sqlite") as db:
        runs = db.execute("SELECT partition, state FROM runs").fetchall()
        backfill = db.execute("SELECT id, state FROM backfills").fetchall()
        recorded = dict(db.execute("SELECT day, status FROM backfill_days").fetchall())
    assert sorted(runs) == [(day, "succeeded") for day in OCTOBER]
    assert backfill == [(match[1], "succeeded")]
    assert recorded == dict.fromkeys(OCTOBER, "done")

    again = subprocess.run(COMMAND, env=env, capture_output=True, text=True, timeout=60,
                           check=False)
    assert again.returncode == 0
    assert "resumed, 31 done before" in again.stdout
