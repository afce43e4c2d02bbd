"""The ``charon`` command: run tasks the Luigi way, work with the registry, make sample data."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

import anyio

from orchestrator import validate
from orchestrator.adapters import local_job_runner, open_adapters, open_job_runner, open_registry
from orchestrator.cli import arguments, render, retcodes, task_options
from orchestrator.cli.backfill import add_backfill_command
from orchestrator.cli.daemon import add_daemon_commands
from orchestrator.cli.dev import add_dev_command
from orchestrator.config import Settings, load_settings
from orchestrator.core.engine import build_engine
from orchestrator.core.graph import resolve
from orchestrator.core.ports import Adapters
from orchestrator.core.report import ExitCode, Report
from orchestrator.errors import CharonError, ConfigError, UsageError
from orchestrator.intervals import parse_day
from orchestrator.log import configure_logging, get_logger
from orchestrator.service.options import served_settings
from orchestrator.stores.registry.base import Registry, check_publish
from orchestrator.tablespec import TableSpec
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


def main(argv: Sequence[str] | None = None) -> None:
    tune_garbage_collector()
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
        print("interrupted", file=sys.stderr)
        return INTERRUPTED
    except BaseExceptionGroup as group:
        # A server or the daemon fails inside a task group, which wraps the error.
        errors, others = group.split(CharonError)
        if errors is None or others is not None:
            raise
        return _refuse(_first(errors))


def _execute(argv: Sequence[str]) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    overrides: Overrides = {}
    if getattr(args, "task_args", False):
        if args.help or args.help_all:
            print(_task_command_help(parser, args))
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
    print(f"error: {error}", file=sys.stderr)
    # Bad configuration is bad input, like a bad flag: nothing ran.
    return ExitCode.USAGE if isinstance(error, UsageError | ConfigError) else ExitCode.FAILED


def _first(group: BaseExceptionGroup[CharonError]) -> CharonError:
    error = group.exceptions[0]
    return _first(error) if isinstance(error, BaseExceptionGroup) else error


async def _with_adapters(command: Command, args: argparse.Namespace, settings: Settings) -> int:
    registry_command: RegistryCommand | None = getattr(args, "registry_command", None)
    if registry_command is not None:
        # The registry the service serves, alone: a long-running service has no use for
        # the state store, warehouse or storage, and should not hold them open.
        served = served_settings(settings, getattr(args, "backend", None))
        async with open_registry(served) as registry:
            return await registry_command(args, served, registry)
    async with open_adapters(settings) as adapters:
        return await command(args, settings, adapters)


def build_parser() -> argparse.ArgumentParser:
    parser = arguments.Parser(prog="charon", description=task_options.plain_text(__doc__ or ""))
    parser.add_argument("--help-all", action=HelpAll,
                        help="show the options of every command and exit")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = _task_command(commands, "run", "bring a task and its dependencies up to date")
    run.add_argument("--local-scheduler", action="store_true",
                     help="accepted for Luigi compatibility; charon needs no scheduler")
    run.add_argument("--workers", type=arguments.positive, default=None,
                     help="runs launched at once (default: engine.max_concurrent_runs)")
    retcodes.add_options(run)
    run.set_defaults(command=cmd_run)
    show = _task_command(commands, "show", "print a task's published outputs")
    show.add_argument("--limit", type=arguments.positive, default=20,
                      help="rows to print per output")
    show.set_defaults(command=cmd_show)

    registry = commands.add_parser("registry", help="the partition registry")
    verbs = registry.add_subparsers(required=True, metavar="VERB")
    ls = verbs.add_parser("ls", help="list a partition's revisions, newest first")
    ls.add_argument("endpoint")
    ls.add_argument("partition")
    ls.set_defaults(command=cmd_registry_ls, check=_check_partition)
    publish = verbs.add_parser("publish", help="publish a new revision of a partition")
    publish.add_argument("endpoint")
    publish.add_argument("partition")
    publish.add_argument("uri")
    publish.add_argument("--lineage", action="append", default=[], metavar="REVISION_ID",
                         help="an input revision this one was built from (repeatable)")
    publish.add_argument("--idempotency-key", metavar="KEY",
                         help="publish once: a KEY already used for this partition prints "
                              "the revision it published, and publishes nothing")
    publish.set_defaults(command=cmd_registry_publish, check=_check_publish)
    serve = verbs.add_parser("serve", help="serve the registry over HTTP (the registry service)")
    serve.add_argument("--host", type=arguments.host,
                       help="listen here (default: registry_service.host)")
    serve.add_argument("--port", type=arguments.port,
                       help="0 picks a free port (default: registry_service.port)")
    serve.add_argument("--backend", choices=("sqlite", "postgres"),
                       help="the registry to serve: registry.path or registry.dsn "
                            "(default: registry_service.backend, else registry.kind)")
    serve.set_defaults(command=None, registry_command=cmd_registry_serve, check=_check_served)

    sample = commands.add_parser("sample-data", help="write a realistic day of input data")
    sample.add_argument("--date", type=arguments.day,
                        help="the day of EndContentFact and TrackEntity, e.g. 2018-10-31")
    sample.add_argument("--streams", action="store_true",
                        help="write the Luigi example's daily Streams TSV files instead")
    sample.add_argument("--date-interval", type=arguments.interval,
                        help="with --streams: the days, in any Luigi spelling (2012-07)")
    sample.add_argument("--events", type=arguments.positive, default=100_000,
                        help="stream events")
    sample.add_argument("--seed", type=arguments.seed, default=None,
                        help="random seed (default: the date)")
    sample.add_argument("--new-revision", action="store_true",
                        help="publish another revision (new plays, the same TrackEntity table)"
                             " even if the day already has one")
    sample.add_argument("--json", action="store_true",
                        help="print the revision and table as one JSON object")
    sample.set_defaults(command=cmd_sample_data, check=_check_sample_data)
    add_daemon_commands(commands, _task_command)
    add_dev_command(commands, cmd_sample_data)
    add_backfill_command(commands, _task_command)
    return parser


class HelpAll(argparse.Action):
    """``--help-all``: every command's options, as Luigi's lists every task's."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(task_options.every_command_help(parser))
        parser.exit()


def _task_command(commands: argparse._SubParsersAction[arguments.Parser], name: str,
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


def _task_command_help(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    command: argparse.ArgumentParser = args.task_parser
    sections = [task_options.every_command_help(parser) if args.help_all
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


def _check_partition(args: argparse.Namespace, settings: Settings) -> None:
    validate.endpoint(args.endpoint)
    validate.partition(args.partition)


def _check_publish(args: argparse.Namespace, settings: Settings) -> None:
    check_publish(args.endpoint, args.partition, args.uri, args.lineage,
                  idempotency_key=args.idempotency_key)


def _check_served(args: argparse.Namespace, settings: Settings) -> None:
    served_settings(settings, args.backend)


def _check_sample_data(args: argparse.Namespace, settings: Settings) -> None:
    if args.streams and args.date_interval is None:
        raise UsageError("sample-data --streams needs --date-interval (e.g. 2012-07)")
    if not args.streams and args.date is None:
        raise UsageError("sample-data needs --date (or --streams --date-interval)")


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


async def cmd_registry_ls(args: argparse.Namespace, settings: Settings,
                          adapters: Adapters) -> int:
    revisions = await adapters.registry.list(args.endpoint, args.partition)
    print(render.revisions(revisions))
    return ExitCode.OK if revisions else ExitCode.FAILED


async def cmd_registry_publish(args: argparse.Namespace, settings: Settings,
                               adapters: Adapters) -> int:
    revision = await adapters.registry.publish(
        args.endpoint, args.partition, args.uri, args.lineage,
        idempotency_key=args.idempotency_key,
    )
    print(render.revisions([revision]))
    return ExitCode.OK


async def cmd_registry_serve(args: argparse.Namespace, settings: Settings,
                             registry: Registry) -> int:
    # Imported here, like the daemon's server: aiohttp's server is a third of the
    # start-up of every other command.
    from orchestrator.service import app as registry_service  # noqa: PLC0415
    from orchestrator.service.options import ServiceOptions  # noqa: PLC0415

    host = args.host or settings.registry_service.host
    port = settings.registry_service.port if args.port is None else args.port
    await registry_service.serve(
        registry, ServiceOptions.from_settings(settings), host=host, port=port,
        ready=lambda url: print(f"registry serving on {url}", flush=True),
    )
    return ExitCode.OK


async def cmd_sample_data(args: argparse.Namespace, settings: Settings,
                          adapters: Adapters) -> int:
    # The sample data's writers (fastavro, the jobs' modules) are imported by this
    # command only, not at the start-up of every other.
    from jobs.top_artists import sample_data  # noqa: PLC0415

    if args.streams:
        return await _sample_streams(args, settings, adapters)
    day = parse_day(args.date)
    log = get_logger("charon.sample_data")
    existing = await adapters.registry.latest(sample_data.ENDPOINT, args.date)
    if existing and not args.new_revision:
        if args.json:
            print(json.dumps({"revision": existing.id, "uri": existing.uri, "created": False}))
        else:
            print(f"{sample_data.ENDPOINT} {args.date} already has revision {existing.id}; "
                  "pass --new-revision to publish another")
        return ExitCode.OK
    day_seed = int(f"{day:%Y%m%d}")
    seed = day_seed if args.seed is None else args.seed
    # A late revision is new plays over the day's catalogue, which keeps its table.
    late = existing is not None and await adapters.warehouse.table_info(
        TableSpec.parse(sample_data.TRACK_ENTITY_TABLE.format(day=day))
    ) is not None
    sample = await anyio.to_thread.run_sync(
        partial(sample_data.generate_day, day, args.events, seed, catalogue_seed=day_seed)
    )
    log.info("writing sample data", date=args.date, events=args.events, late=late)
    revision = await sample_data.publish_sample_day(
        sample, registry=adapters.registry, warehouse=adapters.warehouse,
        storage=adapters.storage,
        storage_prefix=adapters.data_prefix,
        write_table=not late,
    )
    if args.json:
        print(json.dumps({"revision": revision.id, "uri": revision.uri, "created": True,
                          "table": sample.track_entity_spec}))
    else:
        print(render.revisions([revision]))
        print(f"{'kept' if late else 'created'} table {sample.track_entity_spec}")
    return ExitCode.OK


async def _sample_streams(args: argparse.Namespace, settings: Settings,
                          adapters: Adapters) -> int:
    from jobs.luigi_top_artists import sample_data as sample_streams  # noqa: PLC0415  # see above

    written = await sample_streams.write_streams(
        args.date_interval, events=args.events,
        seed=sample_streams.DEFAULT_SEED if args.seed is None else args.seed,
        storage=adapters.storage, data_prefix=adapters.data_prefix,
    )
    for item in written:
        print(f"{'wrote' if item.created else 'exists'} {item.uri}")
    return ExitCode.OK
