"""The roots waiting for one of the daemon's evaluators, in the order they were scheduled."""

from __future__ import annotations

from collections import deque

import anyio

from sensors.facts import Root


class ReadyRoots:
    """A queue without a bound of its own: the daemon puts a root in at most once at a
    time (while it is queued or evaluated it is only marked to be evaluated again), so
    it never holds more than the watched roots."""

    def __init__(self) -> None:
        self._roots: deque[Root] = deque()
        self._more = anyio.Event()

    def put(self, root: Root) -> None:
        self._roots.append(root)
        self._more.set()

    async def get(self) -> Root:
        while not self._roots:
            if self._more.is_set():
                self._more = anyio.Event()
            await self._more.wait()
        return self._roots.popleft()
