"""What a task group raises is taken apart into the errors it holds, however nested; an
error is told in a bounded line, whatever its message holds or does."""

from __future__ import annotations

from orchestrator.errors import (
    MAX_DESCRIBED,
    RegistryError,
    StateStoreError,
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
