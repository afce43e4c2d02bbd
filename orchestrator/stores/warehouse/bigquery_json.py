"""BigQuery's REST JSON forms, for the BigQuery warehouse: cells as typed values, table
references, standard-SQL names, and the copy job id a move key determines."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from orchestrator.tablespec import TableSpec

_JOB_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
Row = dict[str, object]


def move_job_id(job_key: str) -> str:
    """A copy job id that only ``job_key`` determines, within BigQuery's job-id rules.

    Job ids allow letters, digits, ``_`` and ``-`` up to 1024 characters; the key is
    cut to a readable prefix and always followed by its hash, so two keys that
    sanitise alike (``a:b``, ``a_b``) still get different jobs.
    """
    readable = _JOB_ID_UNSAFE.sub("_", job_key)[:100]
    digest = hashlib.sha256(job_key.encode()).hexdigest()[:24]
    return f"charon_move_{readable}_{digest}"


_CELL_TYPES: dict[str, Callable[[str], object]] = {
    "INT64": int, "INTEGER": int, "FLOAT64": float, "FLOAT": float,
    "BOOL": lambda text: text.lower() == "true", "BOOLEAN": lambda text: text.lower() == "true",
    "DATE": date.fromisoformat, "TIMESTAMP": lambda text: datetime.fromtimestamp(float(text), UTC),
    "NUMERIC": Decimal, "BIGNUMERIC": Decimal,
}


def typed_value(value: object, kind: str) -> object:
    """A tabledata.list cell (a string) as the Python value of its column type."""
    if not isinstance(value, str):
        return value  # NULL, or a nested cell charon's tables never have
    return _CELL_TYPES.get(kind.upper(), str)(value)


def millis(value: object) -> datetime:
    return datetime.fromtimestamp(int(str(value)) / 1000, UTC)


def json_value(value: object) -> object:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def table_reference(spec: TableSpec) -> dict[str, str]:
    return {"projectId": spec.project, "datasetId": spec.dataset, "tableId": spec.table}


def standard_sql_name(spec: TableSpec) -> str:
    """Standard SQL's ```project.dataset.table```; safe: TableSpec validated every part."""
    return f"`{spec.project}.{spec.dataset}.{spec.table}`"


def typed_rows(rows: list[dict[str, Any]], fields: list[dict[str, Any]]) -> list[Row]:
    return [
        {
            field["name"]: typed_value(cell.get("v"), field.get("type", "STRING"))
            for field, cell in zip(fields, row.get("f", []), strict=True)
        }
        for row in rows
    ]


def reference_text(reference: object) -> str:
    if not isinstance(reference, dict):
        return "another table"
    return f"{reference.get('projectId')}:{reference.get('datasetId')}.{reference.get('tableId')}"
