"""Where the ``charon`` command's output and last line go, and what it does when they
cannot be written: a reader that went away (``charon registry ls ... | head``) or a full
disk under ``charon registry ls > file`` ends the command with one line at most, never
a traceback; an error from anywhere else is still shown as the bug it is."""

from __future__ import annotations

import contextlib
import os
import select
import sys
from collections.abc import Iterator
from typing import Any, TextIO, cast

from orchestrator.core.report import ExitCode

OUTPUT_CLOSED = 141
"""The shells' exit code for a command whose output's reader went away (128 + SIGPIPE),
as a command killed by that signal, which Python ignores, would end."""


class _Output:
    """Standard output, remembering why a write to it failed. A failed write's data may
    be gone already (a long line goes straight to the file), so flushing again cannot
    tell afterwards whether standard output was the one that failed."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.failure: OSError | None = None

    def write(self, text: str) -> int:
        with self._noting_failure():
            return self._stream.write(text)

    def flush(self) -> None:
        with self._noting_failure():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    @contextlib.contextmanager
    def _noting_failure(self) -> Iterator[None]:
        try:
            yield
        except OSError as failure:
            self.failure = failure
            raise


def watch_output() -> None:
    """Note why standard output fails, for :func:`ended_by`; ``charon`` calls it once, as
    it starts, never an import: a test calling a command in its own process keeps
    pytest's capture of its output as it was."""
    if not isinstance(sys.stdout, _Output):
        sys.stdout = cast(TextIO, _Output(sys.stdout))


def say(line: str) -> None:
    """One line on stderr; one no one reads any longer (a daemon's log pipe whose reader
    exited) must not turn the exit code into a traceback's."""
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)


def ended_by(error: BaseException) -> int | None:
    """The command's exit code when ``error``, or every error of a group, is standard
    output's: 141 when its reader went away, 1 (said in one line) when a write to it
    failed, as on a full disk; None when it is another's."""
    pipes, others = _split(error, BrokenPipeError)
    if pipes and not others and _reader_gone():
        _discard()  # whoever read the output has what it wanted
        return OUTPUT_CLOSED
    writes, others = _split(error, OSError)
    failed = sys.stdout.failure if isinstance(sys.stdout, _Output) else None
    if writes and not others and failed is not None:
        say(f"error: cannot write to standard output: {failed.strerror or failed}")
        _discard()
        return ExitCode.FAILED
    return None


def _split(error: BaseException, kind: type[OSError]) -> tuple[bool, bool]:
    """Whether ``error`` holds errors of ``kind``, and whether it holds others."""
    if isinstance(error, BaseExceptionGroup):
        matched, others = error.split(kind)
        return matched is not None, others is not None
    return isinstance(error, kind), not isinstance(error, kind)


def _reader_gone() -> bool:
    """Whether standard output is a pipe (or socket) whose reading end is closed: polled,
    it reports an error at once. A broken pipe elsewhere (a job's, a socket's) is a bug
    to show, not this."""
    poller = select.poll()
    poller.register(sys.stdout.fileno(), select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _discard() -> None:
    """What is left unwritten goes nowhere, or the flush at exit would fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
