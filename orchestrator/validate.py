"""Validation of the names users and publishers hand to charon."""

from __future__ import annotations

import re

from orchestrator.errors import InvalidIdentifier

_ENDPOINT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
# A day (2018-10-31), a month (2012-06), an ISO week (2012-W05), a year (2012) or a
# custom range (2012-06-01-2012-06-30): the spellings Luigi uses for partitions.
_PARTITION = re.compile(
    r"^\d{4}(?:-\d{2}(?:-\d{2}(?:-\d{4}-\d{2}-\d{2})?)?|-W\d{2})?$"
)
_URI_SCHEMES = ("gs://", "/")
# ASCII only, spelled out ([0-9], not \d, which takes any script's digits), and always
# used with fullmatch, which unlike `$` refuses a trailing newline.
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")


def endpoint(name: str) -> str:
    if not _ENDPOINT.match(name):
        raise InvalidIdentifier(
            f"invalid endpoint {name!r}: use letters, digits, '.', '_' and '-'"
        )
    return name


def partition(name: str) -> str:
    if not _PARTITION.match(name):
        raise InvalidIdentifier(
            f"invalid partition {name!r}: expected a day (2018-10-31) or an interval"
            " (2012-06, 2012-W05, 2012, 2012-06-01-2012-06-30)"
        )
    return name


def uri(value: str) -> str:
    if not value.startswith(_URI_SCHEMES) or any(c in value for c in "\n\r\0"):
        raise InvalidIdentifier(
            f"invalid URI {value!r}: expected gs://bucket/path or an absolute local path"
        )
    return value


def idempotency_key(key: str) -> str:
    """The key a publisher sends so that a retried publish returns the first revision."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdentifier(
            f"invalid idempotency key {key!r}: 1 to 200 ASCII letters, digits, '.', '_',"
            " ':' and '-', starting with a letter or digit"
        )
    return key


# Lower-case names only, so they never need case-sensitive quoting; "schema.table" allowed.
_PG_IDENTIFIER = r"[a-z_][a-z0-9_]{0,62}"
_PG_NAME = re.compile(rf"^{_PG_IDENTIFIER}(?:\.{_PG_IDENTIFIER})?$")
_PG_SCHEMA = re.compile(rf"^{_PG_IDENTIFIER}$")


def pg_table(name: str) -> str:
    """A PostgreSQL table name as charon accepts it: ``table`` or ``schema.table``."""
    if not _PG_NAME.match(name):
        raise InvalidIdentifier(
            f"invalid PostgreSQL table {name!r}: lower-case letters, digits and '_',"
            " optionally schema.table"
        )
    return name


def pg_schema(name: str) -> str:
    """A PostgreSQL schema name: lower-case letters, digits and '_', never quoted."""
    if not _PG_SCHEMA.match(name):
        raise InvalidIdentifier(
            f"invalid PostgreSQL schema {name!r}: lower-case letters, digits and '_'"
        )
    return name
