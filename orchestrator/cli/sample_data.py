"""``charon sample-data``: a realistic day of input data, or the Luigi example's streams."""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from typing import Any

import anyio

from jobs.checkpoints import Checkpoint, cancellable
from orchestrator.cli import arguments, render
from orchestrator.config import Settings
from orchestrator.core.ports import Adapters
from orchestrator.core.report import ExitCode
from orchestrator.errors import UsageError
from orchestrator.intervals import parse_day
from orchestrator.log import get_logger
from orchestrator.tablespec import TableSpec

PROGRESS_SECONDS = 1.0


def add_sample_data_command(commands: Any) -> None:
    sample = commands.add_parser("sample-data", help="write a realistic day of input data")
    sample.add_argument("--date", type=arguments.day,
                        help="the day of EndContentFact and TrackEntity, e.g. 2018-10-31")
    sample.add_argument("--streams", action="store_true",
                        help="write the Luigi example's daily Streams TSV files instead")
    sample.add_argument("--date-interval", type=arguments.interval,
                        help="with --streams: the days, in any Luigi spelling (2012-07)")
    sample.add_argument("--events", type=arguments.events, default=100_000,
                        help="stream events")
    sample.add_argument("--seed", type=arguments.seed, default=None,
                        help="random seed (default: the date)")
    sample.add_argument("--new-revision", action="store_true",
                        help="publish another revision (new plays, the same TrackEntity table)"
                             " even if the day already has one")
    sample.add_argument("--json", action="store_true",
                        help="print the revision and table as one JSON object")
    sample.set_defaults(command=cmd_sample_data, check=_check_sample_data)


def _check_sample_data(args: argparse.Namespace, settings: Settings) -> None:
    if args.streams and args.date_interval is None:
        raise UsageError("sample-data --streams needs --date-interval (e.g. 2012-07)")
    if not args.streams and args.date is None:
        raise UsageError("sample-data needs --date (or --streams --date-interval)")


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
    sample = await anyio.to_thread.run_sync(partial(
        sample_data.generate_day, day, args.events, seed, catalogue_seed=day_seed,
        checkpoint=_generating(args.events)))
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


def _generating(events: int) -> Checkpoint:
    """A generator's checkpoint that stops it once the command is cancelled (Ctrl-C),
    and says how far it got every PROGRESS_SECONDS: a big day takes a while."""
    log = get_logger("charon.sample_data")
    said = time.monotonic()

    def checkpoint(made: int) -> None:
        nonlocal said
        cancellable(made)
        if time.monotonic() - said >= PROGRESS_SECONDS:
            said = time.monotonic()
            log.info("generating sample data", events=f"{made:,} of {events:,}")

    return checkpoint


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
