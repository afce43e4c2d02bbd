"""A place within the concurrency limits: what a run holds from its claim to its work's end."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import anyio


class PlaceLine(Protocol):
    """Who is next to a place given back, when several wait for one (the daemon's days,
    and the runs it did not start: a backfill's)."""

    def offer(self) -> None:
        """A place was given back: those waiting have their turns at the places free."""

    async def park(self, limiter: anyio.CapacityLimiter | None) -> None:
        """Return at the caller's turn at a place, within ``limiter`` and the engine's."""


class Place:
    """A place within the concurrency limits, held from before the claim until the run's
    work is done: it is given back before the success is recorded, since the limits bound
    jobs, not bookkeeping, and successes that queue up then share one state-store commit."""

    def __init__(self, limits: list[anyio.CapacityLimiter],
                 on_release: Callable[[], None] | None = None) -> None:
        self._limits = limits
        self._on_release = on_release
        self._held = False

    async def __aenter__(self) -> Place:
        for taken, limit in enumerate(self._limits):
            try:
                await limit.acquire()
            except BaseException:
                for held in reversed(self._limits[:taken]):
                    held.release()
                raise
        self._held = True
        return self

    def release(self) -> None:
        if self._held:
            self._held = False
            for limit in reversed(self._limits):
                limit.release()
            if self._on_release is not None:
                self._on_release()

    async def __aexit__(self, *exc: object) -> None:
        self.release()
