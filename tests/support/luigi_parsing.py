"""Luigi's side of tests/integration/test_luigi_interval_parity.py, run by the Luigi venv's
Python: reads ``[[kind, text], ...]`` as JSON on stdin and prints what Luigi's own
parameters make of each, in order, as one JSON list.

A result is ``{"error": "<exception type>"}`` or what the value is: an interval's
``date_a``, ``date_b``, days and spelling (``str``); a date's ISO day; a time's ISO time
and spelling (``serialize``).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime
from typing import Any

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only

PARAMETERS = {
    "interval": luigi.DateIntervalParameter,
    "date": luigi.DateParameter,
    "month": luigi.MonthParameter,
    "year": luigi.YearParameter,
    "hour": luigi.DateHourParameter,
    "minute": luigi.DateMinuteParameter,
    "second": luigi.DateSecondParameter,
    # Kept to every 15th minute counted from a start of Luigi's own.
    "quarter": lambda: luigi.DateMinuteParameter(interval=15, start=datetime(2000, 1, 1, 0, 5)),
    "hour3": lambda: luigi.DateHourParameter(interval=3),
}


def result(kind: str, text: str) -> dict[str, Any]:
    parameter = PARAMETERS[kind]()
    try:
        # As a task's constructor does with a command-line value.
        value = parameter.normalize(parameter.parse(text))
    except Exception as exc:  # any refusal is a result to compare
        return {"error": type(exc).__name__}
    if isinstance(value, datetime):
        return {"time": value.isoformat(), "text": parameter.serialize(value)}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return {"a": value.date_a.isoformat(), "b": value.date_b.isoformat(),
            "days": [day.isoformat() for day in value.dates()], "text": str(value)}


def main() -> None:
    cases = json.load(sys.stdin)
    print(json.dumps([result(kind, text) for kind, text in cases]))


if __name__ == "__main__":
    main()
