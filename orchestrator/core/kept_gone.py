"""Outputs that are gone below a task that does not need them: rebuilt only on demand.

Luigi asks a complete task nothing more, so an output deleted below it stays deleted
until something that reads it has to run. charon evaluates the whole graph (a new input
revision anywhere below must reach the top), but follows Luigi here: a task whose run
for its current inputs succeeded and whose outputs have since gone is rebuilt when it
is the task asked for, or when a task that reads it is about to run; otherwise it is
left as it is, and what was built from it stays complete.

Its registry revision outlives its files, so the tasks above still see their inputs
unchanged and can tell whether they are complete without the files.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

import anyio

from orchestrator.core.report import Outcome, Status
from orchestrator.model import Run, RunState
from orchestrator.tasks.task import Task

KEPT_GONE = ("its outputs are gone, and nothing that reads them has to run: rebuilt when "
             "it is asked for or when a task reading them runs, as Luigi does")


class Rebuild:
    """The one rebuild of a kept-gone task, however many readers ask for it at once."""

    def __init__(self, rebuild: Callable[[], Awaitable[Outcome]]) -> None:
        self._rebuild = rebuild
        self._done: anyio.Event | None = None
        self._outcome: Outcome | None = None

    async def outcome(self) -> Outcome:
        if self._done is None:
            self._done = anyio.Event()
            try:
                self._outcome = await self._rebuild()
            finally:
                self._done.set()
        await self._done.wait()
        assert self._outcome is not None, "the rebuild was cancelled, and its reader with it"
        return self._outcome


def gone_since_success(run: Run | None) -> bool:
    """Whether the run the task counts as current succeeded: its outputs were written for
    these inputs, so their absence alone is all that is wrong."""
    return run is not None and run.state is RunState.SUCCEEDED


def kept_gone(task: Task, run: Run | None) -> Outcome:
    return Outcome(task.task_id, Status.COMPLETE, KEPT_GONE, run=run)


async def rebuild_below(
    task: Task, below: Iterable[str], rebuilds: dict[str, Rebuild], *, dry_run: bool,
) -> Outcome | bool:
    """Rebuild the kept-gone tasks among ``below`` (the tasks ``task`` reads) before it
    runs. True if one was rebuilt (its inputs moved on), False if none was kept gone, a
    BLOCKED outcome if one could not be rebuilt."""
    waiting = {task_id: rebuilds[task_id] for task_id in below if task_id in rebuilds}
    failed = []
    for task_id, rebuild in waiting.items():
        outcome = await rebuild.outcome()
        if outcome.status.ok:
            # Built again: later readers look its new revision up like any other.
            rebuilds.pop(task_id, None)
        elif not (dry_run and outcome.status is Status.WOULD_RUN):
            failed.append(task_id)
    if failed:
        return Outcome(task.task_id, Status.BLOCKED, "waiting for " + ", ".join(failed),
                       blocked_by=tuple(failed))
    return bool(waiting) and not dry_run
