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

from orchestrator.core.report import Report, Status
from orchestrator.daemon.watch import Watchlist, newest_first_key
from orchestrator.errors import CharonError, UsageError
from orchestrator.intervals import parse_day
from orchestrator.model import RunState
from orchestrator.validate import whole_number
from sensors.facts import Root

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon

UNEVALUATED = "unevaluated"
STATES = (*(status.value for status in Status), UNEVALUATED)
"""A partition's state: its last report's, or ``unevaluated`` before it has one."""
DEFAULT_LIMIT = 1000
MAX_LIMIT = 10_000


@dataclass
class RootState:
    evaluating: bool = False
    dirty: bool = False
    pending_since: float | None = None
    report: Report | None = None
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
    rerun: set[str] = field(default_factory=set)
    """Tasks a user asked to re-run, by the next evaluation."""


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

    def record(self, root: Root, state: RootState, report: Report) -> None:
        """``report`` becomes the root's latest; its count moves to the new state."""
        if state.report is not None:
            self._counts[root.workflow, report_state(state.report)] -= 1
        self._counts[root.workflow, report_state(report)] += 1
        state.report = report

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


def report_state(report: Report | None) -> str:
    return UNEVALUATED if report is None else report.outcomes[report.root].status.value


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
    partitions, cursor = _page(daemon, query)
    return {
        "owner": daemon.engine.owner,
        "stopping": daemon.stopping,
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


def _page(daemon: Daemon, query: PageQuery) -> tuple[list[dict[str, Any]], str | None]:
    """The query's partitions and the cursor of the next page (None on the last)."""
    ordered = daemon.watch.newest_first()
    start = 0 if query.after is None else bisect_right(
        ordered, newest_first_key(query.after), key=newest_first_key)
    page: list[dict[str, Any]] = []
    for index in range(start, len(ordered)):
        root = ordered[index]
        state = daemon.roots.get(root)
        if (query.workflow not in (None, root.workflow) or query.state not in (
                None, report_state(state.report if state else None))):
            continue
        page.append(_root_status(daemon, root, state or RootState()))
        if len(page) == query.limit:
            more = index + 1 < len(ordered)
            return page, f"{root.workflow}/{root.day.isoformat()}" if more else None
    return page, None


def _root_status(daemon: Daemon, root: Root, state: RootState) -> dict[str, Any]:
    report = state.report
    task = daemon.watch.task(root)
    status: dict[str, Any] = {
        "workflow": root.workflow, "partition": task.partition_label,
        "task": task.task_id, "evaluating": state.evaluating,
        "evaluated_at": state.evaluated_at.isoformat() if state.evaluated_at else None,
        "error": state.error,
    }
    if report is not None:
        outcome = report.outcomes[report.root]
        status["state"] = outcome.status.value
        status["waiting_for"] = report.missing or (
            [outcome.detail] if outcome.status is Status.BLOCKED else []
        )
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
