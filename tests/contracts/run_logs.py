"""What every RunLogs keeps; subclass and provide ``logs`` (a factory by bound)."""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.stores.runlogs.base import RunLogs

MakeLogs = Callable[[int], RunLogs]
"""A run-log store keeping at most that many bytes a run."""


class RunLogsContract:
    async def test_lines_are_read_back_from_any_offset(self, logs: MakeLogs) -> None:
        kept = logs(10_000)
        assert await kept.read("r1", 0, 100) is None  # no log of it here
        await kept.append("r1", "first")
        await kept.append("r1", "second <b>")
        assert await kept.read("r1", 0, 100) == b"first\nsecond <b>\n"
        assert await kept.read("r1", 6, 3) == b"sec"
        assert await kept.read("r1", 100, 10) == b""
        assert await kept.read("r2", 0, 100) is None

    async def test_a_log_keeps_its_head_within_its_bound(self, logs: MakeLogs) -> None:
        kept = logs(400)
        for number in range(100):
            await kept.append("r1", f"line {number:03d}")
        text = await kept.read("r1", 0, 10_000) or b""
        assert len(text) <= 400
        assert text.startswith(b"line 000\nline 001\n")
