"""Properties of the date parsers and the task parameters built on them: every Luigi
spelling of a day or interval parses back to what was spelled, and any other text is a
UsageError, never another exception."""

from __future__ import annotations

import contextlib
from datetime import date, timedelta
from typing import Any, TypeVar

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.hostile_corpus import HOSTILE_TEXTS
from orchestrator.errors import UsageError
from orchestrator.intervals import (
    FIRST_DAY,
    LAST_DAY,
    PERIODS,
    DateInterval,
    is_day,
    parse_day,
    parse_interval,
    period_interval,
)
from orchestrator.tasks.params import (
    BoolParameter,
    DateIntervalParameter,
    DateParameter,
    IntParameter,
    MonthParameter,
    Parameter,
    YearParameter,
)

BOUNDED = settings(max_examples=200, deadline=None, database=None)
days = st.dates(min_value=FIRST_DAY, max_value=LAST_DAY)
# Near misses matter more than random text: the shapes of real spellings, in any
# script's digits, with any number of them, with a character more.
near_misses = st.from_regex(
    r"\A\d{1,6}(-W?\d{1,3}(-\d{1,3}(-\d{1,6}-\d{1,3}-\d{1,3})?)?)?\s?\Z"
)
texts = st.text() | st.sampled_from(HOSTILE_TEXTS) | near_misses | st.integers().map(str)


@BOUNDED
@given(days)
def test_a_day_parses_back_to_itself(day: date) -> None:
    assert parse_day(day.isoformat()) == day
    interval = parse_interval(day.isoformat())
    assert (interval.start, interval.end, str(interval)) == (
        day, day + timedelta(days=1), day.isoformat()
    )


@BOUNDED
@given(st.sampled_from(PERIODS), days)
def test_the_period_of_a_day_is_spelled_so_that_it_parses_back(period: str, day: date) -> None:
    interval = period_interval(period, day)
    assert interval.start <= day < interval.end
    assert parse_interval(str(interval)) == interval


@BOUNDED
@given(st.integers(1900, 2200), st.integers(1, 12))
def test_a_month_is_its_days(year: int, month: int) -> None:
    interval = parse_interval(f"{year:04d}-{month:02d}")
    days_in = list(interval)
    assert days_in[0] == date(year, month, 1)
    assert {d.month for d in days_in} == {month}
    assert (days_in[-1] + timedelta(days=1)).month != month


@BOUNDED
@given(st.integers(1900, 2200))
def test_a_year_is_its_days(year: int) -> None:
    interval = parse_interval(f"{year:04d}")
    assert (interval.start, interval.end) == (date(year, 1, 1), date(year + 1, 1, 1))


@BOUNDED
@given(st.integers(1900, 2199), st.integers(1, 52))
def test_an_iso_week_is_seven_days_from_its_monday(year: int, week: int) -> None:
    interval = parse_interval(f"{year:04d}-W{week:02d}")
    assert len(interval) == 7
    assert interval.start.isocalendar()[:3] == (year, week, 1)


@BOUNDED
@given(days, days)
def test_a_custom_range_excludes_its_end_date(first: date, other: date) -> None:
    start, end = min(first, other), max(first, other) + timedelta(days=1)
    text = f"{start.isoformat()}-{end.isoformat()}"
    interval = parse_interval(text)
    assert (interval.start, interval.end, str(interval)) == (start, end, text)
    assert list(interval)[-1] == end - timedelta(days=1)


@BOUNDED
@given(texts)
def test_any_text_is_a_day_or_a_usage_error(text: str) -> None:
    try:
        day = parse_day(text)
    except UsageError:
        return
    assert FIRST_DAY <= day <= LAST_DAY
    assert text == day.isoformat()  # only the one spelling: ASCII, no newline, no sign


@BOUNDED
@given(texts | st.from_regex(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\Z"))
def test_is_day_answers_as_parse_day(text: str) -> None:
    """The quick check partitions get first says yes exactly when parse_day takes it."""
    try:
        parse_day(text)
    except UsageError:
        assert not is_day(text)
    else:
        assert is_day(text)


@BOUNDED
@given(texts)
def test_any_text_is_an_interval_or_a_usage_error(text: str) -> None:
    try:
        interval = parse_interval(text)
    except UsageError:
        return
    assert text.isascii()
    assert text == text.strip()
    # An interval starts in the range; the week of its last day may end past it.
    assert FIRST_DAY <= interval.start < interval.end <= LAST_DAY + timedelta(days=7)


P = TypeVar("P", bound=Parameter[Any])


def _named(parameter: P) -> P:
    parameter.name = "p"
    return parameter


@BOUNDED
@given(st.integers(-(10**30) + 1, 10**30 - 1))  # up to 30 digits, as users may write
def test_an_integer_parameter_round_trips(value: int) -> None:
    parameter = _named(IntParameter())
    assert parameter.parse(parameter.serialize(value)) == value


@BOUNDED
@given(st.booleans())
def test_a_boolean_parameter_round_trips(value: bool) -> None:
    parameter = _named(BoolParameter())
    assert parameter.parse(parameter.serialize(value)) is value


@BOUNDED
@given(days)
def test_a_date_parameter_round_trips(value: date) -> None:
    parameter = _named(DateParameter())
    assert parameter.parse(parameter.serialize(value)) == value


@BOUNDED
@given(st.sampled_from(PERIODS), days)
def test_an_interval_parameter_round_trips(period: str, day: date) -> None:
    parameter = _named(DateIntervalParameter())
    value = period_interval(period, day)
    parsed = parameter.parse(parameter.serialize(value))
    assert isinstance(parsed, DateInterval)
    assert parsed == value


@BOUNDED
@given(st.text())
def test_a_string_parameter_round_trips(value: str) -> None:
    parameter = _named(Parameter[str]())
    assert parameter.parse(parameter.serialize(value)) == value


PARAMETERS = st.sampled_from(
    [IntParameter, BoolParameter, DateParameter, MonthParameter, YearParameter,
     DateIntervalParameter]
)


@BOUNDED
@given(PARAMETERS, texts)
def test_any_text_is_a_parameter_value_or_a_usage_error(
    kind: type[Parameter[object]], text: str
) -> None:
    parameter = _named(kind())
    try:
        value = parameter.parse(text)
    except UsageError:
        return
    # What was accepted has a spelling that parses back to it.
    assert parameter.parse(parameter.serialize(value)) == value


@BOUNDED
@given(PARAMETERS, st.none() | st.floats() | st.binary() | st.lists(st.integers())
       | st.dictionaries(st.text(), st.integers()) | texts)
def test_any_value_is_normalized_or_a_usage_error(
    kind: type[Parameter[object]], value: object
) -> None:
    with contextlib.suppress(UsageError):
        _named(kind()).normalize(value)
