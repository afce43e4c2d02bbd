"""PostgreSQL names charon puts into SQL itself: lower-case, never quoted, never input."""

from __future__ import annotations

import pytest

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
