"""What a task group raises is taken apart into the errors it holds, however nested; an
error is told in a bounded line, whatever its message holds or does."""

from __future__ import annotations

import pytest

from orchestrator.errors import (
    MAX_DESCRIBED,
    RegistryError,
    StateStoreError,
    as_one_error,
    described,
    leaves,
    messages,
)


def test_the_errors_of_nested_groups_are_found_in_order_and_named() -> None:
    store, registry = StateStoreError("connection closed"), RegistryError("no answer")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [store]), registry])
    assert list(leaves(group)) == [store, registry]
    assert messages(group) == "StateStoreError: connection closed; RegistryError: no answer"


class Unsayable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("its message fails")


def test_an_error_is_told_whole_cut_to_its_bound_or_by_its_type() -> None:
    assert described(ValueError("row 7 rejected")) == "row 7 rejected"
    told = described(ValueError("x" * 50_000_000))
    assert told == "x" * MAX_DESCRIBED + f"… [{50_000_000 - MAX_DESCRIBED:,} more characters]"
    assert described(Unsayable()) == "Unsayable (its message could not be made)"
    assert messages(ExceptionGroup("g", [Unsayable()])) == (
        "Unsayable: Unsayable (its message could not be made)")


def test_a_group_of_charon_errors_comes_out_as_its_first_with_its_own_cause() -> None:
    cause = OSError("connection reset")
    first = RegistryError("no answer")
    first.__cause__ = cause
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [first]), StateStoreError("x")])
    with pytest.raises(RegistryError) as raised, as_one_error():
        raise nested
    assert raised.value is first
    assert raised.value.__cause__ is cause


def test_a_group_holding_a_bug_comes_out_whole() -> None:
    group = ExceptionGroup("g", [RegistryError("no answer"), KeyError("revisions")])
    with pytest.raises(ExceptionGroup) as raised, as_one_error():
        raise group
    assert raised.value is group
