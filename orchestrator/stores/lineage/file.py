"""``lineage.kind = "file"``: each event appended to a file as one JSON line."""

from __future__ import annotations

import json
from pathlib import Path

import anyio

from orchestrator.stores.lineage.base import Event, Send


def appender(path: Path) -> Send:
    async def send(event: Event) -> None:
        line = json.dumps(event, sort_keys=True) + "\n"
        await anyio.to_thread.run_sync(_append, path, line)

    return send


def _append(path: Path, line: str) -> None:
    # One write of a whole line per event, opened for appending: lines of several
    # processes sharing the file do not interleave.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as out:
        out.write(line)
