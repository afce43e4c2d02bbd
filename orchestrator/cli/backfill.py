"""``charon backfill``: a task for each day of an interval, a few days at once, with its
progress shown, resumed where it stopped when the same command runs again."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any

from orchestrator.adapters import build_engine, local_job_runner, open_job_runner
from orchestrator.cli import arguments, retcodes, task_options
from orchestrator.cli.render import SAID
from orchestrator.cli.summary import summary
from orchestrator.config import Settings
from orchestrator.core.backfill import (
    DayResult,
    OnDay,
    backfill_record,
    combined,
    exit_code,
    run_backfill,
)
from orchestrator.core.ports import Adapters
from orchestrator.core.report import CATEGORIES, Status
from orchestrator.errors import UsageError
from orchestrator.intervals import DateInterval
from orchestrator.model import Backfill, BackfillOrder
from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.task import Task, load_task_class

if TYPE_CHECKING:
    from rich.progress import Progress

TaskCommand = Callable[[Any, str, str], argparse.ArgumentParser]
EARLIER = "done before this resume"


def add_backfill_command(commands: Any, task_command: TaskCommand) -> None:
    backfill = task_command(commands, "backfill",
                            "run a task for each day of an interval, resumably")
    # The task's own flags pass through this parser: --date must never be read as an
    # abbreviation of --date-interval.
    backfill.allow_abbrev = False
    backfill.add_argument("--date-interval", type=arguments.interval, metavar="INTERVAL",
                          help="the days, in any Luigi spelling (2018-10, 2018-W40, "
                               "2018-10-01-2018-10-08)")
    backfill.add_argument("--order", choices=[order.value for order in BackfillOrder],
                          default=BackfillOrder.OLDEST.value,
                          help="which days start first (default: oldest)")
    backfill.add_argument("--max-parallel", type=arguments.positive, metavar="N",
                          help="days evaluated at once (default: engine.max_concurrent_runs)")
    backfill.add_argument("--partition-param", metavar="NAME",
                          help="the task's day parameter (default: its one daily date "
                               "parameter)")
    retcodes.add_options(backfill)
    backfill.set_defaults(command=cmd_backfill, parse_task=parse_days)


def parse_days(args: argparse.Namespace, argv: Sequence[str]) -> dict[date, Task]:
    """The task of each day of ``--date-interval``, in the order the days start in."""
    if args.date_interval is None:
        raise UsageError("backfill needs --date-interval (e.g. 2018-10)")
    task_class = load_task_class(args.module, args.family)
    name = partition_param(task_class, args.partition_param)
    given, unknown = task_options.parse_parameters(
        task_class, f"charon backfill --module {args.module} {args.family}", argv)
    task_options.refuse_unknown(task_class, unknown)
    if name in given:
        raise UsageError(f"backfill gives {args.family} its {name} itself, one day of"
                         " --date-interval at a time")
    interval: DateInterval = args.date_interval
    days = list(interval)
    if args.order == BackfillOrder.NEWEST:
        days.reverse()
    return {day: task_class(**given, **{name: day}) for day in days}


def partition_param(task_class: type[Task], name: str | None) -> str:
    """The parameter that takes the day: ``name``, or the task's one daily date."""
    daily = [key for key, parameter in task_class.parameters().items()
             if isinstance(parameter, DateParameter) and parameter.unit == "day"]
    if name is not None and name not in daily:
        raise UsageError(f"--partition-param {name}: not a daily date parameter of"
                         f" {task_class.task_family} (it has: {', '.join(daily) or 'none'})")
    if name is None and len(daily) != 1:
        raise UsageError(f"{task_class.task_family} has {len(daily) or 'no'} daily date"
                         " parameters" + (f" ({', '.join(daily)}): name one with"
                                          " --partition-param" if daily else ""))
    return name or daily[0]


def new_backfill(args: argparse.Namespace, roots: Mapping[date, Task]) -> Backfill:
    return backfill_record(shlex.join(["--module", args.module, args.family]),
                           str(args.date_interval), BackfillOrder(args.order), roots)


async def cmd_backfill(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    roots: dict[date, Task] = args.task
    candidate = new_backfill(args, roots)
    backfill = await adapters.state.open_backfill(candidate)
    done = sum(1 for day in roots if _recorded_ok(backfill, day))
    verb = "started" if backfill.id == candidate.id else f"resumed, {done} done before"
    print(f"backfill {backfill.id} {verb}: {len(roots)} days of {backfill.interval},"
          f" {backfill.order.value} first", flush=True)
    max_parallel = args.max_parallel or settings.engine.max_concurrent_runs
    async with open_job_runner(settings) as runner:
        engine = build_engine(adapters, settings, runner, local_runner=local_job_runner(),
                              max_concurrent_runs=max_parallel)
        with progress(len(roots), terminal=sys.stdout.isatty()) as on_day:
            results = await run_backfill(engine, adapters.state, backfill, roots,
                                         max_parallel=max_parallel, on_day=on_day)
    print(summary(combined(results)))
    ok = sum(1 for result in results if result.ok)
    print(f"backfill {backfill.id}: {ok} of {len(results)} days done", flush=True)
    return exit_code(results, retcodes.given(args))


def _recorded_ok(backfill: Backfill, day: date) -> bool:
    status = backfill.days.get(day.isoformat())
    return status is not None and Status(status).ok


def said(result: DayResult) -> str:
    """What became of a day, in the words of ``charon run``'s task lines."""
    return EARLIER if result.report is None else SAID[CATEGORIES[result.status]]


@contextmanager
def progress(total: int, *, terminal: bool) -> Iterator[OnDay]:
    """A line per day as it ends, ``[12/31] 2018-10-12 ran``; in a terminal, under a
    progress bar too."""
    width = len(str(total))
    count = 0

    def line(result: DayResult) -> str:
        nonlocal count
        count += 1
        return f"[{count:>{width}}/{total}] {result.day} {said(result)}"

    bar_class = _progress_bar() if terminal else None
    if bar_class is None:
        yield lambda result: print(line(result), flush=True)
        return
    with bar_class() as bar:
        days = bar.add_task("backfill", total=total)

        def shown(result: DayResult) -> None:
            bar.console.print(line(result), highlight=False, markup=False)
            bar.advance(days)

        yield shown


def _progress_bar() -> type[Progress] | None:
    """rich's progress bar; None without rich (an optional extra, charon[progress])."""
    try:
        # Imported here: the bar is this command's, in a terminal only.
        from rich.progress import Progress  # noqa: PLC0415
    except ImportError:
        return None
    return Progress
