"""Every spelling of a day, month, year, interval or time means in charon what it means in Luigi:
one table of cases through real Luigi 3.x (its own venv, one subprocess for the whole
table) and through charon, compared value for value.

The only differences are the ones listed with their case, each a refusal of what Luigi
takes: an interval with no days, a date outside 1900-2200, and a spelling with
whitespace or non-ASCII digits (Luigi's regular expressions and strptime take them).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.luigi_venv import luigi_python
from orchestrator.errors import UsageError
from orchestrator.intervals import FIRST_DAY, LAST_DAY, DateInterval
from orchestrator.tasks.params import (
    DateHourParameter,
    DateIntervalParameter,
    DateMinuteParameter,
    DateParameter,
    DateSecondParameter,
    MonthParameter,
    Parameter,
    YearParameter,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the venv is made on first use

LUIGI_SIDE = Path(__file__).parents[1] / "support" / "luigi_parsing.py"

NO_DAYS = "no days"
RANGE = "out of range"
STRICT = "whitespace or non-ASCII digits"

CASES: list[tuple[str, str, str | None]] = [
    # Years: leap, not leap, the century rules, the range's ends.
    *[("interval", year, None) for year in ("2012", "2011", "2000", "2100", "1900", "2200")],
    # Months: every length of February, the year's last month.
    *[("interval", month, None) for month in (
        "2012-06", "2012-02", "2011-02", "2000-02", "1900-02", "2012-12", "2012-01", "2200-12",
    )],
    # ISO weeks: across a year boundary, week 53 where it exists and where it does not.
    *[("interval", week, None) for week in (
        "2012-W05", "2012-W01", "2008-W01", "2012-W52", "2015-W53", "2020-W53", "2009-W53",
        "2004-W53", "2012-W53", "2012-W00", "2012-W54", "1900-W01", "2201-W01", "2012-W5",
        "2012-w05",
    )],
    # Days, real and not.
    *[("interval", day, None) for day in (
        "2012-06-05", "2012-02-29", "2011-02-29", "2100-02-29", "2000-02-29", "2012-06-31",
        "2012-13-01", "2200-12-31",
    )],
    # Custom intervals: the end date is excluded.
    *[("interval", custom, None) for custom in (
        "2012-06-01-2012-06-30", "2012-06-01-2012-07-01", "2012-06-05-2012-06-11",
        "2012-06-05-2012-06-06", "2012-12-31-2013-01-01", "2012-02-28-2012-03-01",
        "2011-02-28-2011-03-01", "2011-12-25-2012-01-08", "2200-12-31-2201-01-01",
        "2012-06-01-2012-06-31", "2012-06-01-2012-13-01",
    )],
    ("interval", "2012-06-05-2012-06-05", NO_DAYS),
    ("interval", "2012-06-30-2012-06-01", NO_DAYS),
    # What neither takes.
    *[("interval", bad, None) for bad in (
        "2012-13", "2012-00", "2012-6", "12-06", "june", "", "2012-06-05-2012-06",
        "2012-06-05T00", "2012/06", "20120605", "0000", " 2012-06", "2012 ", "2012-W05-1",
    )],
    ("interval", "1899", RANGE),
    ("interval", "9998-12", RANGE),
    ("interval", "1899-12-31", RANGE),
    ("interval", "2012-06-01-2300-01-01", RANGE),
    ("interval", "2012\n", STRICT),
    ("interval", "2012-06-05\n", STRICT),
    ("interval", "\uff12\uff10\uff11\uff12", STRICT),
    ("interval", "\uff12\uff10\uff11\uff12-06", STRICT),
    # DateParameter: strptime's %m and %d take one digit.
    *[("date", day, None) for day in (
        "2012-06-05", "2012-6-5", "2012-06-5", "2012-6-05", "2012-2-29", "2011-2-29",
        "2012-06-31", "2012-13-01", "2012-00-01", "2012-06", "12-06-05", "2012-06-05T10",
        "2012-06-05 ", " 2012-06-05", "2012-06-050", "2200-12-31",
    )],
    ("date", "2012-06- 5", STRICT),
    ("date", "1899-12-31", RANGE),
    # MonthParameter and YearParameter: the value is the first day.
    *[("month", month, None) for month in (
        "2012-06", "2012-6", "2012-12", "2012-13", "2012-00", "2012-06-05", "2012", "2012-W05",
    )],
    ("month", "2201-01", RANGE),
    *[("year", year, None) for year in ("2012", "1900", "2200", "12", "2012-06", "+2012")],
    ("year", "1899", RANGE),
    # Times: strptime's one-digit fields, the hour's and minute's bounds, Luigi's older
    # minute spelling, and clamping to every Nth unit from a start.
    *[("hour", hour, None) for hour in (
        "2013-07-10T19", "2013-7-1T9", "2013-07-10T00", "2013-07-10T24", "2013-07-10",
        "2013-07-10T1907", "2013-07-10 19", "2012-02-29T23", "2011-02-29T23",
    )],
    *[("minute", minute, None) for minute in (
        "2013-07-10T1907", "2013-07-10T19H07", "2013-07-10T197", "2013-07-10T1960",
        "2013-07-10T19", "2013-07-10T19:07",
    )],
    *[("second", second, None) for second in (
        "2013-07-10T190738", "2013-07-10T190760", "2013-07-10T1907",
    )],
    *[("quarter", minute, None) for minute in (
        "2013-07-10T1907", "2013-07-10T1904", "2013-07-10T1905", "2013-07-10T1920",
        "1999-12-31T2359",
    )],
    *[("hour3", hour, None) for hour in ("2013-07-10T19", "2013-07-10T00", "2013-07-10T02")],
    ("hour", "1899-12-31T23", RANGE),
    ("hour", "\uff12\uff10\uff11\uff13-07-10T19", STRICT),
]

PARAMETERS: dict[str, Callable[[], Parameter[Any]]] = {
    "interval": DateIntervalParameter, "date": DateParameter,
    "month": MonthParameter, "year": YearParameter,
    "hour": DateHourParameter, "minute": DateMinuteParameter, "second": DateSecondParameter,
    "quarter": lambda: DateMinuteParameter(interval=15, start=datetime(2000, 1, 1, 0, 5)),
    "hour3": lambda: DateHourParameter(interval=3),
}


def charon_result(kind: str, text: str) -> dict[str, Any]:
    """What charon makes of it, in the shape tests/support/luigi_parsing.py prints."""
    parameter = PARAMETERS[kind]()
    parameter.name = kind
    try:
        value = parameter.normalize(text)
    except UsageError:
        return {"error": "refused"}
    if isinstance(value, DateInterval):
        return {"a": value.date_a.isoformat(), "b": value.date_b.isoformat(),
                "days": [day.isoformat() for day in value], "text": str(value)}
    if isinstance(value, datetime):
        return {"time": value.isoformat(), "text": parameter.serialize(value)}
    assert isinstance(value, date)
    return {"date": value.isoformat()}


@pytest.fixture(scope="module")
def luigi_results() -> list[dict[str, Any]]:
    cases = json.dumps([[kind, text] for kind, text, _ in CASES])
    ran = subprocess.run([luigi_python(), str(LUIGI_SIDE)], input=cases, capture_output=True,
                         text=True, timeout=120, check=True)
    results: list[dict[str, Any]] = json.loads(ran.stdout)
    assert len(results) == len(CASES)
    return results


def in_range(result: dict[str, Any]) -> bool:
    days = result["days"] if "days" in result else [result.get("date") or result["time"][:10]]
    return all(FIRST_DAY.isoformat() <= day <= LAST_DAY.isoformat() for day in days)


def test_every_spelling_means_what_it_means_in_luigi(
    luigi_results: list[dict[str, Any]],
) -> None:
    differences = []
    for (kind, text, deviation), luigi in zip(CASES, luigi_results, strict=True):
        charon = charon_result(kind, text)
        if deviation is None:
            # Luigi's error types vary (ValueError, TypeError); a refusal is a refusal.
            same = ("error" in luigi and "error" in charon) or luigi == charon
            if not same:
                differences.append(f"{kind} {text!r}: luigi {luigi}, charon {charon}")
            continue
        # A listed difference: Luigi takes it, charon refuses it, for the stated reason.
        assert "error" not in luigi, (kind, text, luigi)
        assert "error" in charon, (kind, text, charon)
        reason = {NO_DAYS: luigi.get("days") == [], RANGE: not in_range(luigi),
                  STRICT: not text.isascii() or any(c.isspace() for c in text)}
        assert reason[deviation], (kind, text, deviation, luigi)
    assert not differences, "\n".join(differences)


def test_the_table_covers_both_acceptance_and_refusal(
    luigi_results: list[dict[str, Any]],
) -> None:
    # A table Luigi refused whole (a broken venv, say) would compare nothing.
    taken = [result for result in luigi_results if "error" not in result]
    assert len(taken) > len(CASES) // 2
    assert len(taken) < len(CASES)
