"""The names charon takes: PostgreSQL names it puts into SQL itself (lower-case, never
quoted, never input), and what publishers hand it (endpoints, partitions, URIs, lineage)."""

from __future__ import annotations

import pytest

from orchestrator import validate
from orchestrator.errors import InvalidIdentifier
from orchestrator.validate import pg_schema, pg_table


@pytest.mark.parametrize("name", ["top10", "_private", "charon_state", "a" * 63])
def test_plain_lower_case_names_are_schemas(name: str) -> None:
    assert pg_schema(name) == name


@pytest.mark.parametrize(
    "name", ["", "Top10", "1st", "charon.state", "a" * 64, "x; DROP TABLE runs", 'a"b'],
)
def test_anything_else_is_not_a_schema(name: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid PostgreSQL schema"):
        pg_schema(name)


@pytest.mark.parametrize("name", ["top10", "toplists.top10"])
def test_tables_may_name_their_schema(name: str) -> None:
    assert pg_table(name) == name


@pytest.mark.parametrize("name", ["a.b.c", ".top10", "toplists.", "Top10", "top10 x"])
def test_malformed_tables_are_refused(name: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid PostgreSQL table"):
        pg_table(name)


@pytest.mark.parametrize(
    "name",
    ["2018-10-31", "2012-06", "2012-W05", "2015-W53", "2012", "2012-06-01-2012-06-30",
     "2016-02-29", "1900-01-01", "2200-12-31"],
)
def test_partitions_are_real_dates_in_luigi_spellings(name: str) -> None:
    assert validate.partition(name) == name


@pytest.mark.parametrize(
    "name",
    ["2018-99-99", "2018-02-30", "2017-02-29", "2018-13", "2018-00", "2018-W54", "2018-W53",
     "2018-W00", "1899-12-31", "2201-01-01", "9999-12-31", "0000", "2012-06-30-2012-06-01",
     "2012-06-01-2012-06-31", "2018-10-31\n", "2018-10-31 ", "\uff12018-10-31",
     "\u0662\u0660\u0661\u0668", "31-10-2018", "", "2018-10-31" * 10_000],
)
def test_anything_else_is_not_a_partition(name: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid partition"):
        validate.partition(name)


@pytest.mark.parametrize(
    "uri",
    ["gs://bucket", "gs://bucket/plays/", "gs://my_bucket.v-2/x y", "gs://abc/x",
     f"gs://{'a' * 63}/x", "/data/plays", "/data/caf\u00e9", "/" + "x" * 2047],
)
def test_uris_are_gcs_with_a_bucket_or_absolute_paths(uri: str) -> None:
    assert validate.uri(uri) == uri


@pytest.mark.parametrize(
    "uri",
    ["gs://", "gs:///x", "gs://ab/x", f"gs://{'a' * 64}/x", "gs://Bucket/x", "gs://-bucket/x",
     "gs://bucket-/x", "gs://bu cket/x", "gs://bucket\n", "s3://bucket/x", "relative/x", "",
     "/data/x\n", "/data/\x00x", "/data/\x7f", "/data/\x85", "/data/\ud800",
     "/" + "x" * 2048],
)
def test_other_uris_are_refused(uri: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid URI"):
        validate.uri(uri)


@pytest.mark.parametrize(
    "name", ["plays\n", "plays ", "\uff50lays", "caf\u00e9", "-plays", "a" * 256, ""],
)
def test_endpoints_are_ascii_names(name: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid endpoint"):
        validate.endpoint(name)
    assert validate.endpoint("a" * 255) == "a" * 255


@pytest.mark.parametrize(
    "item",
    ["5f0c2a52-8f6f-4b0e-9d8a-3f2b8c1d2e4f", "toplists.top10@2018-10-31T00:00:00+00:00",
     "gs://bucket/x.tsv@2018-10-31T00:00:00+00:00#1234", "x" * 2176],
)
def test_lineage_ids_are_bounded_tokens(item: str) -> None:
    assert validate.lineage_id(item) == item


@pytest.mark.parametrize("item", ["", "a b", "a\n", "\ta", "a\x00", "a\ud800", "x" * 2177])
def test_other_lineage_ids_are_refused(item: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid lineage id"):
        validate.lineage_id(item)


@pytest.mark.parametrize("item", ["", "a/b", "a\x00", "-a", "a\n", "\ud800", "a" * 129])
def test_revision_ids_to_look_up_are_bounded_tokens(item: str) -> None:
    with pytest.raises(InvalidIdentifier, match="invalid revision id"):
        validate.revision_id(item)


def test_a_refused_value_is_shown_bounded() -> None:
    with pytest.raises(InvalidIdentifier) as refused:
        validate.endpoint("x" * 100_000)
    assert len(str(refused.value)) < 300
