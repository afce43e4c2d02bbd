"""Running an aiohttp application as a task of the process's task group."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import anyio.abc
from aiohttp import web

from orchestrator.errors import CharonError


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    announce: Callable[[int], None] | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled; report the bound port (``port`` 0 picks a free one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise CharonError(f"cannot listen on {host}:{port}: {exc}") from exc
        bound = int(runner.addresses[0][1])
        if announce is not None:
            announce(bound)
        task_status.started(bound)
        await anyio.sleep_forever()
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()
