"""Run logs as files: appended line by line, read from an offset, cut at their bound
with a line saying so, the oldest removed past the count kept."""

from __future__ import annotations

from pathlib import Path

from orchestrator.stores.runlogs.files import CUT, FileRunLogs


async def test_lines_are_read_back_from_any_offset(tmp_path: Path) -> None:
    logs = FileRunLogs(tmp_path / "logs")
    assert await logs.read("r1", 0, 100) is None  # no log of it here
    await logs.append("r1", "first")
    await logs.append("r1", "second <b>")
    assert await logs.read("r1", 0, 100) == b"first\nsecond <b>\n"
    assert await logs.read("r1", 6, 3) == b"sec"
    assert await logs.read("r1", 100, 10) == b""


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


async def test_a_run_id_that_could_leave_the_folder_names_no_log(tmp_path: Path) -> None:
    logs = FileRunLogs(tmp_path / "logs")
    await logs.append("../escape", "x")
    assert not (tmp_path / "escape.log").exists()
    assert await logs.read("../escape", 0, 10) is None


def _names(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())
