"""Luigi's side of tests/integration/test_luigi_interval_parity.py, run by the Luigi venv's
Python: reads ``[[kind, text], ...]`` as JSON on stdin and prints what Luigi's own
parameters make of each, in order, as one JSON list.

A result is ``{"error": "<exception type>"}`` or what the value is: an interval's
``date_a``, ``date_b``, days and spelling (``str``); a date's ISO day.
"""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import Any

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only

PARAMETERS = {
    "interval": luigi.DateIntervalParameter,
    "date": luigi.DateParameter,
    "month": luigi.MonthParameter,
    "year": luigi.YearParameter,
}


def result(kind: str, text: str) -> dict[str, Any]:
    parameter = PARAMETERS[kind]()
    try:
        # As a task's constructor does with a command-line value.
        value = parameter.normalize(parameter.parse(text))
    except Exception as exc:  # any refusal is a result to compare
        return {"error": type(exc).__name__}
    if isinstance(value, date):
        return {"date": value.isoformat()}
    return {"a": value.date_a.isoformat(), "b": value.date_b.isoformat(),
            "days": [day.isoformat() for day in value.dates()], "text": str(value)}


def main() -> None:
    cases = json.load(sys.stdin)
    print(json.dumps([result(kind, text) for kind, text in cases]))


if __name__ == "__main__":
    main()
