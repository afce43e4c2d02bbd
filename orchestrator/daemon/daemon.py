"""The long-running daemon: sensors feed triggers, triggers fire evaluations, runs launch.

One task group holds everything. Sensing tasks (sensors, dispatcher, HTTP server,
the window clock) and evaluations each run under their own cancel scope, so a
shutdown can stop the first at once and give the second a grace period (lifecycle.py).
A fixed pool of evaluators takes the scheduled roots from one queue, whatever the
number watched; replicas sharing a state store split the roots (membership.py).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.config import Settings
from orchestrator.core.backfill import ErrorRetries
from orchestrator.core.engine import Engine
from orchestrator.core.policy import NO_RERUNS, Policy
from orchestrator.core.ports import Adapters
from orchestrator.daemon import status
from orchestrator.daemon.again import Again
from orchestrator.daemon.asking import Asking
from orchestrator.daemon.backfilling import Backfills
from orchestrator.daemon.janitor_loop import sweep_staging
from orchestrator.daemon.lifecycle import Lifecycle
from orchestrator.daemon.membership import Membership, Shares
from orchestrator.daemon.metrics import DaemonMetrics
from orchestrator.daemon.places import AtLimit, DayHooks
from orchestrator.daemon.polling import PollSchedule, source_polls
from orchestrator.daemon.ready import ReadyRoots
from orchestrator.daemon.status import PageQuery, RootState, Tally, Verdict
from orchestrator.daemon.watch import Watchlist
from orchestrator.errors import CharonError, leaves, messages
from orchestrator.log import get_logger
from orchestrator.model import RETRY_AT_ONCE, Asked, Rerun
from orchestrator.tasks.task import Task
from sensors.facts import Root, Trigger
from sensors.guard import is_outage

WINDOW_CHECK_SECONDS = 60.0
MAX_CONCURRENT_EVALUATIONS = 64
FREEZE_EVERY = 2000
"""Days evaluated for the first time between two freezes of the collector's objects."""
LEAVE_SECONDS = 2.0
"""How long a stopped daemon tries to tell the state store it left."""


def utc_today() -> date:
    return datetime.now(UTC).date()


class Daemon:
    def __init__(
        self,
        settings: Settings,
        adapters: Adapters,
        engine: Engine,
        *,
        metrics: DaemonMetrics | None = None,
        today: Callable[[], date] = utc_today,
        on_launch: Callable[[Task], None] | None = None,
        freeze: Callable[[], None] = lambda: None,
    ) -> None:
        """``on_launch`` is told of each launch too, once the daemon's metrics count it.
        ``freeze`` is called when what was made so far lives as long as the daemon (the
        roots once the window is read, the days' records every FREEZE_EVERY first
        evaluations): ``charon daemon`` passes ``gc.freeze`` (README, Benchmarks)."""
        self.settings = settings
        self.adapters = adapters
        self.metrics = metrics or DaemonMetrics()
        self.watch = Watchlist(settings.workflows)
        self.engine = engine
        self.membership = Membership(
            adapters.state, settings.daemon.replica_id or engine.owner,
            timedelta(seconds=settings.daemon.replica_timeout_seconds), settings.workflows)
        self._on_launch = on_launch
        self._freeze = freeze
        self._today = today
        self._limiters = {
            w.name: anyio.CapacityLimiter(w.max_concurrent_runs) for w in settings.workflows
        }
        evaluate_again = partial(self.schedule, received=None)
        self._at_limit = AtLimit(self._limiters, lambda: engine.places_free, evaluate_again)
        engine.share_places(self._at_limit)
        self._policies = {
            w.name: Policy(self._limiters[w.name], w.rerun_late_inputs, retry=w.retry_policy)
            for w in settings.workflows
        }
        daemon = settings.daemon
        self.backoff = PollSchedule(daemon.poll_interval_ms / 1000, daemon.jitter_percent / 100,
                                    daemon.max_backoff_seconds)
        self.asking = Asking(adapters.state, self.membership, self.backoff)
        self._take_up_asked = partial(self.asking.take_up, self.watch.workflows.__contains__,
                                      self._ask)
        self.roots: dict[Root, RootState] = {}
        self.tally = Tally()
        self._first_verdicts = 0
        # A sweep of 100,000 days is a queue, not 100,000 tasks.
        self._ready = ReadyRoots(self.watch, engine)
        self._life = Lifecycle(daemon.shutdown_grace_seconds)
        self._group: anyio.abc.TaskGroup | None = None
        self._log = get_logger("charon.daemon")
        self._again = Again(self.metrics, self.backoff, evaluate_again, self._start_sensing)
        # Nobody watches a backfill the daemon runs: a day an outage failed is tried
        # again with the daemon's backoff, as its own days are, for a while.
        self.backfills = Backfills(
            adapters.state, engine, self.membership, self.watch.workflows,
            errors=ErrorRetries(daemon.backfill_retry_seconds, self.backoff.next_delay),
            start_work=self.start_work)
        self._send: MemoryObjectSendStream[Trigger] | None = None

    async def run(
        self,
        serve: Callable[..., Awaitable[None]] | None = None,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until stopped; ``serve`` (the HTTP server) is started before sensing begins."""
        send, receive = anyio.create_memory_object_stream[Trigger](
            self.settings.daemon.trigger_queue
        )
        self._send = send
        polls = source_polls(self.adapters, self.watch, send, self.backoff, self.metrics,
                             guards=self.engine.guards)
        with send, receive:
            await self._run_all(serve, receive, polls, task_status)
        self._log.info("daemon stopped")

    async def _run_all(
        self,
        serve: Callable[..., Awaitable[None]] | None,
        receive: MemoryObjectReceiveStream[Trigger],
        polls: Sequence[Callable[[], Awaitable[None]]],
        task_status: anyio.abc.TaskStatus[None],
    ) -> None:
        async with anyio.create_task_group() as group:
            self._group = group
            sensing = self._life.sensing_task
            # Signals first: a SIGTERM that comes as soon as the daemon says it listens
            # stops it cleanly, rather than killing it before its handler is there.
            await group.start(self._life.handle_signals, partial(group.start_soon, self.stop))
            # The other replicas known first, the sweep evaluates only this one's days.
            with anyio.move_on_after(self.membership.interval_seconds):
                await self.membership.beat()
            self.metrics.replicas.set(len(self.membership.members))
            # The window is read before the server listens: at 100,000 days that is a few
            # tenths of a second of work no request or sensor can be kept waiting by.
            self._sweep()
            self._freeze()  # its roots live as long as the daemon
            group.start_soon(sensing, self._take_up_asked)
            if serve is not None:
                await group.start(sensing, serve)
            # An evaluation waits on each job it runs: the engine's runs at once never
            # leave fewer evaluators than that to everything else.
            for _ in range(MAX_CONCURRENT_EVALUATIONS + self.engine.max_concurrent_runs):
                group.start_soon(self._ready.evaluator, self._life, self._evaluate)
            group.start_soon(sensing, partial(self._dispatch, receive))
            group.start_soon(sensing, self._watch_window)
            group.start_soon(sensing, self.metrics.probe_loop_lag)
            group.start_soon(sensing, partial(self.membership.keep, self._take_over))
            group.start_soon(sensing, self.backfills.keep_taking_over)
            for poll in polls:
                group.start_soon(sensing, poll)
            if self.settings.janitor.interval_seconds:
                group.start_soon(sensing, partial(sweep_staging, self))
            self._log.info("daemon started", workflows=list(self.watch.workflows),
                           roots=len(self.roots), replicas=list(self.membership.members))
            task_status.started()
        with anyio.CancelScope(shield=True), anyio.move_on_after(LEAVE_SECONDS):
            await self.membership.leave()

    @property
    def stopping(self) -> bool:
        return self._life.stopping

    async def stop(self) -> None:
        """Stop sensing and claiming at once; give running work the grace period, then
        stop it and release its runs for another worker (or the next start) to resume."""
        if self._life.stopping:
            return
        self.engine.stop_claiming()
        self._log.info("stopping: no new triggers or claims", running=self._life.working)
        await self._life.stop()

    def can_accept(self) -> bool:
        """Whether :meth:`accept` would queue a trigger now (the queue has room)."""
        if self._send is None or self._life.stopping:
            return False
        stats = self._send.statistics()
        return stats.current_buffer_used < stats.max_buffer_size

    def accept(self, trigger: Trigger) -> bool:
        """Queue a trigger from outside (a webhook); False when the queue is full."""
        if self._send is None or self._life.stopping:
            return False
        try:
            self._send.send_nowait(trigger)
        except anyio.WouldBlock:
            return False
        return True

    def take(self, trigger: Trigger) -> bool:
        """Queue a trigger whose delivery is recorded already: when the queue filled up
        meanwhile, act on it at once rather than refuse it, since a retry of the
        delivery would be ignored as a duplicate. False only when it is stopping or
        not started."""
        if self._send is None or self._life.stopping:
            return False
        if not self.accept(trigger):
            self._dispatch_one(trigger)
        return True

    async def _dispatch(self, receive: MemoryObjectReceiveStream[Trigger]) -> None:
        async for trigger in receive:
            self._dispatch_one(trigger)

    def _dispatch_one(self, trigger: Trigger) -> None:
        self.metrics.triggers.inc(source=trigger.source)
        for root in trigger.roots:
            self.watch.add(root)
        # New roots are not indexed yet: their first evaluation is asked outright.
        named = {self.watch.canonical(root) for root in trigger.roots}
        for root in named:
            self.asking.attach(root, trigger.asked)
        changed = {*self.watch.discover(trigger.keys), *self.watch.roots_for(trigger.keys)}
        if trigger.shared:  # every replica sensed it: the day's owner evaluates it
            changed = {root for root in changed if self.membership.owns(root)}
        for root in changed | named:
            self.schedule(root, trigger.received or None)

    async def _watch_window(self) -> None:
        while True:
            await anyio.sleep(WINDOW_CHECK_SECONDS)
            self._sweep(only_new=True)

    def _sweep(self, *, only_new: bool = False) -> None:
        """Evaluate the roots the window brings in (all of them at start-up)."""
        added = self.watch.refresh(self._today())
        for root in added if only_new else self.watch.roots:
            if self.membership.owns(root):
                self.schedule(root, None)

    def _take_over(self, before: Shares) -> None:
        """Evaluate the days the replicas' change gave this one: a replica that died
        or left owned them, and nothing else would evaluate them until they change."""
        assert self._group is not None  # membership is kept inside the task group
        self.metrics.replicas.set(len(self.membership.members))
        gained = partial(self.membership.take_over, list(self.watch.roots), before,
                         partial(self.schedule, received=None))
        self._group.start_soon(self._life.sensing_task, gained)
        self._group.start_soon(self._life.sensing_task, self._take_up_asked)

    def _ask(self, asked: Asked) -> None:
        """Serve a kept request: evaluate its day, re-running its run if it asks so."""
        self.watch.add(root := Root(asked.workflow, asked.day))
        if asked.rerun is not None:
            self.rerun(asked.rerun, asked.id)
            return
        root = self.watch.canonical(root)
        self.asking.attach(root, (asked.id,))
        self.schedule(root, None)

    def schedule(self, root: Root, received: float | None) -> None:
        state = self.roots.setdefault(root, RootState())
        if received is not None:
            state.pending_since = min(state.pending_since or received, received)
        if state.evaluating:
            state.dirty = True
            self._ready.stale(root)
            return
        if self._life.stopping or self._group is None:
            return
        state.evaluating = True
        self._ready.put(root)

    def root_of_task(self, task_id: str) -> Root | None:
        """The watched root a re-run of the task evaluates: one, if several hold it."""
        roots = self.watch.roots_of_task(task_id)
        return min(roots) if roots else None

    def rerun(self, rerun: Rerun, asked_id: str = "") -> bool:
        """Evaluate a watched root holding the run's task again, running it again even
        if its outputs are up to date (once: see Rerun), serving the kept request
        ``asked_id``; False when no watched root holds it or it is stopping."""
        root = self.root_of_task(rerun.task_id)
        if root is None or self._life.stopping:
            return False
        state = self.roots.setdefault(root, RootState())
        state.rerun = {**state.rerun, rerun.task_id: rerun}
        self.asking.attach(root, (asked_id,) if asked_id else ())
        self.schedule(root, None)
        return True

    def _start_sensing(self, wait: Callable[[], Awaitable[None]]) -> bool:
        """Start ``wait`` as the daemon's sensing runs: stopped at once by a stop."""
        if self._group is None:
            return False
        self._group.start_soon(self._life.sensing_task, wait)
        return True

    def start_work(self, work: Callable[[], Awaitable[None]]) -> bool:
        """Run ``work`` (a backfill) as an evaluation runs: at shutdown it has the grace
        period, then is stopped. False when the daemon is stopping or not started."""
        if self._life.stopping or self._group is None:
            return False
        self._group.start_soon(self._life.working_task, work)
        return True

    async def _evaluate(self, root: Root) -> None:
        state = self.roots[root]
        try:
            while True:
                self._at_limit.leave(root)
                state.dirty, received, state.pending_since = False, state.pending_since, None
                serving = self.asking.take(root)
                evaluated = await self._evaluate_once(root, state, received)
                # A day left waiting for a place has not served its requests.
                await self.asking.settle(root, serving,
                                         evaluated=evaluated and root not in self._at_limit)
                if not state.dirty or self._life.stopping:
                    break
        finally:
            state.evaluating = False
            self._at_limit.evaluated(root)

    async def _evaluate_once(self, root: Root, state: RootState,
                             received: float | None) -> bool:
        """One evaluation; whatever fails in it is recorded and tried again later, never
        let out: a store, registry or warehouse error (or a graph that cannot be
        resolved) must not stop the daemon. ``received`` is when the trigger that asked
        for it reached the daemon. True when it ended without an error."""
        evaluated = False
        try:
            begun = await self._ready.begin(root)
            policy = self._policy(root, state)
            hooks = DayHooks(root, begun.task.task_id, state, received, self._launched,
                             self._at_limit)
            report = await self.engine.run(begun.task, policy, graph=begun.graph,
                                           externals=begun.externals, hooks=hooks)
        except* CharonError as group:
            self._again.failed(root, state, messages(group),
                               outage=all(map(is_outage, leaves(group))))
        except* Exception as group:
            # A bug (a task's own requires() or output() raising is a TaskCodeError,
            # above): logged with its traceback, kept out of the daemon's task group.
            self._log.exception("evaluation crashed", root=str(root),
                                exc_info=group.exceptions[0])
            self._again.failed(root, state, messages(group))
        else:
            self._record(root, state, Verdict.of(report))
            if report.errors:
                self._again.failed(root, state, "; ".join(report.errors),
                                   outage=report.outages_only)
            else:
                state.error, state.errors, evaluated = None, 0, True
                self.metrics.sources["evaluations"].ok()
                if root not in self._at_limit:
                    state.rerun = _not_served(state.rerun, policy.rerun)
            if (held_until := report.held_until) is not None:
                self._again.at(root, state, held_until)
        state.evaluated_at, state.ready = datetime.now(UTC), state.ready and root in self._at_limit
        return evaluated

    def _record(self, root: Root, state: RootState, verdict: Verdict) -> None:
        first = state.verdict is None
        self.tally.record(root, state, verdict)
        self._first_verdicts += first
        if first and self._first_verdicts % FREEZE_EVERY == 0:
            self._freeze()

    def _policy(self, root: Root, state: RootState) -> Policy:
        """The workflow's policy, with the user's re-runs of the day, which stay the
        day's until an evaluation ends that ran them: one that failed, or that left the
        day waiting for a place, has not (they run a run again once, whatever number of
        evaluations carry them: see Rerun)."""
        policy = self._policies[root.workflow]
        if state.rerun:  # a user's own re-run: a failed run is tried again at once too
            policy = replace(policy, rerun=state.rerun, retry=RETRY_AT_ONCE)
        return policy

    def _launched(self, workflow: str, received: float | None, task: Task) -> None:
        self.metrics.launches.inc(workflow=workflow)
        if received is not None:
            self.metrics.trigger_latency.observe(time.perf_counter() - received)
        if self._on_launch is not None:
            self._on_launch(task)

    def running(self, workflow: str) -> int:
        """Runs of the workflow holding a place now."""
        return self._limiters[workflow].borrowed_tokens

    async def status(self, query: PageQuery | None = None) -> dict[str, Any]:
        """What ``/status`` shows (a page of partitions: the first by default); it answers
        whatever the state store is doing."""
        return await status.daemon_status(self, query or PageQuery())


def _not_served(asked: Mapping[str, Rerun], served: Mapping[str, Rerun]) -> Mapping[str, Rerun]:
    """The re-runs asked for that an evaluation carrying ``served`` did not serve: those
    asked for while it went on."""
    left = {task_id: rerun for task_id, rerun in asked.items() if served.get(task_id) != rerun}
    return left or NO_RERUNS
