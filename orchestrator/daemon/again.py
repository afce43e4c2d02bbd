"""The days the daemon evaluates again later, without a new trigger: after an evaluation
failed (with backoff), and when one of their runs' leases runs out or a retry is due."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import anyio

from orchestrator.daemon.metrics import DaemonMetrics
from orchestrator.daemon.polling import PollSchedule
from orchestrator.daemon.status import RootState
from orchestrator.log import Throttled, get_logger
from sensors.facts import Root

LEASE_RETRY_MARGIN_SECONDS = 0.5
"""Past a lease's end, so the holder's clock (if a little behind ours) has let it go too."""


class Again:
    """Each day's one pending re-evaluation, and what its failures say."""

    def __init__(self, metrics: DaemonMetrics, backoff: PollSchedule,
                 schedule: Callable[[Root], None],
                 start: Callable[[Callable[[], Awaitable[None]]], bool]) -> None:
        """``schedule`` queues a day's evaluation; ``start`` starts a task that waits to,
        as the daemon's sensing does (False when the daemon does not run)."""
        self._metrics = metrics
        self._backoff = backoff
        self._schedule = schedule
        self._start = start
        self._log = get_logger("charon.daemon")
        # A day's first failure is said; the next ones are counted, in a line every 10 s.
        self._counted = Throttled(
            self._log, "evaluations failed; each tried again later", "evaluations")

    def failed(self, root: Root, state: RootState, error: str, *,
               outage: bool = False) -> None:
        """Record the failure and evaluate the day again later. Its first failure in a
        row is said, unless a source's outage caused it: that source's guard said so
        once, for all the days it fails (a thousand lines at once, else); the others
        are counted into one line now and then."""
        state.error, state.errors = error, state.errors + 1
        self._metrics.sources["evaluations"].failed(error)
        self._metrics.evaluation_errors.inc(workflow=root.workflow)
        delay = self._backoff.next_delay(state.errors)
        said = {"root": str(root), "error": error, "failures": state.errors,
                "retry_in_seconds": round(delay, 3)}
        if state.errors == 1 and not outage:
            self._log.warning("evaluation failed; trying again later", **said)
        else:  # a source down for an hour, each of its days tried again every minute
            self._counted(**said)
        self.at(root, state, datetime.now(UTC) + timedelta(seconds=delay))

    def at(self, root: Root, state: RootState, when: datetime) -> None:
        """Evaluate ``root`` again at ``when``: once another worker's lease on one of its
        runs is out (if that worker died, nothing else would trigger the takeover), a
        failed run's retry is due, or a failing source may be back. One re-evaluation is
        pending per root at a time, the earliest."""
        if state.retry_at is not None and state.retry_at <= when:
            return

        async def retry() -> None:
            wait = (when - datetime.now(UTC)).total_seconds() + LEASE_RETRY_MARGIN_SECONDS
            await anyio.sleep(max(wait, 0))
            if state.retry_at == when:
                state.retry_at = None
            self._schedule(root)

        if self._start(retry):
            state.retry_at = when
