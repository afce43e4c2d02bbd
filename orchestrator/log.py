"""structlog configuration: explicit, resettable, JSON lines unless on a terminal."""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO

import structlog

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *,
    cache_loggers: bool = False,
) -> None:
    """Configure structlog for this process; call again to reconfigure.

    Logs go to stderr so that a command's results on stdout stay machine-readable.
    ``cache_loggers``: a logger binds this configuration on first use and keeps it,
    instead of binding it again on every call; for a process that configures once,
    before it logs (the ``charon`` command), since a reconfiguration then reaches
    only loggers not yet used.
    """
    out = stream or sys.stderr
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.dev.ConsoleRenderer(colors=out.isatty())
        if console
        else structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=cache_loggers,
    )


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind ``values`` to every log line of this task while inside; restore after.

    structlog's ``bound_contextvars`` copies the whole context on entry to save what
    it overwrites; resetting the tokens of this bind restores the same for less,
    which shows when thousands of runs start at once.
    """
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


JobOutput = Callable[[str], Awaitable[None]]
_JOB_OUTPUT: ContextVar[JobOutput | None] = ContextVar("job_output", default=None)


@contextmanager
def job_output_to(sink: JobOutput) -> Iterator[None]:
    """Hand every line of job output this task (and the tasks it starts) reports to
    ``sink``: the run's log, which the run page shows."""
    token = _JOB_OUTPUT.set(sink)
    try:
        yield
    finally:
        _JOB_OUTPUT.reset(token)


async def job_output(line: str) -> None:
    """One line of a job's output, for the run it belongs to (nowhere outside a run)."""
    if (sink := _JOB_OUTPUT.get()) is not None:
        await sink(line)
