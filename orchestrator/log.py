"""Logging through structlog: explicit, resettable, JSON lines unless on a terminal.

charon's modules log through :func:`get_logger`, whose loggers drop what the level
filters out themselves and import structlog only for the first line that passes:
importing structlog (and the modules it brings) was about a tenth of a ``charon run``
that finds everything complete, which at the default level logs nothing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import structlog
    from structlog.typing import EventDict, WrappedLogger

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
_CONTEXT: ContextVar[Mapping[str, Any]] = ContextVar(
    "charon_log_context", default=MappingProxyType({}))


class _Configuration:
    """What :func:`configure_logging` asked for, and whether structlog has it yet."""

    def __init__(self) -> None:
        self.threshold = 0
        """Lines below this level are dropped before structlog is involved; 0 (before
        any configuration) passes every line to structlog as it is configured."""
        self.pending: tuple[str, str, TextIO | None, bool] | None = None
        self.dropped = 0
        """Lines the log's stream refused (see :class:`_Lines`)."""


_configuration = _Configuration()


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None, *,
    cache_loggers: bool = False,
) -> None:
    """Configure logging for this process; call again to reconfigure.

    Logs go to stderr so that a command's results on stdout stay machine-readable.
    ``cache_loggers``: a logger binds this configuration on first use and keeps it,
    instead of binding it again on every call; for a process that configures once,
    before it logs (the ``charon`` command), since a reconfiguration then reaches
    only loggers not yet used. structlog gets the configuration now if it is already
    imported (a task's module may use it directly), else with the first line logged.
    """
    if level not in _LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    _configuration.threshold = _LEVELS[level]
    _configuration.pending = (level, fmt, stream, cache_loggers)
    if "structlog" in sys.modules:
        _structlog()


def reset_logging() -> None:
    """Forget :func:`configure_logging`'s level and configuration (tests)."""
    _configuration.threshold = 0
    _configuration.pending = None
    _configuration.dropped = 0


def dropped_lines() -> int:
    """How many lines the log's stream has refused since the process began."""
    return _configuration.dropped


class _Lines:
    """structlog's logger for one stream: a line a call, flushed. A line the stream
    refuses (its reader gone, its disk full) is dropped and counted, not raised: a
    daemon must not die of its log (one did, at its next line, once the reader of its
    ``2>&1 |`` pipe had exited), and it has nowhere else to say so but its metrics."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()  # the worker threads log too

    def msg(self, message: str) -> None:
        with self._lock:
            try:
                print(message, file=self._stream, flush=True)
            except OSError:
                _configuration.dropped += 1

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


def _structlog() -> Any:
    """structlog, imported and given the pending configuration."""
    import structlog  # noqa: PLC0415  # on the first line logged: see the module's doc

    if (pending := _configuration.pending) is not None:
        _configuration.pending = None
        _apply(structlog, *pending)
    return structlog


def _apply(structlog: Any, level: str, fmt: str, stream: TextIO | None,
           cache_loggers: bool) -> None:
    out = stream or sys.stderr
    lines = _Lines(out)
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    renderer = (structlog.dev.ConsoleRenderer(colors=out.isatty()) if console
                else structlog.processors.JSONRenderer())
    structlog.configure(
        processors=[
            merge_log_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=lambda *_: lines,
        cache_logger_on_first_use=cache_loggers,
    )


class Logger:
    """A structlog logger made on the first line that passes the configured level."""

    __slots__ = ("_logger", "_name", "_values")

    def __init__(self, name: str, values: Mapping[str, Any]) -> None:
        self._name = name
        self._values = values
        self._logger: structlog.typing.FilteringBoundLogger | None = None

    def bind(self, **values: Any) -> Logger:
        return Logger(self._name, {**self._values, **values})

    def debug(self, event: str, **values: Any) -> None:
        if _configuration.threshold <= _LEVELS["debug"]:
            self._structlog_logger().debug(event, **values)

    def info(self, event: str, **values: Any) -> None:
        if _configuration.threshold <= _LEVELS["info"]:
            self._structlog_logger().info(event, **values)

    def warning(self, event: str, **values: Any) -> None:
        if _configuration.threshold <= _LEVELS["warning"]:
            self._structlog_logger().warning(event, **values)

    def error(self, event: str, **values: Any) -> None:
        self._structlog_logger().error(event, **values)

    def exception(self, event: str, **values: Any) -> None:
        """An error with the exception being handled, traceback included."""
        self._structlog_logger().exception(event, **values)

    def _structlog_logger(self) -> structlog.typing.FilteringBoundLogger:
        if self._logger is None:
            self._logger = _structlog().get_logger(self._name, **self._values)
        return self._logger


def get_logger(name: str, **values: Any) -> Logger:
    """A logger named ``name`` (``charon.engine``), ``values`` on each of its lines."""
    return Logger(name, values)


FLOOD_LOG_SECONDS = 10.0


class Throttled:
    """A warning that comes in floods (connections turned away, notifications dropped),
    counted and said in one line at most every FLOOD_LOG_SECONDS, with how many times
    it happened since the last line under ``counted``: a flood must not flood the log."""

    def __init__(self, log: Logger, event: str, counted: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log, self._event, self._counted, self._clock = log, event, counted, clock
        self._count = 0
        self._said_at: float | None = None

    def __call__(self, **values: Any) -> None:
        """It happened once more; ``values`` go on the line, if one is said now."""
        self._count += 1
        now = self._clock()
        if self._said_at is None or now - self._said_at >= FLOOD_LOG_SECONDS:
            self._log.warning(self._event, **{self._counted: self._count}, **values)
            self._said_at, self._count = now, 0


@contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Bind ``values`` to every log line of this task while inside; restore after.

    One context variable holds the whole mapping, so binding costs one copy of a few
    keys and needs no structlog: thousands of runs start at once, logging nothing.
    """
    token = _CONTEXT.set({**_CONTEXT.get(), **values})
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def bound_context() -> Mapping[str, Any]:
    """What :func:`log_context` binds here, for a line logged now."""
    return _CONTEXT.get()


def merge_log_context(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """The structlog processor that adds :func:`log_context`'s values to a line; a
    value the line sets itself wins."""
    return {**_CONTEXT.get(), **event}


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
