"""``charon registry``: list and publish a partition's revisions, and serve the registry."""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator import validate
from orchestrator.cli import arguments, render
from orchestrator.config import Settings
from orchestrator.core.ports import Adapters
from orchestrator.core.report import ExitCode
from orchestrator.service.options import ServiceOptions, served_settings
from orchestrator.stores.registry.base import Registry, check_publish


def add_registry_command(commands: Any) -> None:
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


def _check_partition(args: argparse.Namespace, settings: Settings) -> None:
    validate.endpoint(args.endpoint)
    validate.partition(args.partition)


def _check_publish(args: argparse.Namespace, settings: Settings) -> None:
    check_publish(args.endpoint, args.partition, args.uri, args.lineage,
                  idempotency_key=args.idempotency_key)


def _check_served(args: argparse.Namespace, settings: Settings) -> None:
    served_settings(settings, args.backend)


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

    host = args.host or settings.registry_service.host
    port = settings.registry_service.port if args.port is None else args.port
    await registry_service.serve(
        registry, ServiceOptions.from_settings(settings), host=host, port=port,
        ready=lambda url: print(f"registry serving on {url}", flush=True),
    )
    return ExitCode.OK
