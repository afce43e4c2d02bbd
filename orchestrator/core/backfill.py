"""A backfill: a task's root for each day of an interval, a few days at once, each day's
outcome recorded in the state store, so that running the backfill again resumes it.

A day recorded done is not evaluated again; any other day is. A day whose run another
worker holds (a crashed backfill's, until its lease runs out) is waited for and then
evaluated again, so the run is taken over as usual rather than left behind. A day whose
evaluation ended in an error (a store or source failed, not the day's own run) may be
tried again for a while (:class:`ErrorRetries`): a backfill nobody watches, the
daemon's, rides out an outage as the daemon's own days do.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

import anyio

from orchestrator.core.engine import Engine
from orchestrator.core.report import Category, Outcome, Report, RetCodes, Status
from orchestrator.log import get_logger
from orchestrator.model import Backfill, BackfillOrder, BackfillState
from orchestrator.stores.state.base import StateStore
from orchestrator.tasks.task import Task

# A held run is looked at again this long after its holder's lease ends at the soonest:
# the store's clock and this machine's may differ a little.
RECHECK_SECONDS = 0.2
# Outcomes no wait fixes: a day with one of these ends as it is.
FINAL = {Category.FAILED, Category.SCHEDULING_ERROR, Category.MISSING}


@dataclass(frozen=True)
class ErrorRetries:
    """How a day whose evaluation ended in an error is tried again."""

    seconds: float
    """For how long from its first error in a row; past it, the day ends in its error."""
    pause: Callable[[int], float]
    """The pause before the next try, given the errors in a row so far."""


@dataclass(frozen=True)
class DayResult:
    day: date
    status: Status
    """What the day's root ended in; for a day done before a resume, what was recorded."""
    report: Report | None = None
    """This evaluation's; None for a day done before a resume, not evaluated again."""

    @property
    def ok(self) -> bool:
        return self.status.ok


OnDay = Callable[[DayResult], None]


def backfill_record(task: str, interval: str, order: BackfillOrder,
                    roots: Mapping[date, Task]) -> Backfill:
    """The record of a new backfill; its key, the days' task ids, finds it again (from
    the command or the daemon's API alike)."""
    ids = "\n".join(sorted(root.task_id for root in roots.values()))
    now = datetime.now(UTC)
    return Backfill(
        id=f"bf-{uuid.uuid4().hex[:12]}", key=hashlib.sha256(ids.encode()).hexdigest(),
        task=task, interval=interval, order=order, state=BackfillState.RUNNING,
        total=len(roots), created=now, updated=now,
    )


async def run_backfill(
    engine: Engine, state: StateStore, backfill: Backfill, roots: Mapping[date, Task], *,
    max_parallel: int, on_day: OnDay, errors: ErrorRetries | None = None,
) -> list[DayResult]:
    """Evaluate each day's root in the order of ``roots``, at most ``max_parallel`` at
    once, telling ``on_day`` as each ends; record the backfill's final state. A day that
    ends in an error is tried again as ``errors`` says; without it, it ends so.

    Once the backfill is no longer this runner's (cancelled, or taken over), its next
    write says so (BackfillTaken): no day begins, and the days going on are stopped,
    their runs released as at a shutdown."""
    results: list[DayResult] = []
    # A semaphore, not a CapacityLimiter: a place is taken here, in day order, and
    # given back by the day's own task.
    places = anyio.Semaphore(max_parallel)

    def done(result: DayResult) -> None:
        results.append(result)
        on_day(result)

    async def evaluate(day: date, root: Task) -> None:
        try:
            report = await _evaluate(engine, root, day, errors)
            status = report.outcomes[report.root].status
            await state.record_backfill_day(backfill.id, day.isoformat(), status.value,
                                            owner=backfill.owner)
            done(DayResult(day, status, report))
        finally:
            places.release()

    async with anyio.create_task_group() as group:
        for day, root in roots.items():
            recorded = backfill.days.get(day.isoformat())
            if recorded is not None and Status(recorded).ok:
                done(DayResult(day, Status(recorded)))
                continue
            await places.acquire()
            group.start_soon(evaluate, day, root)
    finished = all(result.ok for result in results)
    await state.finish_backfill(
        backfill.id, BackfillState.SUCCEEDED if finished else BackfillState.FAILED,
        owner=backfill.owner)
    return results


async def _evaluate(engine: Engine, root: Task, day: date,
                    errors: ErrorRetries | None) -> Report:
    """The root's report, once no run of it is held by another worker any more and, as
    ``errors`` allows, it did not end in an error."""
    first_error: float | None = None
    tries = 0
    while True:
        report = await engine.run(root)
        if (held_until := _held_until(report)) is not None:
            wait = (held_until - datetime.now(UTC)).total_seconds()
            await anyio.sleep(max(wait, 0) + RECHECK_SECONDS)
            continue
        if errors is None or not _errors_only(report):
            return report
        now = anyio.current_time()
        first_error = now if first_error is None else first_error
        if now - first_error >= errors.seconds:
            return report
        tries += 1
        pause = errors.pause(tries)
        get_logger("charon.backfill").info(
            "backfill day not evaluated; tried again later", day=day.isoformat(),
            error="; ".join(report.errors), tries=tries, retry_in_seconds=round(pause, 3))
        await anyio.sleep(pause)


def _errors_only(report: Report) -> bool:
    """Whether the root fell short only for what failed around it: a store or source
    failed, nothing of its own failed and no input is missing."""
    categories = {outcome.category for outcome in report.outcomes.values()}
    return not report.outcomes[report.root].status.ok and categories & FINAL == {
        Category.SCHEDULING_ERROR}


def _held_until(report: Report) -> datetime | None:
    """When a day held by another worker, and nothing worse, may be evaluated again."""
    categories = {outcome.category for outcome in report.outcomes.values()}
    if report.outcomes[report.root].status.ok or categories & FINAL:
        return None
    if Category.RUN_BY_OTHER_WORKER not in categories:
        return None
    return report.held_until


def combined(results: Sequence[DayResult]) -> Report:
    """Every day's outcomes as one report, for the execution summary, which reads its
    outcomes and tasks only: it has no one root (exit_code below stands for its own)."""
    outcomes: dict[str, Outcome] = {}
    tasks: dict[str, Task] = {}
    for result in results:
        if result.report is not None:
            outcomes.update(result.report.outcomes)
            tasks.update(result.report.tasks)
    return Report("", outcomes, tasks)


def exit_code(results: Sequence[DayResult], codes: RetCodes) -> int:
    """The code of the most serious outcome of any day; 0 when every day is done."""
    categories = {outcome.category for result in results if result.report is not None
                  for outcome in result.report.outcomes.values()}
    return codes.exit_code(categories, all(result.ok for result in results))
