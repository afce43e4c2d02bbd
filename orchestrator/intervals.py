"""Date intervals in Luigi's spellings.

``2012-06-05``, ``2012-06``, ``2012-W05``, ``2012`` and ``2012-06-01-2012-06-30``.
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
# Partitions are days of this range: its ends are far from date.min and date.max, so
# the day after a partition, or its week, month or year, always exists.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2200, 12, 31)


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
    match = _DAY.fullmatch(text)
    if not match:
        raise UsageError(f"invalid date {text!r}: expected YYYY-MM-DD")
    try:
        day = date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError as exc:
        raise UsageError(f"invalid date {text!r}: {exc}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise UsageError(f"invalid date {text!r}: expected a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def parse_interval(text: str) -> DateInterval:
    """Parse any of Luigi's interval spellings; raise UsageError otherwise."""
    try:
        return _bounded(_parse(text))
    except (ValueError, OverflowError, UsageError) as exc:
        raise UsageError(f"invalid date interval {text!r}: {exc}") from None


def _bounded(interval: DateInterval) -> DateInterval:
    if interval.start < FIRST_DAY or interval.end > LAST_DAY + timedelta(days=1):
        raise ValueError(f"expected days from {FIRST_DAY} to {LAST_DAY}")
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
        start, last = parse_day(match[1]), parse_day(match[2])
        if last < start:
            raise ValueError("the interval ends before it starts")
        # Luigi's custom intervals include their last day.
        return DateInterval(start, last + timedelta(days=1), text)
    raise ValueError("expected 2012-06-05, 2012-06, 2012-W05, 2012 or 2012-06-01-2012-06-30")
