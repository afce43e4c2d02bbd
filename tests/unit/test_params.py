from datetime import date

import pytest

from orchestrator.errors import UsageError
from orchestrator.intervals import parse_interval
from orchestrator.tasks.params import (
    BoolParameter,
    DateIntervalParameter,
    DateParameter,
    IntParameter,
)
from orchestrator.tasks.task import Task


@pytest.mark.parametrize(
    ("text", "first", "last", "days"),
    [
        ("2012-06-05", date(2012, 6, 5), date(2012, 6, 5), 1),
        ("2012-06", date(2012, 6, 1), date(2012, 6, 30), 30),
        ("2012-12", date(2012, 12, 1), date(2012, 12, 31), 31),
        ("2012-02", date(2012, 2, 1), date(2012, 2, 29), 29),
        ("2012-W05", date(2012, 1, 30), date(2012, 2, 5), 7),
        ("2012", date(2012, 1, 1), date(2012, 12, 31), 366),
        ("2012-06-01-2012-06-30", date(2012, 6, 1), date(2012, 6, 30), 30),
    ],
)
def test_luigi_interval_spellings_resolve_to_their_days(
    text: str, first: date, last: date, days: int
) -> None:
    interval = parse_interval(text)
    listed = list(interval)
    assert (listed[0], listed[-1], len(listed), len(interval)) == (first, last, days, days)
    assert str(interval) == text


@pytest.mark.parametrize(
    "text", ["2012-13", "2012-W54", "12-06", "2012-06-31", "2012-06-30-2012-06-01", "june",
             # beyond the partition range (once an OverflowError), a trailing newline,
             # spaces, full-width digits
             "9999-12-31", "9999-W52", "9999", "1899-12", "2012-06\n", " 2012-06",
             "\uff12\uff10\uff11\uff12-06"]
)
def test_bad_intervals_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="invalid date interval"):
        parse_interval(text)


class Example(Task):
    date = DateParameter()
    top_n = IntParameter(10)
    verbose = BoolParameter(significant=False)
    interval = DateIntervalParameter(parse_interval("2012-06"))


def test_parameters_accept_values_and_command_line_spellings() -> None:
    from_text = Example(date="2018-10-31", top_n="100", verbose="true")
    from_values = Example(date=date(2018, 10, 31), top_n=100, verbose=True)
    assert from_text.task_id == from_values.task_id
    assert from_text.top_n == 100
    assert from_text.verbose is True


def test_identity_is_family_and_significant_parameters() -> None:
    task = Example(date="2018-10-31", verbose=True)
    assert task.task_id == "Example(date=2018-10-31, top_n=10, interval=2012-06)"
    assert task == Example(date="2018-10-31", verbose=False)
    assert task != Example(date="2018-11-01")
    assert task.partition_label == "2018-10-31"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "needs parameter 'date'"),
        ({"date": "2018-02-30"}, "invalid date"),
        ({"date": "2018-10-31", "top_n": "ten"}, "not an integer"),
        ({"date": "2018-10-31", "colour": "red"}, "has no parameter colour"),
        ({"date": "2018-10-31", "verbose": "maybe"}, "not a boolean"),
    ],
)
def test_bad_parameters_get_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Example(**kwargs)
