"""``GET /runs/{run_id}/log``: the run's log as server-sent events, from its start, then
following what the job appends until the run ends.

Each ``event: log`` carries whole lines (JSON, shown as text by the page) and, as its
``id``, the offset after them: a browser that reconnects sends it back as
``Last-Event-ID`` and resumes there. A client holds one chunk at a time, however long
the log; ``event: end`` closes the stream once the run has ended and its log is read.
"""

from __future__ import annotations

from contextlib import suppress
from typing import TYPE_CHECKING

import anyio
from aiohttp import web

from orchestrator.daemon.ui.events import event_stream, message
from orchestrator.errors import CharonError
from orchestrator.model import Run
from orchestrator.validate import whole_number

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon

CHUNK_BYTES = 64 * 1024
POLL_SECONDS = 0.25


class RunLogStreams:
    """Every open log stream of the application, ended at its shutdown (each would
    otherwise hold it until its run ends)."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon
        self._closing = False

    async def closing(self, app: web.Application) -> None:
        """aiohttp's shutdown signal."""
        self._closing = True

    async def stream(self, request: web.Request, run: Run) -> web.StreamResponse:
        response = await event_stream(request)
        with suppress(ConnectionError):  # the client left
            await self._follow(response, run, _resumed_at(request))
        return response

    async def _follow(self, response: web.StreamResponse, run: Run, offset: int) -> None:
        daemon = self._daemon
        await response.write(b": hello\n\n")
        while True:
            ended = not run.state.active
            chunk = await daemon.adapters.run_logs.read(run.id, offset, CHUNK_BYTES)
            if chunk is None and (ended or run.lease_owner not in (None, daemon.engine.owner)):
                await response.write(message("missing", {"text": _missing(run)}).encode())
                break
            # Ended and short of a chunk: the log's last bytes, even without a line break.
            if sent := _whole_lines(chunk or b"",
                                    at_end=ended and len(chunk or b"") < CHUNK_BYTES):
                offset += len(sent)
                lines = sent.decode(errors="replace").splitlines()
                await response.write(f"id: {offset}\n".encode()
                                     + message("log", {"lines": lines}).encode())
                continue
            if ended:
                break
            await anyio.sleep(POLL_SECONDS)
            if self._closing:
                return  # shutting down: the browser reconnects, to a replica still up
            run = await _now(daemon, run)
        await response.write(message("end", {"state": run.state.value}).encode())


def _whole_lines(chunk: bytes, *, at_end: bool) -> bytes:
    """``chunk`` up to its last line break, a line never sent in halves; all of it when
    nothing more will come, or when one line fills it."""
    if at_end:
        return chunk
    whole = chunk[:chunk.rfind(b"\n") + 1]
    return whole or (chunk if len(chunk) == CHUNK_BYTES else b"")


def _missing(run: Run) -> str:
    if run.lease_owner:
        return f"the job's log is kept by worker {run.lease_owner}, which runs it"
    return "no log of this run is kept here: it is kept by the worker that ran it"


async def _now(daemon: Daemon, run: Run) -> Run:
    try:
        return await daemon.adapters.state.get(run.task_id, run.fingerprint) or run
    except CharonError:
        return run  # the state store is down: keep following the file


def _resumed_at(request: web.Request) -> int:
    return whole_number(request.headers.get("Last-Event-ID", "0")) or 0


