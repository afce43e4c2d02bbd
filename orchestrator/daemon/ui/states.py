"""Where each watched partition stands, as the grid colours it.

A partition's state comes from its last evaluation's report, except while a run of it
is active (running, publishing) or has just ended within an evaluation that has not
reported yet: then the run's own state, read from the state store, is the fresher word.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from orchestrator.core.report import Outcome, Status
from orchestrator.errors import CharonError
from orchestrator.model import Run, RunState
from orchestrator.stores.state.claims import MAX_LIST

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon
    from sensors.facts import Root

STATES = ("waiting", "ready", "running", "publishing", "succeeded", "failed", "superseded")
"""Every state a cell can show, in the legend's order."""

CELLS_BETWEEN_CHECKPOINTS = 500
READY = "its inputs are all there; it waits for a place under max_concurrent_runs"

_BY_STATUS = {
    Status.MISSING: "waiting", Status.BLOCKED: "waiting", Status.WAITING: "waiting",
    Status.WOULD_RUN: "ready", Status.DONE: "succeeded", Status.COMPLETE: "succeeded",
    Status.AVAILABLE: "succeeded", Status.FAILED: "failed", Status.ERROR: "failed",
    Status.SUPERSEDED: "superseded",
}


def outcome_state(outcome: Outcome) -> str:
    """Where one task of an evaluated graph stands: its run's state while the run is
    active, or while the task waits on it (another worker's run, or a failed run's retry)."""
    if outcome.run is not None and (outcome.run.state.active
                                    or outcome.status is Status.WAITING):
        return outcome.run.state.value
    return _BY_STATUS[outcome.status]


@dataclass(frozen=True)
class Cell:
    workflow: str
    day: date
    state: str
    run_id: str | None = None
    run_state: str | None = None
    why: str = ""
    """What it waits for, or why it failed."""

    @property
    def key(self) -> str:
        return f"{self.workflow}/{self.day.isoformat()}"


async def partition_cells(daemon: Daemon, roots: list[Root]) -> list[Cell]:
    """The cells of ``roots``; a state store that cannot answer leaves the reports' word."""
    active = await _active_runs(daemon)
    cells = []
    for done, root in enumerate(roots):
        if done % CELLS_BETWEEN_CHECKPOINTS == 0:
            # Thousands of cells are tens of milliseconds of work: let requests, sensors
            # and evaluations in between.
            await anyio.lowlevel.checkpoint()
        cells.append(await _cell(daemon, root, active))
    return cells


async def _active_runs(daemon: Daemon) -> dict[str, Run]:
    state = daemon.adapters.state
    try:
        return {run.task_id: run for wanted in (RunState.RUNNING, RunState.PUBLISHING)
                for run in await state.list_runs(state=wanted, limit=MAX_LIST)}
    except CharonError as exc:
        daemon.metrics.sources["state store"].failed(str(exc))
        return {}


async def _cell(daemon: Daemon, root: Root, active: dict[str, Run]) -> Cell:
    task_id = daemon.watch.task(root).task_id
    root_state = daemon.roots.get(root)
    report = root_state.report if root_state else None
    run = active.get(task_id)
    if run is None and root_state is not None and root_state.evaluating:
        run = await _ended_since(daemon, task_id, root_state.evaluated_at)
    if run is not None:
        return Cell(root.workflow, root.day, run.state.value, run.id, run.state.value,
                    run.error or "")
    if root_state is not None and root_state.ready:
        return Cell(root.workflow, root.day, "ready", why=READY)
    if root_state is not None and root_state.error:
        return Cell(root.workflow, root.day, "failed", why=root_state.error)
    if report is None:
        return Cell(root.workflow, root.day, "waiting", why="not evaluated yet")
    outcome = report.outcomes[report.root]
    why = "; ".join(report.missing) or outcome.detail
    state, ran = _BY_STATUS[outcome.status], outcome.run
    if outcome.status is Status.WAITING:
        # For another worker's run (running) or a failed run's retry (failed): the
        # run says where the partition stands.
        ran = ran or await _latest(daemon, task_id)
        state = ran.state.value if ran else state
    if ran is None:
        return Cell(root.workflow, root.day, state, why=why)
    return Cell(root.workflow, root.day, state, ran.id, ran.state.value, why)


async def _ended_since(daemon: Daemon, task_id: str, reported: datetime | None) -> Run | None:
    """The task's latest run when it changed after the last report: the run this
    evaluation launched, finished before the evaluation reports."""
    latest = await _latest(daemon, task_id)
    if latest is None or (reported is not None and latest.updated <= reported):
        return None
    return latest


async def _latest(daemon: Daemon, task_id: str) -> Run | None:
    try:
        return await daemon.adapters.state.latest(task_id)
    except CharonError:
        return None


async def find_run(daemon: Daemon, run_id: str) -> Run | None:
    """A run of a watched partition, as the state store holds it now: one the last
    reports name, an active one, or else one of the newest runs of a watched task."""
    known = [r.run for s in daemon.roots.values() if s.report
             for r in s.report.outcomes.values() if r.run is not None]
    known += (await _active_runs(daemon)).values()
    for run in known:
        if run.id == run_id:
            try:
                return await daemon.adapters.state.get(run.task_id, run.fingerprint) or run
            except CharonError:
                return run
    # Else one listing, not a query per watched task: an unknown id costs one read.
    try:
        recent = await daemon.adapters.state.list_runs(limit=MAX_LIST)
    except CharonError:
        return None
    found = next((r for r in recent if r.id == run_id), None)
    watch = daemon.watch
    return found if found is not None and any(
        watch.task(root).task_id == found.task_id
        for root in watch.roots_of_task(found.task_id)) else None
