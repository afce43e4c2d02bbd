"""Luigi's ``--retcode-*`` options for ``charon run``: the exit code of each way a run can
fall short, as ``luigi --retcode-task-failed 3`` sets them (``luigi/retcodes.py``).

The defaults are charon's own codes (orchestrator.core.report.ExitCode), not Luigi's
zeros: a script that sets none of them sees what it always saw.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Awaitable, Callable

from orchestrator.bounds import INTEGER, shown
from orchestrator.cli import render
from orchestrator.core.report import ExitCode, Report, RetCodes
from orchestrator.errors import CharonError
from orchestrator.log import get_logger

MAX_EXIT_CODE = 255
# option → (RetCodes field, when it applies), in Luigi's names.
OPTIONS = {
    "--retcode-task-failed": ("task_failed", "a task's run failed"),
    "--retcode-scheduling-error": (
        "scheduling_error", "a task could not be checked or finished: a store failed"),
    "--retcode-missing-data": ("missing_data", "an external input is missing"),
    "--retcode-already-running": (
        "already_running", "another worker (a daemon, another charon run) holds a task's run"),
    "--retcode-not-run": ("not_run", "the task is not complete for any other reason"),
}


def code(text: str) -> int:
    """An exit code: 0 to 255, what a process can exit with."""
    if not (INTEGER.fullmatch(text) and 0 <= int(text) <= MAX_EXIT_CODE):
        raise argparse.ArgumentTypeError(
            f"expected an exit code from 0 to {MAX_EXIT_CODE}, got {shown(text)}")
    return int(text)


def add_options(parser: argparse.ArgumentParser) -> None:
    defaults = RetCodes()
    group = parser.add_argument_group("exit codes (Luigi's --retcode-* options)")
    for flag, (field, when) in OPTIONS.items():
        group.add_argument(flag, dest=f"retcode_{field}", type=code, metavar="N",
                           default=getattr(defaults, field),
                           help=f"when {when} (default {getattr(defaults, field)})")
    group.add_argument("--retcode-unhandled-exception", type=code, metavar="N",
                       default=ExitCode.FAILED,
                       help="when charon itself fails unexpectedly, its traceback logged "
                            f"(default {ExitCode.FAILED})")


async def reported(args: argparse.Namespace, run: Callable[[], Awaitable[Report]]) -> int:
    """Run, print the report and return its exit code under the options given.

    A charon error goes on to the command's one ``error:`` line; any other exception is
    a bug in charon or in a task's own code outside its run: logged with its traceback,
    it exits with ``--retcode-unhandled-exception``.
    """
    try:
        report = await run()
    except Exception as exc:
        if isinstance(exc, CharonError) or (
            isinstance(exc, BaseExceptionGroup) and exc.split(CharonError)[1] is None
        ):
            raise
        get_logger("charon.cli").exception("unhandled exception")
        return int(args.retcode_unhandled_exception)
    print(render.report(report))
    return report.exit_code_with(given(args))


def given(args: argparse.Namespace) -> RetCodes:
    """The exit codes the command line set (the defaults for those it did not)."""
    return RetCodes(**{field.name: getattr(args, f"retcode_{field.name}")
                       for field in dataclasses.fields(RetCodes)})
