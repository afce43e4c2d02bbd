"""Properties of the name validators (orchestrator/validate.py) and of table specs: any
text is accepted or refused with InvalidIdentifier, never another exception; what is
accepted is what the documentation promises (ASCII where it says so, no control
character, no trailing newline, within its length); and valid names are accepted."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.hostile_corpus import FULL_WIDTH_DAY, HOSTILE_TEXTS, LONE_SURROGATE
from orchestrator import validate
from orchestrator.errors import InvalidIdentifier
from orchestrator.intervals import PERIODS, parse_interval, period_interval
from orchestrator.tablespec import TableSpec

BOUNDED = settings(max_examples=200, deadline=None, database=None)
texts = st.text() | st.sampled_from(HOSTILE_TEXTS)


def _accepted(check: Callable[[str], str], text: str) -> bool:
    try:
        assert check(text) == text
    except InvalidIdentifier:
        return False
    return True


def _plain(text: str) -> bool:
    """No control character (newlines, NUL, DEL...) and no lone surrogate."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


# The documented longest spelling of each kind of name.
NAMES: list[tuple[Callable[[str], str], int]] = [
    (validate.endpoint, 255),
    (validate.partition, len("2012-06-01-2012-06-30")),
    (validate.idempotency_key, 200),
    (validate.pg_schema, 63),
    (validate.pg_table, 63 * 2 + 1),
]


@pytest.mark.parametrize(("check", "longest"), NAMES)
@BOUNDED
@given(text=texts | st.from_regex(r"\A[A-Za-z0-9_][\w.:-]{0,300}\s?\Z"))
@example(text="a\n")
@example(text="2018\n")
def test_a_name_is_accepted_only_as_plain_ascii_within_its_length(
    check: Callable[[str], str], longest: int, text: str
) -> None:
    if _accepted(check, text):
        assert text.isascii()
        assert _plain(text)
        assert 1 <= len(text) <= longest


@BOUNDED
@given(texts | st.from_regex(r"\A\d{4}(-W?\d{2}(-\d{2}(-\d{4}-\d{2}-\d{2})?)?)?\s?\Z"))
@example("9999-12-31")
@example("2018-13-45")
@example(FULL_WIDTH_DAY)
def test_an_accepted_partition_is_an_interval_charon_can_run(text: str) -> None:
    if _accepted(validate.partition, text):
        parse_interval(text)


@BOUNDED
@given(texts | st.from_regex(r"\A(gs://|/)[^/]{0,10}(/.{0,20})?\Z"))
@example("gs://")
@example("/data/\x1b[2J")
@example("/data/" + LONE_SURROGATE)
def test_an_accepted_uri_is_a_bucket_path_or_an_absolute_path(text: str) -> None:
    if _accepted(validate.uri, text):
        assert _plain(text)
        text.encode()  # stored and sent as UTF-8
        if text.startswith("gs://"):
            bucket = text[len("gs://"):].split("/", 1)[0]
            assert bucket, "a gs:// URI names its bucket"
        else:
            assert text.startswith("/")


@BOUNDED
@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,254}\Z"))
def test_valid_endpoints_are_accepted(name: str) -> None:
    assert validate.endpoint(name) == name


@BOUNDED
@given(st.sampled_from(PERIODS), st.dates(min_value=date(1900, 1, 1),
                                          max_value=date(2200, 12, 28)))
def test_luigi_spellings_are_partitions(period: str, day: date) -> None:
    name = str(period_interval(period, day))
    assert validate.partition(name) == name


@BOUNDED
@given(st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,199}\Z"))
def test_valid_idempotency_keys_are_accepted(key: str) -> None:
    assert validate.idempotency_key(key) == key


PG_NAME = r"[a-z_][a-z0-9_]{0,62}"


@BOUNDED
@given(st.from_regex(rf"\A{PG_NAME}\Z"), st.from_regex(rf"\A{PG_NAME}\Z"))
def test_valid_postgresql_names_are_accepted(schema: str, table: str) -> None:
    assert validate.pg_schema(schema) == schema
    assert validate.pg_table(table) == table
    assert validate.pg_table(f"{schema}.{table}") == f"{schema}.{table}"


@BOUNDED
@given(st.from_regex(r"\A(/|gs://[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]/)[A-Za-z0-9._/-]{0,200}\Z"))
def test_valid_uris_are_accepted(uri: str) -> None:
    assert validate.uri(uri) == uri


PROJECTS = st.from_regex(r"\A[a-z][a-z0-9-]{4,28}[a-z0-9]\Z")
TABLE_IDS = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_]{0,100}\Z")


@BOUNDED
@given(PROJECTS, TABLE_IDS, TABLE_IDS)
def test_a_table_spec_round_trips(project: str, dataset: str, table: str) -> None:
    spec = TableSpec(project, dataset, table)
    assert TableSpec.parse(str(spec)) == spec


@BOUNDED
@given(texts | st.builds("{}:{}.{}{}".format, PROJECTS, TABLE_IDS, TABLE_IDS,
                         st.sampled_from(["", "\n", " ", "\x00", "\uff11"])))
@example("my-project:dataset.table\n")
def test_any_text_is_a_table_spec_or_invalid(text: str) -> None:
    try:
        spec = TableSpec.parse(text)
    except InvalidIdentifier:
        return
    assert text.isascii()
    assert _plain(text)
    assert str(spec) == text
