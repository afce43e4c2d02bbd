"""What the daemon reports: the ``/status`` document and the run gauge of ``/metrics``.

``/status`` pages the watched partitions, newest day first, then by workflow, and counts
them by state from a tally kept as evaluations report: an answer costs its page and a
few additions, never a dict of every partition.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio.lowlevel

from orchestrator.core.policy import NO_RERUNS
from orchestrator.core.report import Report, Status
from orchestrator.daemon.watch import Watchlist, newest_first_key
from orchestrator.errors import CharonError, UsageError
from orchestrator.intervals import parse_day
from orchestrator.model import Rerun, RunState
from orchestrator.validate import whole_number
from sensors.facts import Root

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon

UNEVALUATED = "unevaluated"
STATES = (*(status.value for status in Status), UNEVALUATED)
"""A partition's state: its last report's, or ``unevaluated`` before it has one."""
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000
SCANNED_BETWEEN_CHECKPOINTS = 250


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the daemon keeps of a root's last evaluation: what ``/status`` and the grid
    show of it, not its report (a report per watched day was most of the daemon's
    memory). The pages that explain a partition evaluate it again, dry, instead."""

    status: Status
    """The root task's."""
    waiting_for: tuple[str, ...] = ()
    """The inputs it waits for, or what blocks it."""
    detail: str = ""
    """The root's detail otherwise: why it failed or waits on a run."""
    run_id: str | None = None
    run_state: RunState | None = None
    """The run its outcome names, as the evaluation saw it."""

    @classmethod
    def of(cls, report: Report) -> Verdict:
        outcome = report.outcomes[report.root]
        blocked = outcome.status is Status.BLOCKED
        waiting = report.missing or ([outcome.detail] if blocked else [])
        run = outcome.run
        return cls(outcome.status, tuple(waiting), "" if blocked else outcome.detail,
                   run.id if run else None, run.state if run else None)

    @property
    def why(self) -> str:
        """One line: what it waits for, or its detail."""
        return "; ".join(self.waiting_for) or self.detail


@dataclass(slots=True)
class RootState:
    evaluating: bool = False
    dirty: bool = False
    pending_since: float | None = None
    verdict: Verdict | None = None
    error: str | None = None
    """Why the last evaluation could not finish: a store or source failed."""
    errors: int = 0
    """Evaluations in a row that failed so; the next waits longer each time."""
    evaluated_at: datetime | None = None
    ready: bool = False
    """Its evaluation found all its inputs there and waits for a place to run it."""
    retry_at: datetime | None = None
    """A re-evaluation is pending for then: a lease runs out, a retry is due, or a
    failing source is tried again."""
    rerun: Mapping[str, Rerun] = field(default_factory=lambda: NO_RERUNS)
    """Runs (by task id) a user asked to re-run, until an evaluation ends that ran them."""


@dataclass(frozen=True)
class PageQuery:
    """Which partitions ``/status`` lists: of one workflow or all, in one state or any,
    up to ``limit`` of them after the cursor ``after`` (the ``next`` of the page before)."""

    workflow: str | None = None
    state: str | None = None
    after: Root | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def parse(cls, query: Mapping[str, str], watch: Watchlist) -> PageQuery:
        """From a request's query; a bad value is a UsageError that names it."""
        workflow, state = query.get("workflow"), query.get("state")
        if workflow is not None and workflow not in watch.workflows:
            raise UsageError(f"no workflow named {workflow!r}")
        if state is not None and state not in STATES:
            raise UsageError(f"state must be one of {', '.join(STATES)}, got {state!r}")
        after = query.get("after")
        return cls(workflow, state, None if after is None else _cursor_root(after),
                   _limit(query.get("limit", str(DEFAULT_LIMIT))))


def _cursor_root(cursor: str) -> Root:
    workflow, _, day = cursor.rpartition("/")
    try:
        return Root(workflow, parse_day(day))
    except CharonError:
        raise UsageError(f"after must be a page's next (WORKFLOW/YYYY-MM-DD), got {cursor!r}"
                         ) from None


def _limit(text: str) -> int:
    limit = whole_number(text, MAX_LIMIT)
    if not limit:
        raise UsageError(f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}")
    return limit


class Tally:
    """The watched partitions by workflow and report state, kept as reports come in."""

    def __init__(self) -> None:
        self._counts = Counter[tuple[str, str]]()

    def record(self, root: Root, state: RootState, verdict: Verdict) -> None:
        """``verdict`` becomes the root's latest; its count moves to the new state."""
        if state.verdict is not None:
            self._counts[root.workflow, state.verdict.status.value] -= 1
        self._counts[root.workflow, verdict.status.value] += 1
        state.verdict = verdict

    def totals(self, watch: Watchlist, workflow: str | None) -> dict[str, int]:
        """Every state's count, over one workflow or all."""
        totals = dict.fromkeys(STATES, 0)
        for name in [workflow] if workflow else watch.workflows:
            reported = 0
            for status in Status:
                totals[status.value] += (count := self._counts[name, status.value])
                reported += count
            totals[UNEVALUATED] += watch.count(name) - reported
        return totals


def verdict_state(verdict: Verdict | None) -> str:
    return UNEVALUATED if verdict is None else verdict.status.value


async def daemon_status(daemon: Daemon, query: PageQuery) -> dict[str, Any]:
    """What ``/status`` shows; it answers whatever the state store is doing."""
    store = daemon.metrics.sources["state store"]
    try:
        runs = await daemon.adapters.state.list_runs(limit=50)
    except CharonError as exc:
        store.failed(str(exc))
        runs = []
    else:
        store.ok()
    partitions, cursor = await _page(daemon, query)
    return {
        "owner": daemon.engine.owner,
        "stopping": daemon.stopping,
        "replicas": list(daemon.membership.members),
        "sources": {name: health.as_json() for name, health in daemon.metrics.sources.items()},
        "workflows": [
            {"name": w.name, "module": w.module, "task": w.task, "policy": w.policy,
             "max_concurrent_runs": w.max_concurrent_runs,
             "running": daemon.running(w.name)}
            for w in daemon.watch.workflows.values()
        ],
        "totals": daemon.tally.totals(daemon.watch, query.workflow),
        "partitions": partitions,
        "next": cursor,
        "runs": [
            {"id": r.id, "task": r.task_id, "partition": r.partition, "state": r.state.value,
             "attempt": r.attempt, "fingerprint": r.fingerprint, "job_id": r.job_id,
             "updated": r.updated.isoformat(), "error": r.error,
             "lease_owner": r.lease_owner}
            for r in runs
        ],
    }


async def _page(daemon: Daemon, query: PageQuery) -> tuple[list[dict[str, Any]], str | None]:
    """The query's partitions and the cursor of the next page (None on the last)."""
    ordered = daemon.watch.newest_first()
    start = 0 if query.after is None else bisect_right(
        ordered, newest_first_key(query.after), key=newest_first_key)
    page: list[dict[str, Any]] = []
    for index in range(start, len(ordered)):
        if (index - start) % SCANNED_BETWEEN_CHECKPOINTS == 0:
            # A page of a thousand is about 10 ms of work, a filter may scan every
            # watched day: let requests, sensors and evaluations in between.
            await anyio.lowlevel.checkpoint()
        root = ordered[index]
        state = daemon.roots.get(root)
        if query.workflow not in (None, root.workflow) or (query.state is not None and (
                query.state != verdict_state(state.verdict if state else None))):
            continue
        page.append(_root_status(daemon, root, state or RootState()))
        if len(page) == query.limit:
            more = index + 1 < len(ordered)
            return page, f"{root.workflow}/{root.day.isoformat()}" if more else None
    return page, None


def _root_status(daemon: Daemon, root: Root, state: RootState) -> dict[str, Any]:
    verdict, watch = state.verdict, daemon.watch
    status: dict[str, Any] = {
        "workflow": root.workflow, "partition": watch.partition_label(root),
        "task": watch.task_id(root), "evaluated_by": daemon.membership.owner(root),
        "evaluating": state.evaluating,
        "evaluated_at": state.evaluated_at.isoformat() if state.evaluated_at else None,
        "error": state.error,
    }
    if verdict is not None:
        status["state"] = verdict.status.value
        status["waiting_for"] = list(verdict.waiting_for)
    return status


async def update_run_gauge(daemon: Daemon) -> None:
    """Count the runs by state for ``/metrics``; keeps the last counts while the
    state store cannot answer (``charon_source_up`` says so)."""
    store = daemon.metrics.sources["state store"]
    try:
        runs = await daemon.adapters.state.list_runs(limit=10_000)
    except CharonError as exc:
        store.failed(str(exc))
        return
    store.ok()
    for state in RunState:
        daemon.metrics.runs.set(sum(r.state is state for r in runs), state=state.value)
