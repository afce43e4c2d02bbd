"""A source that stops answering holds up only the lookups that need it.

A source can accept connections and never answer: a paused server, a stuck proxy, a
half-open connection. A lookup of it then waits for its client's timeouts and retries,
minutes in all, and a daemon's evaluators, which serve every workflow, each waited so:
a warehouse that hung kept every day of every workflow from being evaluated, those that
never read it too.

So each source's lookups are bounded by ``engine.lookup_timeout_seconds``. A lookup not
answered within it fails, and the source is taken as not answering: the other lookups
waiting on it fail with it, and for as long again every lookup of it fails at once,
without asking. Then one lookup tries it (the others still fail at once meanwhile); its
answer, even an error, means it answers again. An evaluation that fails is tried again
later, as after any outage.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from orchestrator.errors import SourceNotAnswering
from orchestrator.log import Logger, get_logger

T = TypeVar("T")

LOOKUP_TIMEOUT_SECONDS = 30.0
"""``engine.lookup_timeout_seconds``'s default."""
REGISTRY, WAREHOUSE, STORAGE, DATABASE = "the registry", "the warehouse", "storage", "the database"
"""The sources, as their guards name them: one name, one guard, whoever asks."""


class SourceGuards:
    """One guard per source, shared by everything in a process that asks it (the
    engine's lookups, the daemon's polls): a source that stops answering is one outage,
    found by whichever asks first and said once, rather than one per asker."""

    def __init__(self, timeout_seconds: float = LOOKUP_TIMEOUT_SECONDS) -> None:
        self._timeout = timeout_seconds
        self._guards: dict[str, SourceGuard] = {}

    def __getitem__(self, source: str) -> SourceGuard:
        """The guard of ``source`` (the registry, the warehouse...), made on first use."""
        guard = self._guards.get(source)
        if guard is None:
            guard = self._guards[source] = SourceGuard(source, self._timeout)
        return guard


class SourceGuard:
    """The lookups of one source (the registry, the warehouse...), bounded in time."""

    def __init__(self, source: str, timeout_seconds: float) -> None:
        if not timeout_seconds > 0:
            raise ValueError(f"a lookup timeout must be positive, not {timeout_seconds}")
        self._source = source
        self._timeout = timeout_seconds
        self._failing_until = -math.inf
        """Until when (anyio's clock) lookups fail at once; past it, one tries."""
        self._down = False
        self._trying = False
        self._waiting: set[anyio.CancelScope] = set()
        self._log = get_logger("charon.sensors")

    async def ask(self, lookup: Callable[[], Awaitable[T]]) -> T:
        """``lookup()``'s answer; SourceNotAnswering when the source is taken as not
        answering, or does not answer within the timeout."""
        trying = self._admit()
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self._timeout) as scope:
                self._waiting.add(scope)
                try:
                    answer = await lookup()
                except Exception:
                    self._answering()  # an error, but in time: the source answers
                    raise
                finally:
                    self._waiting.discard(scope)
            if scope.cancelled_caught:
                self._not_answering()
                raise SourceNotAnswering(
                    f"{self._source} did not answer a lookup within {self._timeout:g} s")
        finally:
            if trying:
                self._trying = False
        self._answering()
        return answer

    def _admit(self) -> bool:
        """Whether this lookup may ask, and whether it is the one trying the source."""
        if not self._down:
            return False
        left = self._failing_until - anyio.current_time()
        said = f"{self._source} is not answering (no answer within {self._timeout:g} s)"
        if left > 0:
            raise SourceNotAnswering(f"{said}: its lookups fail at once for another"
                                     f" {math.ceil(left)} s, then one tries it")
        if self._trying:
            raise SourceNotAnswering(f"{said}: its lookups fail at once while one tries it")
        self._trying = True
        return True

    def _answering(self) -> None:
        if self._down:
            self._down = False
            self._log.info("source answering again", source=self._source)

    def _not_answering(self) -> None:
        now = anyio.current_time()
        if not self._down or now >= self._failing_until:
            self._down = True
            self._failing_until = now + self._timeout
            self._log.warning("source not answering: its lookups fail at once for a while",
                              source=self._source, seconds=self._timeout)
        for scope in self._waiting:
            scope.cancel()


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` is a source's outage, which its guard has said once already."""
    return isinstance(error, SourceNotAnswering)


def level_for(log: Logger, error: Exception) -> Callable[..., Any]:
    """How to log what ``error`` failed: at debug when it is a source's outage, not
    again for each lookup or task it fails."""
    return log.debug if is_outage(error) else log.warning
