"""Task parameters, declared on the class like Luigi's: ``date = DateParameter()``."""

from __future__ import annotations

from datetime import date
from typing import Any, Generic, TypeVar, overload

from orchestrator.bounds import INTEGER, Rule, shown
from orchestrator.errors import UsageError
from orchestrator.intervals import DateInterval, parse_day, parse_interval

T = TypeVar("T")

_MISSING: Any = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class Parameter(Generic[T]):
    """A string parameter; subclasses parse other types.

    ``significant=False`` keeps a parameter out of the task's identity, as in Luigi
    (the golden-path tutorial's ``uri_prefix``).
    """

    runner = False
    """Chooses how the output is computed, not what it is (see BoolParameter)."""

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
    def parse(self, text: str) -> date:
        return parse_day(text)

    def serialize(self, value: date) -> str:
        return value.isoformat()

    def normalize(self, value: object) -> date:
        if isinstance(value, date):
            return value
        return super().normalize(value)


class DateIntervalParameter(Parameter[DateInterval]):
    def parse(self, text: str) -> DateInterval:
        return parse_interval(text)

    def normalize(self, value: object) -> DateInterval:
        if isinstance(value, DateInterval):
            return value
        return super().normalize(value)
