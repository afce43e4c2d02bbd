"""The lease keeper: renews every running attempt's lease, and stops an attempt the moment
it may have lost it.

An attempt's work runs inside a cancel scope the keeper holds. The keeper renews each
lease a third of the way through it, and between renewals watches the time on this
process's monotonic clock: a lease is counted from just before the request that set
it, so once that much time has passed here, the store may already have given the run
to another worker. The keeper then cancels the attempt's work (which stops its job)
without waiting to hear it from the store. That is what happens first when a process
paused past its lease (``SIGSTOP``, a frozen VM) wakes up: its timers are all overdue,
and the keeper's is one of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
import anyio.abc

from orchestrator.errors import CharonError, LeaseLost
from orchestrator.log import get_logger
from orchestrator.model import Run
from orchestrator.stores.state.base import StateStore

# The keeper's longest sleep: how late a paused process notices it lost its leases.
MAX_TICK_SECONDS = 1.0
# Stop this long before the lease would run out on the store's clock, for the clocks'
# rates to differ a little and the stop to take effect.
SAFETY_FRACTION = 0.05


@dataclass
class HeldLease:
    """One attempt's lease, as this process knows it."""

    run: Run
    scope: anyio.CancelScope
    valid_until: float
    """Monotonic time after which the lease may be gone."""
    renew_at: float
    lost: str | None = None
    """Why the keeper stopped the attempt, once it has."""
    renewals: int = field(default=0)


class LeaseKeeper:
    """Keeps the leases of the attempts running in one evaluation; one keeper each.

    Its task, in ``group``, starts with the first lease held: most evaluations of a
    daemon's sweep claim nothing, and a task each would be much of what they cost.
    """

    def __init__(
        self, state: StateStore, lease: timedelta, group: anyio.abc.TaskGroup,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._state = state
        self._lease = lease.total_seconds()
        self._monotonic = monotonic
        self._held: dict[str, HeldLease] = {}
        self._group: anyio.abc.TaskGroup | None = group
        """Where its task starts, until it has."""
        self._keeping = anyio.CancelScope()
        self._log = get_logger("charon.lease")

    def stop(self) -> None:
        """Stop keeping (the evaluation is over: nothing is held any more)."""
        self._group = None
        self._keeping.cancel()

    @contextmanager
    def hold(self, run: Run, claimed_at: float) -> Iterator[HeldLease]:
        """Keep ``run``'s lease while the block runs; the block is cancelled when it is
        lost. ``claimed_at`` is the monotonic time just before the claim was asked."""
        if self._group is not None:
            self._group.start_soon(self._keep)
            self._group = None
        with anyio.CancelScope() as scope:
            held = HeldLease(run, scope, self._valid_until(claimed_at),
                             claimed_at + self._lease / 3)
            self._held[run.id] = held
            try:
                yield held
            finally:
                del self._held[run.id]

    def _valid_until(self, asked_at: float) -> float:
        return asked_at + self._lease * (1 - SAFETY_FRACTION)

    async def _keep(self) -> None:
        """Watch and renew until stopped."""
        with self._keeping:
            while True:
                await anyio.sleep(min(self._lease / 3, MAX_TICK_SECONDS))
                for held in list(self._held.values()):
                    if held.lost is None:
                        await self._tend(held)

    async def _tend(self, held: HeldLease) -> None:
        now = self._monotonic()
        if now >= held.valid_until:
            self._stop(held, "its lease may have run out while this process was paused"
                             " or could not reach the state store")
            return
        if now < held.renew_at:
            return
        try:
            await self._state.renew(held.run.id, held.run.attempt, timedelta(seconds=self._lease))
        except LeaseLost as exc:
            self._stop(held, str(exc))
        except CharonError as exc:
            # The store may be back before the lease runs out: try again next tick.
            self._log.warning("could not renew a lease", run_id=held.run.id, error=str(exc))
        else:
            held.valid_until = self._valid_until(now)
            held.renew_at = now + self._lease / 3
            held.renewals += 1

    def _stop(self, held: HeldLease, why: str) -> None:
        self._log.warning("lease lost: stopping the run", run_id=held.run.id,
                          attempt=held.run.attempt, reason=why)
        held.lost = why
        held.scope.cancel()
