"""The ``charon`` command: run tasks the Luigi way, work with the registry, make sample data."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeAlias

import anyio

from orchestrator.adapters import (
    build_engine,
    local_job_runner,
    open_adapters,
    open_job_runner,
    open_registry,
)
from orchestrator.cli import arguments, output, render, retcodes, task_options
from orchestrator.cli.stopping import Stopped, unless_stopped
from orchestrator.config import Settings, load_settings
from orchestrator.core.graph import resolve
from orchestrator.core.ports import Adapters
from orchestrator.core.report import ExitCode, Report
from orchestrator.errors import CharonError, ConfigError, UsageError, first_charon_error
from orchestrator.log import configure_logging
from orchestrator.stores.registry.base import Registry
from orchestrator.tasks.commands import spark_submit
from orchestrator.tasks.params import Overrides, family_overrides
from orchestrator.tasks.task import SparkSubmitTask, Task, load_task_class

# Evaluating many partitions allocates many short-lived containers (coroutines, events,
# rows), and CPython's default first-generation threshold of 700 then runs the cyclic
# collector hundreds of times per thousand runs, each pass also walking what the
# imports left behind. Freezing that and collecting a tenth as often took a fifth off
# the orchestration overhead of 1,000 no-op runs (bench/thousand_tasks.py).
GC_FIRST_GENERATION_THRESHOLD = 10_000
INTERRUPTED = 130
"""The shells' exit code for a command stopped by SIGINT (128 + 2)."""

Command = Callable[[argparse.Namespace, Settings, Adapters], Awaitable[int]]
Check = Callable[[argparse.Namespace, Settings], None]
"""A command's checks of its arguments and settings, before anything is opened."""
RegistryCommand = Callable[[argparse.Namespace, Settings, Registry], Awaitable[int]]
Commands: TypeAlias = "argparse._SubParsersAction[arguments.Parser]"


def main(argv: Sequence[str] | None = None) -> None:
    tune_garbage_collector()
    output.watch_output()
    sys.exit(run_cli(sys.argv[1:] if argv is None else argv))


def tune_garbage_collector() -> None:
    """Set for the whole process, so only the ``charon`` command calls it, never an import."""
    gc.freeze()
    gc.set_threshold(GC_FIRST_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


def run_cli(argv: Sequence[str]) -> int:
    """Run one command; a charon error is one line on stderr and its exit code."""
    try:
        return _execute(argv)
    except CharonError as exc:
        return _refuse(exc)
    except KeyboardInterrupt:
        # Ctrl-C: the command's tasks were cancelled and cleaned up on the way out (a
        # claimed run is released, or waits out its lease); a traceback would say a bug.
        output.say("interrupted")
        return INTERRUPTED
    except Stopped as stop:  # SIGTERM or SIGHUP, cleaned up as Ctrl-C is
        output.say(str(stop))
        return stop.exit_code
    except OSError as error:  # a broken pipe among them
        if (code := output.ended_by(error)) is None:
            raise
        return code
    except BaseExceptionGroup as group:
        return _exit_of_group(group)


def _exit_of_group(group: BaseExceptionGroup[BaseException]) -> int:
    """A command fails inside a task group (a server's, the daemon's, the one watching
    for signals), which wraps the error."""
    if (code := output.ended_by(group)) is not None:
        return code
    if (error := first_charon_error(group)) is None:
        raise group
    return _refuse(error)


def _execute(argv: Sequence[str]) -> int:
    parser = build_parser(argv[0] if argv else None)
    args, extra = parser.parse_known_args(argv)
    overrides: Overrides = {}
    if getattr(args, "task_args", False):
        if args.help or args.help_all:
            print(_task_command_help(args))
            return ExitCode.OK
        if missing := task_options.required_missing(args):
            args.task_parser.error(f"the following arguments are required: {', '.join(missing)}")
        load_task_class(args.module, args.family)  # imports the families overrides name
        overrides, extra = task_options.parse_overrides(extra)
        with family_overrides(overrides):
            args.task = args.parse_task(args, extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    settings = load_settings()
    if getattr(args, "log_level", None) is not None:
        settings = dataclasses.replace(
            settings, log=dataclasses.replace(settings.log, level=args.log_level))
    check: Check | None = getattr(args, "check", None)
    if check is not None:
        check(args, settings)
    configure_logging(settings.log.level, settings.log.format, cache_loggers=True)
    command: Command = args.command
    # The event loop's tasks start from this context, so tasks built in them see the
    # --<Family>-<param> values.
    with family_overrides(overrides):
        return anyio.run(_with_adapters, command, args, settings)


def _refuse(error: CharonError) -> int:
    output.say(f"error: {error}")
    # Bad configuration is bad input, like a bad flag: nothing ran.
    return ExitCode.USAGE if isinstance(error, UsageError | ConfigError) else ExitCode.FAILED


async def _with_adapters(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    registry_command: RegistryCommand | None = getattr(args, "registry_command", None)
    if registry_command is not None:
        # The registry the service serves, alone: a long-running service has no use for
        # the state store, warehouse or storage, and should not hold them open.
        from orchestrator.service.options import served_settings  # noqa: PLC0415  # see _COMMANDS

        served = served_settings(settings, getattr(args, "backend", None))
        async with open_registry(served) as registry:
            return await registry_command(args, served, registry)

    async def with_adapters() -> int:
        async with open_adapters(settings) as adapters:
            return await command(args, settings, adapters)

    if getattr(args, "own_signals", False):
        return await with_adapters()
    return await unless_stopped(with_adapters)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of ``command`` alone when it names one, so that only its own modules are
    imported; of every command otherwise (``charon --help``, argparse's errors)."""
    parser = arguments.Parser(prog="charon", description=task_options.plain_text(__doc__ or ""))
    parser.add_argument("--help-all", action=HelpAll,
                        help="show the options of every command and exit")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    chosen = [add for names, add in _COMMANDS if command in names]
    for add in chosen or [add for _, add in _COMMANDS]:
        add(commands)
    return parser


def _add_run(commands: Commands) -> None:
    run = _task_command(commands, "run", "bring a task and its dependencies up to date")
    run.add_argument("--local-scheduler", action="store_true",
                     help="accepted for Luigi compatibility; charon needs no scheduler")
    run.add_argument("--workers", type=arguments.positive, default=None,
                     help="runs launched at once (default: engine.max_concurrent_runs)")
    retcodes.add_options(run)
    run.set_defaults(command=cmd_run)


def _add_show(commands: Commands) -> None:
    show = _task_command(commands, "show", "print a task's published outputs")
    show.add_argument("--limit", type=arguments.positive, default=20,
                      help="rows to print per output")
    show.set_defaults(command=cmd_show)


# The other commands' modules are imported by the commands that use them: backfill's,
# the daemon's, dev's and the service's were 3% of the instructions of `charon run`.
def _add_registry(commands: Commands) -> None:
    from orchestrator.cli.registry import add_registry_command  # noqa: PLC0415  # see above

    add_registry_command(commands)


def _add_sample_data(commands: Commands) -> None:
    from orchestrator.cli.sample_data import add_sample_data_command  # noqa: PLC0415  # see above

    add_sample_data_command(commands)


def _add_daemon(commands: Commands) -> None:
    from orchestrator.cli.daemon import add_daemon_commands  # noqa: PLC0415  # see above

    add_daemon_commands(commands, _task_command)


def _add_dev(commands: Commands) -> None:
    from orchestrator.cli.dev import add_dev_command  # noqa: PLC0415  # see above

    add_dev_command(commands)


def _add_backfill(commands: Commands) -> None:
    from orchestrator.cli.backfill import add_backfill_command  # noqa: PLC0415  # see above

    add_backfill_command(commands, _task_command)


_COMMANDS: tuple[tuple[tuple[str, ...], Callable[[Commands], None]], ...] = (
    (("run",), _add_run),
    (("show",), _add_show),
    (("registry",), _add_registry),
    (("sample-data",), _add_sample_data),
    (("daemon", "explain", "cancel", "janitor"), _add_daemon),
    (("dev",), _add_dev),
    (("backfill",), _add_backfill),
)
"""Every command, in the order ``charon --help`` lists them, by the names each adds."""


class HelpAll(argparse.Action):
    """``--help-all``: every command's options, as Luigi's lists every task's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(task_options.every_command_help(parser))
        parser.exit()


def _task_command(commands: Commands, name: str,
                  help_text: str) -> arguments.Parser:
    parser = commands.add_parser(
        name, help=help_text, description=help_text, add_help=False,
        usage=f"charon {name} --module MODULE TASK [--param VALUE ...]",
    )
    # Neither is required of argparse, so --help works before they are known; a command
    # without them is refused after (_execute).
    parser.add_argument("--module", help="the Python module defining the task")
    parser.add_argument("family", metavar="TASK", nargs="?",
                        help="the task class, e.g. TopArtistsJob")
    parser.add_argument("-h", "--help", action="store_true",
                        help="show this help, with TASK's parameters when given, and exit")
    parser.add_argument("--help-all", action="store_true",
                        help="show the options of every command, and every --<Family>-<param>"
                             " of MODULE's tasks, and exit")
    parser.add_argument("--log-level", type=arguments.log_level,
                        help="DEBUG, INFO, WARNING or ERROR (default: log.level)")
    parser.set_defaults(task_args=True, task_parser=parser, parse_task=_parse_task_args)
    return parser


def _task_command_help(args: argparse.Namespace) -> str:
    command: argparse.ArgumentParser = args.task_parser
    sections = [task_options.every_command_help(build_parser()) if args.help_all
                else command.format_help().rstrip()]
    if args.module is not None and args.family is not None:
        task_class = load_task_class(args.module, args.family)
        sections.append(task_options.parameters_help(task_class))
        if args.help_all:
            sections.append(task_options.module_families_help(args.module))
    elif not args.help_all:
        sections.append("With --module MODULE TASK, --help lists TASK's parameters too.")
    return "\n\n".join(sections)


def _parse_task_args(args: argparse.Namespace, argv: Sequence[str]) -> Task:
    """The task of a command that runs one (``backfill`` has its own, a task per day)."""
    return parse_task(args.module, args.family, argv)


def parse_task(module: str, family: str, argv: Sequence[str]) -> Task:
    """Instantiate ``family`` from Luigi-style flags (``--top-n 100`` or ``--top_n=100``)."""
    task_class = load_task_class(module, family)
    given, unknown = task_options.parse_parameters(
        task_class, f"charon run --module {module} {family}", argv)
    task_options.refuse_unknown(task_class, unknown)
    return task_class(**given)


async def cmd_run(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    # Looked for before anything runs: without the spark extra a Spark task would only
    # fail once its run was claimed, after the tasks before it ran.
    graph = resolve(args.task)
    if any(isinstance(task, SparkSubmitTask) for task in graph.tasks.values()):
        spark_submit()

    async def run() -> Report:
        async with open_job_runner(settings) as runner:
            engine = build_engine(adapters, settings, runner, local_runner=local_job_runner(),
                                  max_concurrent_runs=args.workers)
            return await engine.run(args.task, graph=graph)

    return await retcodes.reported(args, run)


async def cmd_show(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    print(await render.task_outputs(args.task, adapters, limit=args.limit))
    return ExitCode.OK
