"""Run logs as files: ``<folder>/<run id>.log``, each cut at a size, the oldest removed
past a count."""

from __future__ import annotations

import contextlib
import threading
from collections import deque
from pathlib import Path

import anyio

from orchestrator.log import get_logger
from orchestrator.stores.runlogs.base import RUN_ID

MAX_BYTES = 1024 * 1024
"""A run's log is cut here: the job's last lines are in its error, all of them in
charon's own log."""
KEEP = 1000
"""Logs kept; starting the next one removes the oldest."""
# The folder is listed again after this many new logs (and at the first), not at each:
# a listing of a thousand logs at every run cost a one-shot run of 10,000 leaves most of
# its time. Between listings the logs this process started are counted in memory;
# another process's are found at the next listing.
CUT = "[charon] the run's log is cut here, at {size} bytes; the rest is in charon's own log\n"


class FileRunLogs:
    def __init__(self, folder: Path, *, max_bytes: int = MAX_BYTES, keep: int = KEEP) -> None:
        self._folder = folder
        self._max_bytes = max_bytes
        self._keep = keep
        self._kept: deque[Path] = deque()  # oldest first, as of the last listing
        self._started_since_listing: int | None = None  # None: never listed
        self._lock = threading.Lock()  # appends of several runs share worker threads
        self._failing: set[str] = set()
        """Runs whose last line could not be written (and was said so)."""

    async def append(self, run_id: str, line: str) -> None:
        if RUN_ID.fullmatch(run_id):
            try:
                await anyio.to_thread.run_sync(self._append, run_id, line)
            except OSError as exc:
                # Once a run until a write works again: a job logging a line a
                # millisecond to a full disk must not flood charon's own log as well.
                if run_id not in self._failing:
                    self._failing.add(run_id)
                    get_logger("charon.job").warning(
                        "cannot write the run's log; its lines are lost until a write"
                        " works again", run_id=run_id, error=str(exc))
            else:
                self._failing.discard(run_id)

    async def read(self, run_id: str, offset: int, limit: int) -> bytes | None:
        if not RUN_ID.fullmatch(run_id):
            return None
        return await anyio.to_thread.run_sync(self._read, run_id, offset, limit)

    def _path(self, run_id: str) -> Path:
        return self._folder / f"{run_id}.log"

    def _append(self, run_id: str, line: str) -> None:
        path = self._path(run_id)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            self._folder.mkdir(parents=True, exist_ok=True)
            self._make_room(path)
            size = 0
        cut = CUT.format(size=self._max_bytes).encode()
        budget = self._max_bytes - len(cut) - 1
        if size >= budget:  # cut already
            return
        data = (line + "\n").encode(errors="replace")
        if size + len(data) > budget:
            data = data[:budget - size] + b"\n" + cut
        with path.open("ab") as out:
            out.write(data)

    def _make_room(self, new: Path) -> None:
        """Remove the oldest logs so that, with ``new``, ``keep`` remain."""
        with self._lock:
            started = self._started_since_listing
            if started is None or started >= self._keep:
                self._kept = deque(sorted(self._folder.glob("*.log"), key=_modified))
                self._started_since_listing = started = 0
            while len(self._kept) >= self._keep:
                with contextlib.suppress(FileNotFoundError):
                    self._kept.popleft().unlink()
            self._kept.append(new)
            self._started_since_listing = started + 1

    def _read(self, run_id: str, offset: int, limit: int) -> bytes | None:
        try:
            with self._path(run_id).open("rb") as log:
                log.seek(offset)
                return log.read(limit)
        except FileNotFoundError:
            return None


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0
