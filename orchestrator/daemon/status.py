"""What the daemon reports: the ``/status`` document and the run gauge of ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.core.report import Report, Status
from orchestrator.errors import CharonError
from orchestrator.model import RunState

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon
    from sensors.facts import Root


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


async def daemon_status(daemon: Daemon) -> dict[str, Any]:
    """What ``/status`` shows; it answers whatever the state store is doing."""
    store = daemon.metrics.sources["state store"]
    try:
        runs = await daemon.adapters.state.list_runs(limit=50)
    except CharonError as exc:
        store.failed(str(exc))
        runs = []
    else:
        store.ok()
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
        "partitions": [_root_status(daemon, root) for root in daemon.watch.roots],
        "runs": [
            {"id": r.id, "task": r.task_id, "partition": r.partition, "state": r.state.value,
             "attempt": r.attempt, "fingerprint": r.fingerprint, "job_id": r.job_id,
             "updated": r.updated.isoformat(), "error": r.error,
             "lease_owner": r.lease_owner}
            for r in runs
        ],
    }

def _root_status(daemon: Daemon, root: Root) -> dict[str, Any]:
    state = daemon.roots.get(root, RootState())
    report = state.report
    status: dict[str, Any] = {
        "workflow": root.workflow, "partition": daemon.watch.task(root).partition_label,
        "task": daemon.watch.task(root).task_id, "evaluating": state.evaluating,
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
