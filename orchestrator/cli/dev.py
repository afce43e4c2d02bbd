"""``charon dev``: the registry service, the daemon and its page on loopback, in one command.

It runs in one process and one task group, not as supervised child processes:

- Ctrl-C reaches one process, and the daemon already stops cleanly on SIGINT, SIGTERM
  and SIGHUP (running work gets its grace period, local jobs are killed, runs released).
  With children, a supervisor killed outright (SIGKILL, a closed terminal) would leave
  them running; here there is nothing to leave behind.
- The pieces are the code ``charon registry serve`` and ``charon daemon`` run: the
  service on the embedded registry, and a daemon reading it over HTTP, so its change
  feed long-polls as it does against a separate service.
- No ports to hand from one process to another, no readiness lines to parse.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from orchestrator.adapters import open_adapters
from orchestrator.cli import arguments
from orchestrator.cli.daemon import check_workflows, run_daemon
from orchestrator.cli.sample_data import cmd_sample_data
from orchestrator.config import Settings
from orchestrator.core.report import ExitCode
from orchestrator.service.options import ServiceOptions, served_settings
from orchestrator.stores.registry.base import Registry

LOOPBACK = "127.0.0.1"
DEMO_DAY = "2018-10-31"


def add_dev_command(commands: Any) -> None:
    dev = commands.add_parser(
        "dev", help="the registry service, the daemon and its page on loopback, with the "
                    "sample day published and run; Ctrl-C stops it all")
    dev.add_argument("--date", type=arguments.day, default=DEMO_DAY,
                     help=f"the sample day to publish (default: {DEMO_DAY})")
    dev.add_argument("--events", type=arguments.events, default=100_000,
                     help="the sample day's stream events")
    dev.add_argument("--port-registry", type=arguments.port,
                     help="the registry service's port (default: registry_service.port; "
                          "0 picks a free one)")
    dev.add_argument("--port-daemon", type=arguments.port,
                     help="the daemon's port (default: daemon.port; 0 picks a free one)")
    # What sample-data reads of its arguments beyond --date and --events.
    dev.set_defaults(command=None, registry_command=cmd_dev,
                     check=check_dev, streams=False, seed=None, new_revision=False, json=False)


def check_dev(args: argparse.Namespace, settings: Settings) -> None:
    served_settings(settings)
    check_workflows(args, settings)


def dev_settings(settings: Settings, registry_url: str) -> Settings:
    """The daemon's settings: the service's registry over HTTP, and every workflow
    watching each day with inputs, whatever its configured window."""
    return dataclasses.replace(
        settings,
        registry=dataclasses.replace(settings.registry, kind="http", url=registry_url),
        workflows=tuple(dataclasses.replace(w, window="inputs", start="", end="")
                        for w in settings.workflows),
    )


async def cmd_dev(args: argparse.Namespace, settings: Settings, registry: Registry) -> int:
    # Imported here, as by `registry serve`: aiohttp's server slows every other command.
    from orchestrator.service.app import running_service  # noqa: PLC0415

    port = settings.registry_service.port if args.port_registry is None else args.port_registry
    async with running_service(registry, ServiceOptions.from_settings(settings),
                               host=LOOPBACK, port=port) as registry_url:
        print(f"registry serving on {registry_url}", flush=True)
        dev = dev_settings(settings, registry_url)
        async with open_adapters(dev) as adapters:

            async def publish_sample(url: str) -> None:
                print(f"UI on {url}/", flush=True)
                await cmd_sample_data(args, dev, adapters)
                print("watching every day with inputs; Ctrl-C stops", flush=True)

            await run_daemon(dev, adapters, host=LOOPBACK, port=settings.daemon.port
                             if args.port_daemon is None else args.port_daemon,
                             then=publish_sample)
    return ExitCode.OK
