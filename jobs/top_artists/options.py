# mypy: disable-error-code="no-untyped-call"
# (Most of Beam's API is unannotated; strict mode would flag every call.)
"""The job's command line: Scio-style camelCase options, then Beam's own.

Dataflow's options come in the golden path's camelCase (--stagingLocation,
--maxNumWorkers, ...); any other option Beam knows passes through as Beam spells it
(--direct_num_workers=2, --direct_running_mode=multi_processing, --runner=PrismRunner,
--experiments=...). An option Beam does not know, or a value it cannot take, is a
usage error here, not a warning Beam logs while it drops the option.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from apache_beam.options.pipeline_options import PipelineOptions

from orchestrator.errors import UsageError

# Dataflow's camelCase option names to the attribute names of Beam's PipelineOptions.
_CAMEL_CASE: dict[str, tuple[str, type]] = {
    "runner": ("runner", str),
    "project": ("project", str),
    "region": ("region", str),
    "stagingLocation": ("staging_location", str),
    "tempLocation": ("temp_location", str),
    "autoscalingAlgorithm": ("autoscaling_algorithm", str),
    "maxNumWorkers": ("max_num_workers", int),
    "jobName": ("job_name", str),
}


class Parser(argparse.ArgumentParser):
    # The launcher reads one "error:" line, not argparse's usage text and exit code 2.
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def beam_options(argv: Sequence[str]) -> PipelineOptions:
    """The pipeline options the job's non-job arguments give, every one checked."""
    # No abbreviations: an option of Beam's must not be taken for a prefix of ours.
    parser = Parser(prog="top_artists", add_help=False, allow_abbrev=False)
    for camel, (name, kind) in _CAMEL_CASE.items():
        parser.add_argument(f"--{camel}", dest=name, type=kind)
    known, rest = parser.parse_known_args(argv)
    given = {name: value for name, value in vars(known).items() if value is not None}
    check_beam_flags(rest)
    # flags given: without them Beam re-reads sys.argv and warns about every job option.
    return PipelineOptions(flags=rest, **given)


def check_beam_flags(flags: Sequence[str]) -> None:
    """Refuse what Beam's own parser does not take: unknown options, bad values."""
    if not flags:
        return
    parser = _beam_parser()
    try:
        _, unknown = parser.parse_known_args(list(flags))
    except argparse.ArgumentError as exc:
        raise UsageError(f"bad Beam option: {exc}") from None
    if unknown:
        raise UsageError(f"unknown option {unknown[0]} (neither the job's nor Beam's)")


def _beam_parser() -> argparse.ArgumentParser:
    """Beam's parser of every pipeline option it knows, raising instead of exiting.

    Beam builds it afresh for each lookup and hands it to ``add_extra_args_fn``, its
    one public way to reach it.
    """
    found: list[argparse.ArgumentParser] = []
    PipelineOptions(flags=[]).get_all_options(add_extra_args_fn=found.append)
    parser = found[0]
    parser.exit_on_error = False
    return parser
