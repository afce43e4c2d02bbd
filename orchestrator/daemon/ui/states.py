"""Where each watched partition stands, as the grid colours it.

A partition's state comes from its last evaluation's verdict, except while a run of it
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
    from orchestrator.daemon.status import Verdict
    from sensors.facts import Root

STATES = ("waiting", "ready", "running", "publishing", "succeeded", "failed", "superseded")
"""Every state a cell can show, in the legend's order."""

CELLS_BETWEEN_CHECKPOINTS = 500
SCANNED_BETWEEN_CHECKPOINTS = 20_000
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
    task_id = daemon.watch.task_id(root)
    root_state = daemon.roots.get(root)
    verdict = root_state.verdict if root_state else None
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
    if verdict is None:
        return Cell(root.workflow, root.day, "waiting", why="not evaluated yet")
    return await _verdict_cell(daemon, root, task_id, verdict)


async def _verdict_cell(daemon: Daemon, root: Root, task_id: str, verdict: Verdict) -> Cell:
    state, run_id, run_state = _BY_STATUS[verdict.status], verdict.run_id, verdict.run_state
    if verdict.status is Status.WAITING:
        # For another worker's run (running) or a failed run's retry (failed): the
        # run says where the partition stands.
        if run_id is None and (ran := await _latest(daemon, task_id)) is not None:
            run_id, run_state = ran.id, ran.state
        state = run_state.value if run_state else state
    if run_id is None or run_state is None:
        return Cell(root.workflow, root.day, state, why=verdict.why)
    return Cell(root.workflow, root.day, state, run_id, run_state.value, verdict.why)


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
    """A run of a task of a watched partition's graph, as the state store holds it now:
    an active one, one of the newest runs, or else one a last evaluation names."""
    for run in (await _active_runs(daemon)).values():
        if run.id == run_id:
            try:
                return await daemon.adapters.state.get(run.task_id, run.fingerprint) or run
            except CharonError:
                return run
    # One listing, not a query per watched task: an unknown id costs a read or two.
    try:
        recent = await daemon.adapters.state.list_runs(limit=MAX_LIST)
        found = next((r for r in recent if r.id == run_id), None)
        if found is None and (root := await _named_by(daemon, run_id)) is not None:
            older = await daemon.adapters.state.list_runs(
                task_id=daemon.watch.task_id(root), limit=MAX_LIST)
            found = next((r for r in older if r.id == run_id), None)
    except CharonError:
        return None
    return found if found is not None and daemon.watch.roots_of_task(found.task_id) else None


async def _named_by(daemon: Daemon, run_id: str) -> Root | None:
    """The watched root whose last evaluation named that run, if any."""
    roots = daemon.roots
    for done, root in enumerate(list(roots)):  # a copy: evaluations add roots meanwhile
        if done % SCANNED_BETWEEN_CHECKPOINTS == 0:
            await anyio.lowlevel.checkpoint()
        if (verdict := roots[root].verdict) is not None and verdict.run_id == run_id:
            return root
    return None
