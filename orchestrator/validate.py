"""Validation of the names users and publishers hand to charon.

Every pattern is ASCII only, spelled out ([0-9], not \\d, which takes any script's
digits), and used with fullmatch, which unlike ``^...$`` refuses a trailing newline.
Every name has a bounded length.
"""

from __future__ import annotations

import re

from orchestrator.bounds import shown
from orchestrator.errors import InvalidIdentifier, UsageError
from orchestrator.intervals import FIRST_DAY, LAST_DAY, is_day, parse_interval

MAX_ENDPOINT_LENGTH = 255
MAX_PARTITION_LENGTH = len("2012-06-01-2012-06-30")
MAX_URI_LENGTH = 2048
# Lineage holds revision ids and other inputs' versions, such as a storage object's
# ``uri@updated#size``: room for a whole URI and its version.
MAX_LINEAGE_ID_LENGTH = MAX_URI_LENGTH + 128

_ENDPOINT = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_ENDPOINT_LENGTH - 1}}}")
# GCS bucket names: 3 to 63 lower-case letters, digits, '-', '_' and '.', starting and
# ending with a letter or digit (dotted names may be longer; charon needs none).
_GCS_URI = re.compile(r"gs://[a-z0-9](?:[a-z0-9._-]{1,61})[a-z0-9](?:/.*)?", re.DOTALL)
# No control characters (C0, DEL, C1) and no lone surrogates, which no database stores.
_TEXT = "[^\x00-\x1f\x7f-\x9f\ud800-\udfff]"
_PRINTABLE = re.compile(f"{_TEXT}*")
_LINEAGE_ID = re.compile(rf"(?:(?!\s){_TEXT}){{1,{MAX_LINEAGE_ID_LENGTH}}}")
_IDEMPOTENCY_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
# Revisions get UUIDs; a lookup takes any such token, so a stranger id is "not found".
_REVISION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def endpoint(name: str) -> str:
    if not _ENDPOINT.fullmatch(name):
        raise InvalidIdentifier(
            f"invalid endpoint {shown(name)}: 1 to {MAX_ENDPOINT_LENGTH} ASCII letters,"
            " digits, '.', '_' and '-', starting with a letter or digit"
        )
    return name


def partition(name: str) -> str:
    """A day (2018-10-31), a month (2012-06), an ISO week (2012-W05), a year (2012) or
    a custom range (2012-06-01-2012-06-30): Luigi's spellings, of real dates."""
    if not is_day(name) and (problem := _interval_problem(name)) is not None:
        raise InvalidIdentifier(
            f"invalid partition {shown(name)}: expected a day (2018-10-31) or an interval"
            f" (2012-06, 2012-W05, 2012, 2012-06-01-2012-06-30) of real dates from"
            f" {FIRST_DAY} to {LAST_DAY} ({problem})"
        )
    return name


def _interval_problem(name: str) -> str | None:
    if len(name) > MAX_PARTITION_LENGTH:
        return f"longer than {MAX_PARTITION_LENGTH} characters"
    try:
        parse_interval(name)
    except UsageError as exc:
        return str(exc)
    return None


def uri(value: str) -> str:
    """``gs://bucket/path`` or an absolute local path, without control characters."""
    if not (len(value) <= MAX_URI_LENGTH and _PRINTABLE.fullmatch(value)
            and (_GCS_URI.fullmatch(value) or value.startswith("/"))):
        raise InvalidIdentifier(
            f"invalid URI {shown(value)}: expected gs://bucket/path (a valid bucket name)"
            f" or an absolute local path, at most {MAX_URI_LENGTH} characters, without"
            " control characters"
        )
    return value


def lineage_id(value: str) -> str:
    """A revision id, or another input's version, as lineage holds it: one token."""
    if not isinstance(value, str) or not _LINEAGE_ID.fullmatch(value):
        raise InvalidIdentifier(
            f"invalid lineage id {shown(value)}: expected 1 to {MAX_LINEAGE_ID_LENGTH}"
            " characters without whitespace or control characters"
        )
    return value


def revision_id(value: str) -> str:
    """An id to look a revision up by: its UUID, or another token that names none."""
    if not _REVISION_ID.fullmatch(value):
        raise InvalidIdentifier(
            f"invalid revision id {shown(value)}: 1 to 128 ASCII letters, digits, '.', '_',"
            " ':' and '-', starting with a letter or digit"
        )
    return value


def idempotency_key(key: str) -> str:
    """The key a publisher sends so that a retried publish returns the first revision."""
    if not isinstance(key, str) or not _IDEMPOTENCY_KEY.fullmatch(key):
        raise InvalidIdentifier(
            f"invalid idempotency key {shown(key)}: 1 to 200 ASCII letters, digits, '.',"
            " '_', ':' and '-', starting with a letter or digit"
        )
    return key


# Lower-case names only, so they never need case-sensitive quoting; "schema.table" allowed.
_PG_IDENTIFIER = r"[a-z_][a-z0-9_]{0,62}"
_PG_NAME = re.compile(rf"{_PG_IDENTIFIER}(?:\.{_PG_IDENTIFIER})?")
_PG_SCHEMA = re.compile(_PG_IDENTIFIER)


def pg_table(name: str) -> str:
    """A PostgreSQL table name as charon accepts it: ``table`` or ``schema.table``."""
    if not _PG_NAME.fullmatch(name):
        raise InvalidIdentifier(
            f"invalid PostgreSQL table {name!r}: lower-case letters, digits and '_',"
            " optionally schema.table"
        )
    return name


def pg_schema(name: str) -> str:
    """A PostgreSQL schema name: lower-case letters, digits and '_', never quoted."""
    if not _PG_SCHEMA.fullmatch(name):
        raise InvalidIdentifier(
            f"invalid PostgreSQL schema {name!r}: lower-case letters, digits and '_'"
        )
    return name


MAX_WHOLE_NUMBER = 2**63 - 1
"""The largest number a request may spell: what a 64-bit column or file offset holds."""


def whole_number(text: str, maximum: int = MAX_WHOLE_NUMBER) -> int | None:
    """``text`` as a whole number from 0 to ``maximum``, in ASCII digits; None otherwise.
    Its length is checked before it is read: Python refuses to read more than 4,300
    digits, with an error no caller expects."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(maximum))):
        return None
    number = int(text)
    return number if number <= maximum else None
