"""Properties of the registry service's wire format: a revision survives the JSON trip,
and whatever JSON the client is handed instead, it raises RegistryError, never another
exception."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.hostile_corpus import HOSTILE_TEXTS
from orchestrator.errors import RegistryError
from orchestrator.model import Revision
from orchestrator.stores.drivers.sqlite import truncate_ms
from orchestrator.stores.registry.wire import revision_from_json, revision_to_json

BOUNDED = settings(max_examples=200, deadline=None, database=None)
ids = st.from_regex(r"\A[A-Za-z0-9-]{1,40}\Z")
revisions = st.builds(
    Revision,
    id=ids,
    endpoint=st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,40}\Z"),
    partition=st.from_regex(r"\A20[0-9]{2}-[01][0-9]-[0-3][0-9]\Z"),
    uri=st.from_regex(r"\A/[A-Za-z0-9/._-]{0,60}\Z"),
    created=st.datetimes(timezones=st.just(UTC)).map(truncate_ms),
    lineage=st.lists(ids, max_size=5).map(tuple),
    seq=st.integers(1, 2**63 - 1),
)
scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
           | st.sampled_from(HOSTILE_TEXTS))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12,
)
SAMPLE = Revision("r-1", "plays", "2018-10-31", "/data/plays", datetime(2018, 10, 31, tzinfo=UTC),
                  ("a",), 1)
FIELDS = ("id", "endpoint", "partition", "uri", "created", "lineage", "seq")


@BOUNDED
@given(revisions)
def test_a_revision_survives_the_json_trip(revision: Revision) -> None:
    sent = json.dumps(revision_to_json(revision))
    assert revision_from_json(json.loads(sent)) == revision


@BOUNDED
@given(json_values)
def test_any_json_is_a_revision_or_a_registry_error(value: object) -> None:
    with contextlib.suppress(RegistryError):
        revision_from_json(value)


@BOUNDED
@given(revisions, st.sampled_from(FIELDS), json_values)
@example(SAMPLE, "seq", float("inf"))  # json.loads("1e400")
@example(SAMPLE, "created", "9999-12-31T23:59:59.999-23:59")  # past the calendar in UTC
def test_any_field_value_is_a_revision_or_a_registry_error(
    revision: Revision, name: str, value: object
) -> None:
    """The shape of a revision with one field replaced: what a broken service sends."""
    sent = {**revision_to_json(revision), name: value}
    try:
        received = revision_from_json(sent)
    except RegistryError:
        return
    assert received.created.tzinfo is not None
