"""A fake of the run-log port, in memory, bounded as the files are."""

from __future__ import annotations

from orchestrator.stores.runlogs.files import MAX_BYTES


class InMemoryRunLogs:
    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.logs: dict[str, bytearray] = {}
        self._max_bytes = max_bytes

    async def append(self, run_id: str, line: str) -> None:
        log = self.logs.setdefault(run_id, bytearray())
        log += (line + "\n").encode()[:max(0, self._max_bytes - len(log))]

    async def read(self, run_id: str, offset: int, limit: int) -> bytes | None:
        log = self.logs.get(run_id)
        return None if log is None else bytes(log[offset:offset + limit])
