from datetime import date, datetime
from pathlib import Path

import pytest

from jobs.top_artists import TopArtistsJob
from orchestrator.errors import InvalidIdentifier, TaskNotFound, UsageError
from orchestrator.intervals import parse_interval
from orchestrator.tasks.params import (
    BoolParameter,
    DateIntervalParameter,
    DateParameter,
    IntParameter,
    MonthParameter,
    YearParameter,
    family_overrides,
)
from orchestrator.tasks.task import Task, load_task_class


@pytest.mark.parametrize(
    ("text", "first", "last", "days"),
    [
        ("2012-06-05", date(2012, 6, 5), date(2012, 6, 5), 1),
        ("2012-06", date(2012, 6, 1), date(2012, 6, 30), 30),
        ("2012-12", date(2012, 12, 1), date(2012, 12, 31), 31),
        ("2012-02", date(2012, 2, 1), date(2012, 2, 29), 29),
        ("2012-W05", date(2012, 1, 30), date(2012, 2, 5), 7),
        ("2012", date(2012, 1, 1), date(2012, 12, 31), 366),
        # Luigi's custom interval runs up to, not including, its end date.
        ("2012-06-01-2012-06-30", date(2012, 6, 1), date(2012, 6, 29), 29),
        ("2012-06-05-2012-06-11", date(2012, 6, 5), date(2012, 6, 10), 6),
        ("2012-12-31-2013-01-01", date(2012, 12, 31), date(2012, 12, 31), 1),
        ("2015-W53", date(2015, 12, 28), date(2016, 1, 3), 7),
        # The ISO week of the range's last day: it starts in the range, so it parses.
        ("2201-W01", date(2200, 12, 29), date(2201, 1, 4), 7),
        ("2200-12-31-2201-01-01", date(2200, 12, 31), date(2200, 12, 31), 1),
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
             # no days, the end date being excluded (Luigi takes it and yields none);
             # a week 2012 has not; starting or ending past the range
             "2012-06-05-2012-06-05", "2012-W53", "2201-W02", "2200-12-31-2201-01-02",
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


class Periodic(Task):
    month = MonthParameter()
    year = YearParameter(date(2012, 1, 1))
    day = DateParameter(date(2012, 6, 5))


@pytest.mark.parametrize(
    ("kwargs", "month", "year", "day", "task_id"),
    [
        # Luigi's strptime takes a one-digit month or day; the value is the first day.
        ({"month": "2012-6", "year": "2013", "day": "2012-6-5"},
         date(2012, 6, 1), date(2013, 1, 1), date(2012, 6, 5),
         "Periodic(month=2012-06, year=2013, day=2012-06-05)"),
        # A date in code is rounded to its month or year, as Luigi normalizes it.
        ({"month": date(2012, 6, 17), "year": date(2013, 5, 2), "day": datetime(2012, 6, 5, 7)},
         date(2012, 6, 1), date(2013, 1, 1), date(2012, 6, 5),
         "Periodic(month=2012-06, year=2013, day=2012-06-05)"),
        ({"month": parse_interval("2012-06"), "year": parse_interval("2013")},
         date(2012, 6, 1), date(2013, 1, 1), date(2012, 6, 5),
         "Periodic(month=2012-06, year=2013, day=2012-06-05)"),
    ],
)
def test_month_and_year_parameters_mean_what_luigis_mean(
    kwargs: dict[str, object], month: date, year: date, day: date, task_id: str
) -> None:
    task = Periodic(**kwargs)
    assert (task.month, task.year, task.day, task.task_id) == (month, year, day, task_id)
    assert task.partition_label == "2012-06"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"month": "2012-13"}, "invalid date '2012-13': expected YYYY-MM"),
        ({"month": "2012-06-05"}, "expected YYYY-MM"),
        ({"month": "2012-W05"}, "expected YYYY-MM"),
        ({"month": parse_interval("2012-W05")}, "expects a month, got the interval 2012-W05"),
        ({"month": "2012-06", "year": "12"}, "expected YYYY"),
        ({"month": "2012-06", "year": "1899"}, "expected a day from 1900-01-01"),
        ({"month": "2012-06", "day": "2012-6-31"}, "day is out of range"),
        ({"month": "2012-06", "day": "2012-06- 5"}, "expected YYYY-MM-DD"),
    ],
)
def test_bad_months_and_years_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Periodic(**kwargs)


def test_family_overrides_apply_where_no_value_is_given() -> None:
    with family_overrides({"Example": {"top_n": 5, "date": date(2012, 1, 2)}}):
        assert Example().param_values["top_n"] == 5
        assert Example(top_n=7).top_n == 7  # the constructor's value wins, as in Luigi
        assert Example().date == date(2012, 1, 2)
        assert Bounded(top_n=3).top_n == 3
    assert Example(date="2012-01-02").top_n == 10


class Bounded(Task):
    top_n = IntParameter(minimum=1, maximum=1000)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "^--top-n = -5: must be at least 1$"),
        (0, "^--top-n = 0: must be at least 1$"),
        ("1001", "^--top-n = 1001: must be at most 1000$"),
        (10**50, "^--top-n = <huge>: must be at most 1000$"),
        ("9" * 5000, "is not an integer"),  # too long for int(), refused before it
        ("\uff15", "is not an integer"),  # a full-width 5
        ("1_000", "is not an integer"),
    ],
)
def test_declared_bounds_refuse_values_naming_the_flag(value: object, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Bounded(top_n=value)


def test_values_within_bounds_are_taken() -> None:
    assert (Bounded(top_n="1").top_n, Bounded(top_n=1000).top_n) == (1, 1000)


def test_a_job_count_must_be_positive() -> None:
    with pytest.raises(UsageError, match="--top-n = 0"):
        TopArtistsJob(date="2018-10-31", top_n=0)


@pytest.mark.parametrize("module", ["../etc", "os; rm", "a..b", "/srv/x", "jobs.", ".jobs",
                                    "jobs.top_artists\n", "j\u00f6bs", ""])
def test_module_paths_must_be_dotted_python_names(module: str) -> None:
    with pytest.raises(InvalidIdentifier, match="expected a dotted Python module path"):
        load_task_class(module, "TopArtistsJob")


@pytest.mark.parametrize(
    ("module", "family", "message"),
    [
        ("jobs.top_artists", "TopArtistJob",
         r"^no task 'TopArtistJob' in jobs\.top_artists; did you mean TopArtistsJob\?$"),
        ("jobs.top_artists", "Zzz", r"^no task 'Zzz' in jobs\.top_artists$"),
        ("jobs.top_artist", "TopArtistsJob",
         r"^cannot import module 'jobs\.top_artist': no module 'jobs\.top_artist'; did you"
         r" mean jobs\.top_artists"),
        ("job.top_artists", "TopArtistsJob",
         r"^cannot import module 'job\.top_artists': no module 'job'; did you mean .*\bjobs\b"),
    ],
)
def test_unknown_names_suggest_close_ones(module: str, family: str, message: str) -> None:
    with pytest.raises(TaskNotFound, match=message):
        load_task_class(module, family)


def test_a_module_failing_to_import_is_one_error(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "broken_tasks.py").write_text("raise RuntimeError('no database here')\n")
    (tmp_path / "needy_tasks.py").write_text("import charon_missing_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(TaskNotFound, match=r"broken_tasks.*RuntimeError: no database here"):
        load_task_class("broken_tasks", "Task")
    # The module is there; what it imports is not: no suggestion of siblings.
    with pytest.raises(TaskNotFound, match=r"^cannot import module 'needy_tasks': No module"):
        load_task_class("needy_tasks", "Task")
