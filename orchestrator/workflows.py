"""Workflows the daemon watches, as configured: a task family, a parameter template and a
window of days (:mod:`orchestrator.tasks.roots` builds their tasks)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from orchestrator.bounds import IDENTIFIER, MODULE_PATH, matching, one_of, problems, shown, within
from orchestrator.errors import CharonError, ConfigError
from orchestrator.intervals import PERIODS, parse_day, period_interval
from orchestrator.model import RunRetryPolicy

POLICIES = ("rerun", "ignore")
WINDOWS = ("calendar", "inputs")
"""calendar: every day from ``start`` (or ``lookback_days`` ago) to ``end`` (or today);
inputs: every day one of the root's external registry inputs has a revision for."""
_FIELDS = {
    "name": str, "module": str, "task": str, "params": dict, "partition_param": str,
    "lookback_days": int, "start": str, "end": str, "policy": str, "max_concurrent_runs": int,
    "period": str, "max_attempts": int, "retry_delay_seconds": int, "window": str,
}
# A failed run waits at most a day between tries (orchestrator.model.MAX_RETRY_DELAY).
MAX_RETRY_DELAY_SECONDS = 86_400
MAX_ATTEMPTS = 100
# A hundred years of days: far more than anyone watches (the idle-daemon benchmark
# watches 10,000), and a window that stays inside the dates partitions may have.
MAX_LOOKBACK_DAYS = 36_500
_REQUIRED = ("module", "task")


@dataclass(frozen=True)
class WorkflowSettings:
    name: str
    module: str = field(metadata=matching(
        MODULE_PATH, "a dotted Python module path such as jobs.top_artists", optional=False
    ))
    task: str = field(metadata=matching(IDENTIFIER, "a task class name", optional=False))
    params: tuple[tuple[str, str | int | bool], ...] = ()
    partition_param: str = field(
        default="date", metadata=matching(IDENTIFIER, "a parameter name", optional=False)
    )
    window: str = field(default="calendar", metadata=one_of(*WINDOWS))
    lookback_days: int = field(default=7, metadata=within(0, MAX_LOOKBACK_DAYS))
    start: str = ""
    end: str = ""
    policy: str = field(default="rerun", metadata=one_of(*POLICIES))
    max_concurrent_runs: int = field(default=2, metadata=within(1, 1000))
    period: str = field(default="day", metadata=one_of(*PERIODS))
    """"week", "month" or "year": one root per interval overlapping the window, whose
    task gets the interval (Luigi's spelling) and fires when its last day arrives."""
    max_attempts: int = field(default=3, metadata=within(1, MAX_ATTEMPTS))
    """Failed executions of one run before the daemon stops retrying it."""
    retry_delay_seconds: int = field(default=60, metadata=within(0, MAX_RETRY_DELAY_SECONDS))
    """The wait before the first retry of a failed run; it doubles with each failure."""

    @property
    def retry_policy(self) -> RunRetryPolicy:
        return RunRetryPolicy(self.max_attempts, timedelta(seconds=self.retry_delay_seconds))

    @property
    def rerun_late_inputs(self) -> bool:
        return self.policy == "rerun"

    def days(self, today: date, *, after: date | None = None) -> list[date]:
        """The calendar's days watched today: from ``start`` or the lookback, to ``end`` or
        today; none for ``window = "inputs"``, whose days come from the registry. With
        ``after`` (the day of an earlier look), only the days since."""
        if self.window == "inputs":
            return []
        last = parse_day(self.end) if self.end else today
        first = parse_day(self.start) if self.start else last - timedelta(days=self.lookback_days)
        if after is not None:
            first = max(first, after + timedelta(days=1))
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]

    def partition_day(self, day: date) -> date:
        """The first day of the period containing ``day``: what identifies its root."""
        if self.period == "day":  # no interval to spell and parse for each watched day
            return day
        return period_interval(self.period, day).start

    def admits(self, day: date) -> bool:
        """Whether the root of ``day``'s period lies within ``start`` and ``end`` (if set)."""
        root = self.partition_day(day)
        first = self.partition_day(parse_day(self.start)) if self.start else root
        return first <= root <= (parse_day(self.end) if self.end else root)

    def partition_days(self, today: date, *, after: date | None = None) -> list[date]:
        """The first day of every period overlapping today's window (its days after
        ``after``, if given)."""
        return sorted({self.partition_day(day) for day in self.days(today, after=after)})


def parse_workflows(raw: object, origin: str = "") -> tuple[WorkflowSettings, ...]:
    """The ``[[workflows]]`` tables; ``origin`` (the file they came from) ends each error."""
    try:
        return _parse_all(raw)
    except ConfigError as exc:
        raise ConfigError(f"{exc} ({origin})" if origin else str(exc)) from None


def _parse_all(raw: object) -> tuple[WorkflowSettings, ...]:
    if not isinstance(raw, list):
        raise ConfigError("workflows must be an array of tables ([[workflows]])")
    parsed = tuple(_parse_one(entry, index) for index, entry in enumerate(raw))
    names = [workflow.name for workflow in parsed]
    if duplicates := sorted({name for name in names if names.count(name) > 1}):
        raise ConfigError(f"workflow names must be unique: {', '.join(duplicates)}")
    return parsed


def _parse_one(entry: object, index: int) -> WorkflowSettings:
    where = f"workflows[{index}]"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where} must be a table")
    for key, value in entry.items():
        expected = _FIELDS.get(key)
        if expected is None:
            raise ConfigError(f"{where}: unknown key {shown(key)}")
        if not isinstance(value, expected) or isinstance(value, bool) is not (expected is bool):
            raise ConfigError(f"{where}.{key} = {shown(value)}: expected {expected.__name__}")
    if missing := [key for key in _REQUIRED if key not in entry]:
        raise ConfigError(f"{where}: {', '.join(missing)} required")
    for key, problem in problems(WorkflowSettings, entry):
        raise ConfigError(f"{where}.{key} = {shown(entry[key])}: {problem}")
    if entry.get("window") == "inputs" and "lookback_days" in entry:
        raise ConfigError(f'{where}.lookback_days: window = "inputs" watches every day with'
                          " inputs; bound it with start and end instead")
    values: dict[str, Any] = dict(entry)
    values.setdefault("name", values["task"])
    values["params"] = _params(values.get("params", {}), where)
    workflow = WorkflowSettings(**values)
    _check(workflow, where)
    return workflow


def _params(raw: Mapping[str, object], where: str) -> tuple[tuple[str, str | int | bool], ...]:
    params: list[tuple[str, str | int | bool]] = []
    for key, value in raw.items():
        if not isinstance(value, str | int | bool):
            raise ConfigError(f"{where}.params.{key}: expected a string, number or boolean")
        params.append((key, value))
    return tuple(params)


def _check(workflow: WorkflowSettings, where: str) -> None:
    if workflow.partition_param in dict(workflow.params):
        raise ConfigError(f"{where}.params.{workflow.partition_param}: the partition_param"
                          " takes each day; it has no value of its own")
    for key in ("start", "end"):
        try:
            if getattr(workflow, key):
                parse_day(getattr(workflow, key))
        except CharonError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    if workflow.start and workflow.end and workflow.end < workflow.start:
        raise ConfigError(f"{where}: end {workflow.end} is before start {workflow.start}")
