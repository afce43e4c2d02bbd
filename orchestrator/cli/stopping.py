"""A one-shot command stopped by SIGTERM or SIGHUP as Ctrl-C stops it.

Their default action ends the process on the spot: a ``charon run`` that a scheduler's
time limit, a pod's eviction, ``timeout`` or a closed SSH session stops would leave
its claimed runs leased to nobody, so that no run of those tasks could start before
their leases ran out (an hour by default), and its local jobs running. Caught, the
signal cancels the command instead: each claimed run is released and each local job
stopped on the way out, as with Ctrl-C. Under ``nohup``, SIGHUP stays ignored. The
daemon and the services handle the signals themselves (a grace period for running
work).
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from orchestrator.signals import stop_signals

SAID = {signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}
"""The one line a command stopped so prints, as the shells name the signal."""


class Stopped(Exception):  # a way to end, not an error of charon's
    """The command was cancelled by ``signum``; the process exits with 128 + it."""

    def __init__(self, signum: signal.Signals) -> None:
        super().__init__(SAID[signum])
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


async def unless_stopped(command: Callable[[], Awaitable[int]]) -> int:
    """``command``'s exit code; raises :class:`Stopped` once a stop signal has cancelled
    it and its clean-up is done. A signal that comes as the command ends changes
    nothing: what it did is done, and its code says so."""
    stopped: list[signal.Signals] = []
    code: int | None = None
    async with anyio.create_task_group() as group:

        async def listen(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            with anyio.open_signal_receiver(*stop_signals(signal.SIGTERM)) as signals:
                task_status.started()
                async for signum in signals:
                    stopped.append(signal.Signals(signum))
                    group.cancel_scope.cancel()
                    return

        # Listening before the command begins: a signal from then on never finds the
        # default action, which would end the process on the spot.
        await group.start(listen)
        code = await command()
        group.cancel_scope.cancel()
    if code is not None:
        return code
    assert stopped  # only a stop signal cancels the command in this scope
    raise Stopped(stopped[0])
