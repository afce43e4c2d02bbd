"""The one exception tree of charon.

Every error a user can meet derives from :class:`CharonError`. Adapters convert
vendor exceptions (sqlite3, DuckDB, OS errors, HTTP errors) into these at their
edge, so callers never need to know which backend is configured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime
from typing import TypeVar


class CharonError(Exception):
    """Base of every error charon raises on purpose."""


class ConfigError(CharonError):
    """The configuration file or a CHARON_* override is invalid."""


class UsageError(CharonError):
    """A command line, parameter value or task definition is invalid."""


class InvalidIdentifier(UsageError):
    """A table spec, endpoint or other identifier failed validation."""


class TaskNotFound(UsageError):
    """The requested module or task family does not exist."""


class DependencyCycle(UsageError):
    """requires() chains lead back to a task already on the path."""


class IdempotencyKeyReused(UsageError):
    """A publish's idempotency key already names a revision of another partition.

    A key stands for one logical publish of one (endpoint, partition); meeting it on
    another partition means two publishers chose the same key, and handing either one
    the other's revision would be wrong. Nothing is published.
    """


class UnknownBackfill(UsageError):
    """No backfill is recorded under the id given."""


class BackfillTaken(CharonError):
    """The backfill is no longer this runner's to run: another took it over (this one
    was thought gone, or a command resumed it), or a user cancelled it. What this one
    would write of it is refused, and it stops."""


class AdapterError(CharonError):
    """An outside system (store, registry, warehouse, storage) failed."""


class StateStoreError(AdapterError):
    """The state store could not read or write runs."""


class RegistryError(AdapterError):
    """The partition registry could not be read or written."""


class UnknownRevision(RegistryError):
    """A revision id or partition has no published revision."""


class WarehouseError(AdapterError):
    """The warehouse could not be read or written."""


class TableNotFound(WarehouseError):
    """A table that must exist does not."""


class StorageError(AdapterError):
    """Object storage could not be read or written."""


class ObjectNotFound(StorageError):
    """A storage URI that must exist does not."""


class ObjectExists(StorageError):
    """A create-only write found the object already there."""


class DatabaseError(AdapterError):
    """The PostgreSQL database tasks load tables into could not be read or written."""


class SourceNotAnswering(AdapterError):
    """A source did not answer a lookup within the lookup timeout, or is taken as not
    answering since one did not (sensors/guard.py)."""


class TaskCodeError(CharonError):
    """A task's own ``requires()`` or ``output()`` raised: said in one line, with where
    in the task's code; a daemon evaluates the day again later, as after any error."""


class AuthError(CharonError):
    """A request is not authenticated: missing or wrong token, bad or stale signature."""


class RunError(CharonError):
    """A run could not complete."""


class JobFailed(RunError):
    """The job subprocess (or in-process run) failed."""


class JobLost(RunError):
    """A recorded job can no longer be followed (its process died with its parent)."""


class EmptyInput(RunError):
    """An input a task reads holds no data, and the task does not say empty is valid."""


class OutputInvalid(RunError):
    """A job reported success but its outputs failed validation."""


class RunConflict(RunError):
    """The run cannot be claimed now: another worker holds it, or it waits for a retry."""

    def __init__(self, message: str, *, held_until: datetime | None = None) -> None:
        super().__init__(message)
        self.held_until = held_until
        """When to try again: the other worker's lease runs out, or the retry is due."""


class StaleInputs(RunConflict):
    """The claim was made with inputs older than those another run of the task already
    consumed or holds: they were looked up before a newer revision came (the claimer was
    slow or paused). Look them up again."""


class LeaseLost(RunConflict):
    """This attempt no longer holds its run: its lease ran out, another worker took the
    run over, or it was superseded or cancelled. The attempt must stop, touching nothing
    irreversible."""


class RetriesExhausted(RunError):
    """The run failed as often as its retry policy allows; it stays failed until its
    inputs change or a user runs it again."""


E = TypeVar("E", bound=BaseException)


def leaves(group: BaseExceptionGroup[E]) -> Iterator[E]:
    """The errors of a group, those of the groups nested in it included: what ``except*``
    hands over may hold a task group's group, whose own message names no error."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from leaves(exc)
        else:
            yield exc


@contextlib.contextmanager
def as_one_error() -> Iterator[None]:
    """Requests an adapter sends side by side, in a task group, fail as one would alone:
    its port's callers catch its error, not a group of them (a BigQuery listing whose
    table reads failed ended the daemon's warehouse sensor). A group holding anything
    but charon errors, a bug, comes out whole."""
    try:
        yield
    except BaseExceptionGroup as group:
        if (first := first_charon_error(group)) is None:
            raise
        raise first from first.__cause__  # its own cause, not the group holding it


def first_charon_error(group: BaseExceptionGroup[BaseException]) -> CharonError | None:
    """The first error of a (nested) group that holds charon errors only; None when it
    holds anything else, a bug to show whole."""
    errors, others = group.split(CharonError)
    return None if errors is None or others is not None else next(leaves(errors))


def messages(group: BaseExceptionGroup[Exception]) -> str:
    """Every error of a (nested) group, each as its type and message."""
    return "; ".join(map(named, leaves(group)))


def named(error: BaseException) -> str:
    """The error as its type and its message, the message bounded."""
    return f"{type(error).__name__}: {described(error)}"


MAX_DESCRIBED = 4000
"""Characters of an error's message that are kept: a task's error may carry megabytes
(a rejected row, a whole response), and it is recorded with its run, logged, and shown
on every page of its day."""


def described(error: BaseException) -> str:
    """``str(error)``, cut to MAX_DESCRIBED characters; its type's name alone when its
    message cannot be made (a task's exception class whose ``__str__`` raises)."""
    try:
        text = str(error)
    except Exception:
        return f"{type(error).__name__} (its message could not be made)"
    if len(text) <= MAX_DESCRIBED:
        return text
    return f"{text[:MAX_DESCRIBED]}… [{len(text) - MAX_DESCRIBED:,} more characters]"
