"""Task parameters, declared on the class like Luigi's: ``date = DateParameter()``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

from orchestrator.bounds import INTEGER, Rule, shown
from orchestrator.errors import UsageError
from orchestrator.intervals import (
    FIRST_DAY,
    LAST_DAY,
    DateInterval,
    parse_date,
    parse_interval,
    period_interval,
)

T = TypeVar("T")

_MISSING: Any = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

Overrides = Mapping[str, Mapping[str, object]]
"""Task family → parameter name → value: Luigi's ``--<Family>-<param> VALUE``."""
_NO_OVERRIDES: Overrides = MappingProxyType({})
_OVERRIDES: ContextVar[Overrides] = ContextVar("charon_parameter_overrides",
                                               default=_NO_OVERRIDES)


@contextmanager
def family_overrides(overrides: Overrides) -> Iterator[None]:
    """While inside, a task of a family in ``overrides`` built without one of its
    parameters gets the value given there before the parameter's default, wherever in
    the graph it is built (as Luigi's command-line ``--<Family>-<param>``)."""
    token = _OVERRIDES.set(overrides)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def overrides_for(family: str) -> Mapping[str, object]:
    return _OVERRIDES.get().get(family, {})


class Parameter(Generic[T]):
    """A string parameter; subclasses parse other types.

    ``significant=False`` keeps a parameter out of the task's identity, as in Luigi
    (the golden-path tutorial's ``uri_prefix``).
    """

    runner = False
    """Chooses how the output is computed, not what it is (see BoolParameter)."""
    kind = "string"
    """What ``--help`` says the parameter takes."""

    def __init__(
        self, default: T = _MISSING, *, significant: bool = True, description: str = ""
    ) -> None:
        self.default = default
        self.significant = significant
        self.description = description
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Parameter[T]: ...
    @overload
    def __get__(self, instance: object, owner: type) -> T: ...
    def __get__(self, instance: object | None, owner: type) -> Parameter[T] | T:
        if instance is None:
            return self
        value: T = instance.__dict__["_params"][self.name]
        return value

    @property
    def required(self) -> bool:
        return self.default is _MISSING

    @property
    def flag(self) -> str:
        """The command-line spelling: ``top_n`` → ``--top-n``."""
        return "--" + self.name.replace("_", "-")

    def describe(self) -> str:
        """Its type and default, as ``--help`` lists them."""
        default = ("required" if self.required else "optional" if self.default is None
                   else f"default {self.serialize(self.default)}")
        identity = "" if self.significant else "; not part of the task's identity"
        return f"{self.kind}; {default}{identity}"

    def parse(self, text: str) -> T:
        return text  # type: ignore[return-value]  # the base Parameter is the string one

    def serialize(self, value: T) -> str:
        return str(value)

    def normalize(self, value: object) -> T:
        """Accept a value of the right type, or its command-line spelling."""
        if isinstance(value, str):
            return self.parse(value)
        raise UsageError(f"parameter {self.name!r} expects a string, got {value!r}")


class IntParameter(Parameter[int]):
    """A whole number, within ``minimum`` and ``maximum`` when declared: a count that must
    be positive says so here, and a value out of range is refused before anything runs."""

    def __init__(self, default: int = _MISSING, *, minimum: int | None = None,
                 maximum: int | None = None, **kwargs: Any) -> None:
        super().__init__(default, **kwargs)
        self.bounds = Rule(minimum=minimum, maximum=maximum)
        limits = [f"from {minimum}" if minimum is not None else "",
                  f"to {maximum}" if maximum is not None else ""]
        self.kind = " ".join(["integer", *filter(None, limits)])

    def parse(self, text: str) -> int:
        if not INTEGER.fullmatch(text):
            raise UsageError(f"parameter {self.name!r}: {shown(text)} is not an integer")
        return int(text)

    def normalize(self, value: object) -> int:
        number = (value if isinstance(value, int) and not isinstance(value, bool)
                  else super().normalize(value))
        if (problem := self.bounds.problem(number)) is not None:
            raise UsageError(f"{self.flag} = {shown(number)}: {problem}")
        return number


class BoolParameter(Parameter[bool]):
    """A flag. ``runner=True`` marks a choice of how the output is computed, not of what
    it is (the Luigi example's ``use_spark``): it stays out of charon's identity, so
    either choice finds the other's runs and outputs complete, yet stays in Luigi's task
    id, so CopyToTable markers are the ones Luigi writes."""

    kind = "boolean flag (--flag, or --flag=false)"

    def __init__(self, default: bool = False, *, runner: bool = False, **kwargs: Any) -> None:
        super().__init__(default, **kwargs)
        self.runner = runner

    def parse(self, text: str) -> bool:
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise UsageError(f"parameter {self.name!r}: {text!r} is not a boolean")

    def serialize(self, value: bool) -> str:
        return "true" if value else "false"

    def normalize(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        return super().normalize(value)


class DateParameter(Parameter[date]):
    """A day, ``2012-06-05`` (``2012-6-5`` too, as Luigi's strptime reads it)."""

    kind = "date YYYY-MM-DD"
    unit = "day"
    width = len("2012-06-05")

    def parse(self, text: str) -> date:
        return parse_date(text, self.unit)

    def serialize(self, value: date) -> str:
        return value.isoformat()[:self.width]

    def normalize(self, value: object) -> date:
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, DateInterval):
            value = self._interval_start(value)
        if isinstance(value, date):
            return self.round(value)
        return super().normalize(value)

    def round(self, value: date) -> date:
        """The first day of the unit containing ``value``, as Luigi normalizes it."""
        return value

    def _interval_start(self, interval: DateInterval) -> date:
        """A month for a MonthParameter, as Luigi's takes a date_interval.Month."""
        whole = period_interval(self.unit, interval.start)
        if (whole.start, whole.end) != (interval.start, interval.end):
            raise UsageError(f"parameter {self.name!r} expects a {self.unit},"
                             f" got the interval {interval}")
        return interval.start


class MonthParameter(DateParameter):
    """A month, ``2012-06``; its value is the month's first day (Luigi's MonthParameter)."""

    kind = "month YYYY-MM"
    unit = "month"
    width = len("2012-06")

    def round(self, value: date) -> date:
        return value.replace(day=1)


class YearParameter(DateParameter):
    """A year, ``2012``; its value is the year's first day (Luigi's YearParameter)."""

    kind = "year YYYY"
    unit = "year"
    width = len("2012")

    def round(self, value: date) -> date:
        return value.replace(month=1, day=1)


_UNIX_EPOCH = datetime(1970, 1, 1)


class _TimeParameter(Parameter[datetime]):
    """A time to the hour, minute or second, as Luigi's DateHourParameter and its kin:
    read with ``strptime`` (``2013-7-1T9`` too), kept to every ``interval``-th unit
    counted from ``start``. Not a partition (charon's partitions are days)."""

    formats: tuple[str, ...] = ()
    """Read in this order; the first is the one written."""
    step = timedelta()

    def __init__(self, default: datetime = _MISSING, *, interval: int = 1,
                 start: datetime = _UNIX_EPOCH, significant: bool = True,
                 description: str = "") -> None:
        super().__init__(default, significant=significant, description=description)
        if interval < 1:
            raise UsageError(f"a {type(self).__name__}'s interval must be at least 1,"
                             f" got {interval}")
        self.interval, self.start = interval, start

    def parse(self, text: str) -> datetime:
        if not text.isascii() or any(character.isspace() for character in text):
            raise UsageError(f"invalid time {text!r}: whitespace or non-ASCII characters")
        for time_format in self.formats:
            try:
                value = datetime.strptime(text, time_format)  # naive, as Luigi's are
            except ValueError:
                continue
            if not FIRST_DAY <= value.date() <= LAST_DAY:
                raise UsageError(f"invalid time {text!r}: expected days from {FIRST_DAY}"
                                 f" to {LAST_DAY}")
            return self.round(value)
        raise UsageError(f"invalid time {text!r}: expected {self.kind.split()[-1]}")

    def serialize(self, value: datetime) -> str:
        return value.strftime(self.formats[0])

    def normalize(self, value: object) -> datetime:
        if isinstance(value, datetime):
            return self.round(value)
        if isinstance(value, date):
            return self.round(datetime.combine(value, datetime.min.time()))
        return super().normalize(value)

    def round(self, value: datetime) -> datetime:
        """Down to the last of every ``interval``-th unit from ``start``, as Luigi does."""
        value = value.replace(microsecond=0)
        since = (value - self.start).total_seconds()
        return value - timedelta(seconds=since % (self.step * self.interval).total_seconds())


class DateHourParameter(_TimeParameter):
    """An hour, ``2013-07-10T19``."""

    kind = "hour YYYY-MM-DDTHH"
    formats = ("%Y-%m-%dT%H",)
    step = timedelta(hours=1)


class DateMinuteParameter(_TimeParameter):
    """A minute, ``2013-07-10T1907`` (Luigi's older ``2013-07-10T19H07`` too)."""

    kind = "minute YYYY-MM-DDTHHMM"
    formats = ("%Y-%m-%dT%H%M", "%Y-%m-%dT%HH%M")
    step = timedelta(minutes=1)


class DateSecondParameter(_TimeParameter):
    """A second, ``2013-07-10T190738``."""

    kind = "second YYYY-MM-DDTHHMMSS"
    formats = ("%Y-%m-%dT%H%M%S",)
    step = timedelta(seconds=1)


class DateIntervalParameter(Parameter[DateInterval]):
    """Luigi's spellings of an interval of days (``orchestrator.intervals``)."""

    kind = ("date interval: 2012-06-05, 2012-06, 2012-W05, 2012, or 2012-06-01-2012-07-01"
            " (the end date excluded, as in Luigi)")

    def parse(self, text: str) -> DateInterval:
        return parse_interval(text)

    def normalize(self, value: object) -> DateInterval:
        if isinstance(value, DateInterval):
            return value
        return super().normalize(value)
