"""Run logs: the contract over the files and the in-memory fake; the files cut at their
bound with a line saying so, and the oldest removed past the count kept."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import structlog

from orchestrator.stores.runlogs.files import CUT, FileRunLogs
from orchestrator.testing.runlogs import InMemoryRunLogs
from tests.contracts.run_logs import MakeLogs, RunLogsContract


class TestFileRunLogs(RunLogsContract):
    @pytest.fixture
    def logs(self, tmp_path: Path) -> MakeLogs:
        return lambda max_bytes: FileRunLogs(tmp_path / "logs", max_bytes=max_bytes)


class TestInMemoryRunLogs(RunLogsContract):
    @pytest.fixture
    def logs(self) -> MakeLogs:
        return InMemoryRunLogs


async def test_a_log_is_cut_at_its_bound_and_says_so(tmp_path: Path) -> None:
    logs = FileRunLogs(tmp_path, max_bytes=400)
    for number in range(100):
        await logs.append("r1", f"line {number:03d}")
    text = (tmp_path / "r1.log").read_text()
    assert len(text.encode()) <= 400
    assert text.startswith("line 000\nline 001\n")
    assert text.endswith(CUT.format(size=400))
    assert text.count("[charon]") == 1


async def test_the_oldest_logs_go_past_the_count_kept(tmp_path: Path) -> None:
    logs = FileRunLogs(tmp_path, keep=3)
    for number in range(5):
        await logs.append(f"r{number}", "x")
    assert _names(tmp_path) == ["r2.log", "r3.log", "r4.log"]


async def test_logs_another_process_started_count_towards_those_kept(tmp_path: Path) -> None:
    ours, theirs = FileRunLogs(tmp_path, keep=3), FileRunLogs(tmp_path, keep=3)
    moment = iter(range(1_000_000, 2_000_000, 10))

    async def start(logs: FileRunLogs, run_id: str) -> None:
        await logs.append(run_id, "x")
        # One after the other in time, as runs are: a file system's clock may give
        # logs started within a tick the same time.
        os.utime(tmp_path / f"{run_id}.log", (next(moment),) * 2)

    for number in range(3):
        await start(ours, f"a{number}")
    for number in range(3):
        await start(theirs, f"b{number}")
    # Each process counts its own logs between two listings of the folder; the next
    # listing finds the other's, and the folder is back to the count kept.
    for number in range(4):
        await start(ours, f"c{number}")
    assert _names(tmp_path) == ["c1.log", "c2.log", "c3.log"]


async def test_a_run_id_that_could_leave_the_folder_names_no_log(tmp_path: Path) -> None:
    logs = FileRunLogs(tmp_path / "logs")
    await logs.append("../escape", "x")
    assert not (tmp_path / "escape.log").exists()
    assert await logs.read("../escape", 0, 10) is None


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


async def test_a_log_that_cannot_be_written_is_said_once_until_it_can(tmp_path: Path) -> None:
    """A job logging fast to a full disk costs one warning, not one a line."""
    folder = tmp_path / "logs"
    folder.write_text("a file where the folder should be")
    logs = FileRunLogs(folder)
    with structlog.testing.capture_logs() as said:
        for number in range(50):
            await logs.append("r1", f"line {number}")
        folder.unlink()
        await logs.append("r1", "written")
        shutil.rmtree(folder)
        folder.write_text("in the way again")
        await logs.append("r1", "lost again")
    warnings = [entry for entry in said if entry["event"].startswith("cannot write")]
    assert len(warnings) == 2
