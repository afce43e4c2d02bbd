"""The backfills a daemon runs: one at a time, started through its API or taken over
from a replica that ran one and is gone.

A backfill the API accepted (202) is recorded with its workflow, its days at once and
the replica running it. When that replica is gone (killed, stopped, or silent past the
replica timeout) a live one running no backfill takes it over: one of those racing for
it wins the store's compare-and-set, and resumes it, skipping the days done. A replica
restarted under the same ``daemon.replica_id`` takes its own back at once. A backfill
of ``charon backfill`` is its command's to resume, never a daemon's.

The runner looks at its backfill's record at every heartbeat too: cancelled by a user,
or taken over (this replica was thought gone), it is stopped there and then, its runs
going on released as at a shutdown; its next write to the record would be refused
anyway, but a day of it may run for hours.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Awaitable, Callable, Mapping
from datetime import date

import anyio

from orchestrator.core.backfill import ErrorRetries, backfill_record, run_backfill
from orchestrator.core.engine import Engine
from orchestrator.daemon.membership import Membership
from orchestrator.errors import CharonError, described, leaves
from orchestrator.intervals import DateInterval, parse_interval
from orchestrator.log import get_logger
from orchestrator.model import Backfill, BackfillOrder, BackfillState
from orchestrator.stores.state.backfills import refused
from orchestrator.stores.state.base import StateStore
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.task import Task
from orchestrator.workflows import WorkflowSettings

StartWork = Callable[[Callable[[], Awaitable[None]]], bool]


def backfill_days(workflow: WorkflowSettings, interval: DateInterval,
                  order: BackfillOrder) -> list[date]:
    """The workflow's days of ``interval`` (a period's first day for each of its
    periods), in ``order``."""
    return sorted({workflow.partition_day(day) for day in interval},
                  reverse=order is BackfillOrder.NEWEST)


def _roots(workflow: WorkflowSettings, interval: DateInterval,
           order: BackfillOrder) -> dict[date, Task]:
    """Each day's task of a backfill of ``workflow``, in the order the days begin."""
    return {day: root_task(workflow, day) for day in backfill_days(workflow, interval, order)}


class Backfills:
    def __init__(self, state: StateStore, engine: Engine, membership: Membership,
                 workflows: Mapping[str, WorkflowSettings], *, errors: ErrorRetries,
                 start_work: StartWork) -> None:
        """``start_work`` runs a backfill as the daemon runs work (False when stopping)."""
        self._state = state
        self._engine = engine
        self._membership = membership
        self._workflows = workflows
        self._errors = errors
        self._start_work = start_work
        self.running: str | None = None
        """The id of the backfill this daemon runs now."""
        self._starting = False
        """A backfill is being started or taken over: no other may begin meanwhile."""
        self._defined_otherwise: set[str] = set()
        """The backfills whose workflow this daemon defines otherwise (other days'
        tasks): never this one's, and not worth building their days' tasks again at
        every heartbeat while their replica is gone."""
        self._scope: anyio.CancelScope | None = None
        """What stops it."""
        self._log = get_logger("charon.backfill")

    @property
    def busy(self) -> bool:
        """Whether a backfill runs here, or is being started: one at a time."""
        return self.running is not None or self._starting

    async def start(self, workflow: WorkflowSettings, interval: DateInterval,
                    order: BackfillOrder, max_parallel: int) -> Backfill | None:
        """Record the backfill (or resume the one recorded) and run it here; None when
        the daemon is stopping. The caller has checked that this daemon is not busy."""
        self._starting = True  # before the first await: no other start or take-over now
        try:
            roots = _roots(workflow, interval, order)
            record = await self._state.open_backfill(dataclasses.replace(
                backfill_record(shlex.join(["--module", workflow.module, workflow.task]),
                                str(interval), order, roots),
                workflow=workflow.name, max_parallel=max_parallel,
                owner=self._membership.replica))
            return record if self._run(record, roots) else None
        finally:
            self._starting = False

    async def keep_taking_over(self) -> None:
        """At every heartbeat, until cancelled: stop the backfill running here if it is
        no longer this replica's, and look for one to take over."""
        while True:
            await anyio.sleep(self._membership.interval_seconds)
            try:
                await self._stop_if_not_held()
                await self.take_over()
            except CharonError as exc:  # the store: the next heartbeat's look tries again
                self._log.warning("cannot look at the backfills", error=str(exc))

    async def _stop_if_not_held(self) -> None:
        """A user cancelled the backfill running here, or another runner took it (this
        replica was thought gone): stopped now, rather than when a day of it ends."""
        running, scope = self.running, self._scope
        if running is None or scope is None:
            return
        found = await self._state.get_backfill(running)
        if self.running != running:
            return  # it ended meanwhile, and said why
        me = self._membership.replica
        if found is not None and found.state is BackfillState.RUNNING and found.owner == me:
            return
        why = refused(running, None if found is None else (found.owner, found.state))
        self._log.warning("backfill stopped", backfill=running, error=str(why))
        scope.cancel()

    async def take_over(self) -> None:
        """Take over and run one running backfill whose replica is gone, if this one
        runs none and knows the live replicas."""
        if self.busy or not self._membership.heard:
            return
        self._starting = True
        me = self._membership.replica
        try:
            for record in await self._state.list_backfills(running=True):
                roots = self._orphan_roots(record)
                if roots is not None and await self._state.take_backfill(
                        record.id, me, from_owner=record.owner):
                    self._log.info("backfill taken over", backfill=record.id,
                                   workflow=record.workflow, replica_gone=record.owner)
                    self._run(dataclasses.replace(record, owner=me), roots)
                    return
        finally:
            self._starting = False

    def _orphan_roots(self, record: Backfill) -> dict[date, Task] | None:
        """The roots of ``record`` when it is a daemon's whose replica is gone (or is
        this one, restarted) and this daemon has its workflow, defined alike."""
        me, live = self._membership.replica, self._membership.live
        if not record.workflow or (record.owner in live and record.owner != me):
            return None
        workflow = self._workflows.get(record.workflow)
        if workflow is None or record.id in self._defined_otherwise:
            return None
        roots = _roots(workflow, parse_interval(record.interval), record.order)
        if backfill_record(record.task, record.interval, record.order, roots).key != record.key:
            self._defined_otherwise.add(record.id)
            return None
        return roots

    def _run(self, record: Backfill, roots: Mapping[date, Task]) -> bool:
        async def work() -> None:
            scope = self._scope = anyio.CancelScope()
            try:
                with scope:
                    await run_backfill(self._engine, self._state, record, roots,
                                       max_parallel=record.max_parallel,
                                       on_day=lambda _: None, errors=self._errors)
            # A store that failed leaves it running, taken up again at a heartbeat; else
            # another runner has it, or a user cancelled it.
            except* CharonError as group:
                self._log.warning("backfill stopped", backfill=record.id,
                                  error="; ".join(map(described, leaves(group))))
            finally:
                self.running, self._scope = None, None

        self.running = record.id
        if self._start_work(work):
            return True
        self.running = None
        return False
