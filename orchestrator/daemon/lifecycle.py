"""How the daemon's tasks stop: sensing at once, work after a grace period.

Sensing tasks (sensors, the dispatcher, the HTTP server, clocks, the heartbeat, an
evaluator waiting for its next day) and work (evaluations, backfills) each run under
a cancel scope of their own, kept here, so a stop can cancel the first at once and
give the second ``daemon.shutdown_grace_seconds``.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.abc

from orchestrator.log import get_logger
from orchestrator.signals import stop_signals


class Lifecycle:
    """The scopes of one daemon's tasks; ``stopping`` from the first :meth:`stop` on."""

    def __init__(self, grace_seconds: float) -> None:
        self.stopping = False
        self._grace_seconds = grace_seconds
        self._sensing: set[anyio.CancelScope] = set()
        self._working: set[anyio.CancelScope] = set()
        self._drained = anyio.Event()
        self._signals: anyio.CancelScope | None = None
        self._grace: anyio.CancelScope | None = None
        self._log = get_logger("charon.daemon")

    @property
    def working(self) -> int:
        """Work going on now."""
        return len(self._working)

    @contextmanager
    def sensing(self) -> Iterator[anyio.CancelScope]:
        """A scope a stop cancels at once (cancelled already when stopping)."""
        with anyio.CancelScope() as scope:
            self._sensing.add(scope)
            if self.stopping:
                scope.cancel()
            try:
                yield scope
            finally:
                self._sensing.discard(scope)

    async def sensing_task(
        self, work: Callable[..., Awaitable[None]],
        *, task_status: anyio.abc.TaskStatus[Any] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        with self.sensing():
            if task_status is anyio.TASK_STATUS_IGNORED:
                await work()
            else:
                await work(task_status=task_status)

    async def working_task(self, work: Callable[[], Awaitable[None]]) -> None:
        with anyio.CancelScope() as scope:
            self._working.add(scope)
            try:
                await work()
            finally:
                self._working.discard(scope)
                if self.stopping and not self._working:
                    self._drained.set()

    async def stop(self) -> None:
        """Cancel sensing now; give work the grace period, then cancel it too (its runs
        are released by the engine as it unwinds)."""
        self.stopping = True
        for scope in list(self._sensing):
            scope.cancel()
        if self._working:
            with anyio.move_on_after(self._grace_seconds) as grace:
                self._grace = grace
                await self._drained.wait()
        for scope in list(self._working):
            self._log.warning("stopping work still going after the grace period; its run is"
                              " released to be resumed")
            scope.cancel()
        if self._signals is not None:
            self._signals.cancel()

    async def handle_signals(
        self, on_first: Callable[[], None],
        *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """SIGTERM, SIGINT or SIGHUP (a closed terminal, or a habit of reloading with it:
        its default would end the process on the spot; not under ``nohup``) calls
        ``on_first`` (which starts the stop); a second one during the grace period ends
        the grace at once. Listens until the stop is done, so no signal ever finds the
        default handler."""
        with anyio.CancelScope() as self._signals, \
                anyio.open_signal_receiver(
                    *stop_signals(signal.SIGTERM, signal.SIGINT)) as signals:
            task_status.started()
            async for signum in signals:
                name = signal.Signals(signum).name
                if not self.stopping:
                    self._log.info("signal received", signal=name)
                    on_first()
                elif self._grace is not None:
                    self._log.warning("signal received again: stopping running work now",
                                      signal=name)
                    self._grace.cancel()
