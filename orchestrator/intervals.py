"""Date intervals in Luigi's spellings, meaning what Luigi's DateIntervalParameter means.

``2012-06-05``, ``2012-06``, ``2012-W05``, ``2012`` and ``2012-06-01-2012-07-01`` (a custom
interval, which as in Luigi runs up to, not including, its end date). Luigi's parser is
the reference: tests/integration/test_luigi_interval_parity.py runs both on one table.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from orchestrator.errors import UsageError

# Matched whole (fullmatch) and ASCII digits only: "\d" and "$" would let full-width
# digits and a trailing newline through.
_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_WEEK = re.compile(r"([0-9]{4})-W([0-9]{2})")
_YEAR = re.compile(r"([0-9]{4})")
_CUSTOM = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2})-([0-9]{4}-[0-9]{2}-[0-9]{2})")
# Luigi's DateParameter, MonthParameter and YearParameter read with strptime, whose %m
# and %d take one digit too ("2012-6-5"); the same alternatives, in ASCII digits.
_LOOSE_MONTH = r"([0-9]{4})-(1[0-2]|0[1-9]|[1-9])"
_LOOSE_DATES = {
    "day": (re.compile(_LOOSE_MONTH + r"-(3[01]|[12][0-9]|0[1-9]|[1-9])"), "YYYY-MM-DD"),
    "month": (re.compile(_LOOSE_MONTH), "YYYY-MM"),
    "year": (_YEAR, "YYYY"),
}
# Partitions are days of this range, and intervals start in it: its ends are far from
# date.min and date.max, so the day after a partition, or its week, month or year,
# always exists. The ISO week of 2200-12-31 is 2201-W01, which starts in the range.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2200, 12, 31)
_RANGE = f"expected days from {FIRST_DAY} to {LAST_DAY}"
_FIRST_TEXT, _LAST_TEXT = FIRST_DAY.isoformat(), LAST_DAY.isoformat()


@dataclass(frozen=True)
class DateInterval:
    """Days from ``start`` up to, not including, ``end``; ``text`` is how it was spelled."""

    start: date
    end: date
    text: str

    def __iter__(self) -> Iterator[date]:
        day = self.start
        while day < self.end:
            yield day
            day += timedelta(days=1)

    def __len__(self) -> int:
        return (self.end - self.start).days

    def __str__(self) -> str:
        return self.text

    @property
    def date_a(self) -> date:
        """Luigi's name for the first day."""
        return self.start

    @property
    def date_b(self) -> date:
        """Luigi's name for the end: the day after the last, as in Luigi."""
        return self.end


PERIODS = ("day", "week", "month", "year")


def period_interval(period: str, day: date) -> DateInterval:
    """The interval of ``period`` containing ``day``, spelled the way Luigi spells it."""
    if period == "day":
        return _parse(day.isoformat())
    if period == "week":
        year, week, _ = day.isocalendar()
        return _parse(f"{year:04d}-W{week:02d}")
    if period == "month":
        return _parse(f"{day:%Y-%m}")
    if period == "year":
        return _parse(f"{day:%Y}")
    raise UsageError(f"unknown period {period!r}: expected one of {', '.join(PERIODS)}")


def parse_day(text: str) -> date:
    """A day in its one ISO spelling, as partitions and settings name days."""
    return _date(text, _DAY, "YYYY-MM-DD")


def is_day(text: str) -> bool:
    """Whether ``text`` is a day in its one ISO spelling that ``parse_day`` takes: a
    partition's usual name, checked without building anything (a daemon's sweep checks
    a few for each of 100,000 days)."""
    if not (_DAY.fullmatch(text) and _FIRST_TEXT <= text <= _LAST_TEXT):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False  # a day no month has
    return True


def parse_date(text: str, unit: str = "day") -> date:
    """The first day of the day, month or year ``text`` spells, read as Luigi's
    DateParameter, MonthParameter or YearParameter reads it (``2012-6-5`` too)."""
    pattern, shape = _LOOSE_DATES[unit]
    return _date(text, pattern, shape)


def _date(text: str, pattern: re.Pattern[str], shape: str) -> date:
    match = pattern.fullmatch(text)
    if not match:
        raise UsageError(f"invalid date {text!r}: expected {shape}")
    parts = [int(part) for part in match.groups()]
    parts += [1] * (3 - len(parts))  # a month or a year: its first day
    try:
        value = date(*parts)
    except ValueError as exc:
        raise UsageError(f"invalid date {text!r}: {exc}") from None
    if not FIRST_DAY <= value <= LAST_DAY:
        raise UsageError(f"invalid date {text!r}: expected a day from {FIRST_DAY} to {LAST_DAY}")
    return value


def parse_interval(text: str) -> DateInterval:
    """Parse any of Luigi's interval spellings; raise UsageError otherwise."""
    try:
        return _bounded(_parse(text))
    except (ValueError, OverflowError, UsageError) as exc:
        raise UsageError(f"invalid date interval {text!r}: {exc}") from None


def _bounded(interval: DateInterval) -> DateInterval:
    if not FIRST_DAY <= interval.start <= LAST_DAY:
        raise ValueError(_RANGE)
    return interval


def _parse(text: str) -> DateInterval:
    if _DAY.fullmatch(text):
        day = parse_day(text)
        return DateInterval(day, day + timedelta(days=1), text)
    if match := _MONTH.fullmatch(text):
        year, month = int(match[1]), int(match[2])
        start = date(year, month, 1)
        end = date(year + month // 12, month % 12 + 1, 1)
        return DateInterval(start, end, text)
    if match := _WEEK.fullmatch(text):
        start = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        return DateInterval(start, start + timedelta(days=7), text)
    if match := _YEAR.fullmatch(text):
        year = int(match[1])
        return DateInterval(date(year, 1, 1), date(year + 1, 1, 1), text)
    if match := _CUSTOM.fullmatch(text):
        return _custom(match[1], match[2], text)
    raise ValueError("expected 2012-06-05, 2012-06, 2012-W05, 2012 or 2012-06-01-2012-07-01")


def _custom(first: str, end_text: str, text: str) -> DateInterval:
    """Luigi's Custom interval: from the first date up to, not including, the second."""
    start, end = date.fromisoformat(first), date.fromisoformat(end_text)
    if end > LAST_DAY + timedelta(days=1):
        raise ValueError(_RANGE)
    if end <= start:
        # Luigi takes it and yields no days; a run over nothing is a mistake to name.
        raise ValueError(
            f"it has no days: a custom interval ends before its end date, as in Luigi"
            f" ({first}-{start + timedelta(days=1)} is the one day {first})"
        )
    return DateInterval(start, end, text)
