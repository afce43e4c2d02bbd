"""``charon daemon``, ``charon explain`` and ``charon cancel``: the reactive side of the CLI."""

from __future__ import annotations

import argparse
import dataclasses
import gc
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import anyio.abc

from orchestrator.adapters import build_engine, local_job_runner, open_job_runner
from orchestrator.cli import arguments
from orchestrator.config import Settings
from orchestrator.core.explain import explanation
from orchestrator.core.policy import Policy
from orchestrator.core.ports import Adapters
from orchestrator.core.report import ExitCode
from orchestrator.model import RunState

# The daemon's and the janitor's own modules are imported by the commands that use
# them, as the daemon's HTTP server is (run_daemon): every other command, `charon run`
# first, starts without them.

TaskCommand = Callable[[Any, str, str], argparse.ArgumentParser]


def add_daemon_commands(commands: Any, task_command: TaskCommand) -> None:
    daemon = commands.add_parser(
        "daemon", help="watch the configured workflows and run each day the moment it is ready"
    )
    daemon.add_argument("--host", type=arguments.host,
                        help="serve webhooks, /status and /metrics here")
    daemon.add_argument("--port", type=arguments.port, help="0 picks a free port")
    # It stops on SIGTERM, SIGINT and SIGHUP itself, with a grace period (daemon/lifecycle.py).
    daemon.set_defaults(command=cmd_daemon, check=check_workflows, own_signals=True)
    explain = task_command(commands, "explain", "say why a run has not fired")
    explain.set_defaults(command=cmd_explain)
    cancel = task_command(commands, "cancel", "cancel the task's running run and its job")
    cancel.set_defaults(command=cmd_cancel)
    janitor = commands.add_parser(
        "janitor", help="remove staging no live run owns (older than engine.lease_seconds)"
    )
    janitor.add_argument("--dry-run", action="store_true",
                         help="list what would be removed; remove nothing")
    janitor.set_defaults(command=cmd_janitor, check=check_workflows)


def check_workflows(args: argparse.Namespace, settings: Settings) -> None:
    """Import every workflow's task and build today's root, before any store is opened."""
    from orchestrator.daemon.daemon import utc_today  # noqa: PLC0415  # see top
    from orchestrator.tasks.roots import check_loadable  # noqa: PLC0415

    check_loadable(settings.workflows, utc_today())


async def cmd_daemon(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    await run_daemon(settings, adapters, host=args.host or settings.daemon.host,
                     port=settings.daemon.port if args.port is None else args.port)
    return ExitCode.OK


async def run_daemon(settings: Settings, adapters: Adapters, *, host: str, port: int,
                     then: Callable[[str], Awaitable[None]] | None = None) -> None:
    """The daemon and its HTTP server, until SIGTERM or SIGINT. ``then`` is awaited with
    the server's URL once it listens; the daemon stopping cancels it, as it does sensing."""
    # Imported here: aiohttp's server is a third of the start-up of the other commands.
    from orchestrator.daemon.daemon import Daemon  # noqa: PLC0415
    from orchestrator.daemon.http_api import daemon_app  # noqa: PLC0415
    from orchestrator.web.http import serve  # noqa: PLC0415
    from sensors.feed_cache import FeedCache  # noqa: PLC0415
    from sensors.registry import LongPollRegistry  # noqa: PLC0415

    if isinstance(adapters.registry, LongPollRegistry):
        # The change feed keeps the partitions' answers current: lookups need not ask.
        adapters = dataclasses.replace(adapters, registry=FeedCache(adapters.registry))
    async with open_job_runner(settings) as runner:
        engine = build_engine(adapters, settings, runner, local_runner=local_job_runner())
        daemon = Daemon(settings, adapters, engine, freeze=gc.freeze)
        app = daemon_app(daemon, secret=settings.secrets.webhook_secret,
                         api_token=settings.secrets.api_token,
                         previous_secret=settings.secrets.webhook_previous_secret,
                         max_body_bytes=settings.daemon.max_body_bytes)

        async def serve_http(*, task_status: anyio.abc.TaskStatus[int]) -> None:
            async with anyio.create_task_group() as group:
                bound: int = await group.start(partial(serve, app, host, port))
                url = f"http://{host}:{bound}"
                print(f"daemon listening on {url}", flush=True)
                task_status.started(bound)
                if then is not None:
                    await then(url)

        await daemon.run(serve_http)


async def cmd_explain(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    workflow = next(
        (w for w in settings.workflows if w.task == type(args.task).task_family), None
    )
    policy = Policy(dry_run=True, rerun_late_inputs=workflow.rerun_late_inputs if workflow
                    else True)
    async with open_job_runner(settings) as runner:  # a dry run: it launches nothing
        report = await build_engine(adapters, settings, runner).run(args.task, policy)
    running = await adapters.state.list_runs(state=RunState.RUNNING, limit=10_000)
    print(explanation(report, running, settings, workflow))
    return ExitCode.OK


async def cmd_cancel(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    """Cancel the task's running run (Engine.cancel)."""
    task_id = args.task.task_id
    run = await adapters.state.latest(task_id)
    if run is None or run.state is not RunState.RUNNING:
        why = "it has no run" if run is None else f"its latest run {run.id} is {run.state}"
        if run is not None and run.state is RunState.PUBLISHING:
            why += ": its job is over and its outputs are being published"
        print(f"nothing to cancel for {task_id}: {why}")
        return ExitCode.FAILED
    async with open_job_runner(settings) as runner:
        await build_engine(adapters, settings, runner, local_runner=local_job_runner()
                           ).cancel(args.task, run)
    job = f", job {run.job_id}" if run.job_id else " (no job recorded yet)"
    print(f"cancelled {task_id}: run {run.id} attempt {run.attempt}{job}")
    return ExitCode.OK


async def cmd_janitor(args: argparse.Namespace, settings: Settings, adapters: Adapters) -> int:
    """One sweep over the staging of the configured workflows' outputs."""
    from orchestrator.core.janitor import build_janitor  # noqa: PLC0415  # see top
    from orchestrator.daemon.daemon import utc_today  # noqa: PLC0415
    from orchestrator.daemon.watch import Watchlist  # noqa: PLC0415

    watch = Watchlist(settings.workflows)
    watch.refresh(utc_today())
    swept = await build_janitor(settings, adapters).sweep(
        {adapters.output_prefix, *watch.output_prefixes}, watch.output_projects,
        dry_run=args.dry_run,
    )
    verb = "would remove" if args.dry_run else "removed"
    for path in swept.removed_folders:
        print(f"{verb} folder {path}")
    for spec in swept.removed_tables:
        print(f"{verb} table {spec}")
    for run_id in swept.abandoned:
        print(f"{'would end' if args.dry_run else 'ended'} abandoned run {run_id}")
    for run_id in swept.stalled:
        print(f"publication without an owner: run {run_id} (a claim of its task finishes it)")
    print(f"{verb} {swept.removed} staging location(s); {swept.kept_young} unowned but younger"
          f" than {settings.engine.lease_seconds} s, kept for now")
    return ExitCode.OK
