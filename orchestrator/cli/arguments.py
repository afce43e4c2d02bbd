"""The command line's parser and value types: every bad value is refused before anything
runs, in one line ``error: ...`` with exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from orchestrator.bounds import HOST, INTEGER, MAX_PORT, shown
from orchestrator.core.report import ExitCode
from orchestrator.errors import UsageError
from orchestrator.intervals import DateInterval, parse_day, parse_interval


class Parser(argparse.ArgumentParser):
    """argparse, with its usage block cut to the one line every other bad input gets."""

    def error(self, message: str) -> NoReturn:
        self.exit(ExitCode.USAGE, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def day(text: str) -> str:
    try:
        return parse_day(text).isoformat()
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def interval(text: str) -> DateInterval:
    try:
        return parse_interval(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


LOG_LEVELS = ("debug", "info", "warning", "error")


def log_level(text: str) -> str:
    """A log level in any case, as Luigi's ``--log-level DEBUG``."""
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(level.upper() for level in LOG_LEVELS)}, got {shown(text)}"
        )
    return text.lower()


def positive(text: str) -> int:
    """A count: a whole number from 1."""
    if not (INTEGER.fullmatch(text) and int(text) >= 1):
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {shown(text)}")
    return int(text)


MAX_EVENTS = 10_000_000
"""A sample day's events at most: the day is made in memory, about 430 bytes an event
(a typo of a few more zeros took the machine's 24 GB in seconds, and the OOM killer
ended it)."""


def events(text: str) -> int:
    """A sample day's events: 1 to MAX_EVENTS."""
    if not (INTEGER.fullmatch(text) and 1 <= int(text) <= MAX_EVENTS):
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MAX_EVENTS:,}, got {shown(text)}")
    return int(text)


def port(text: str) -> int:
    """0 (any free port) to 65535."""
    if not (INTEGER.fullmatch(text) and 0 <= int(text) <= MAX_PORT):
        raise argparse.ArgumentTypeError(f"expected a port from 0 to {MAX_PORT}, got {shown(text)}")
    return int(text)


def host(text: str) -> str:
    if not HOST.fullmatch(text):
        raise argparse.ArgumentTypeError(f"expected a host name or IP address, got {shown(text)}")
    return text


def seed(text: str) -> int:
    """A random seed: any whole number that fits in 64 bits."""
    if not (INTEGER.fullmatch(text) and -(2**63) <= int(text) < 2**64):
        raise argparse.ArgumentTypeError(f"expected a 64-bit whole number, got {shown(text)}")
    return int(text)
