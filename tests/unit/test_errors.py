"""What a task group raises is taken apart into the errors it holds, however nested."""

from __future__ import annotations

from orchestrator.errors import RegistryError, StateStoreError, leaves, messages


def test_the_errors_of_nested_groups_are_found_in_order_and_named() -> None:
    store, registry = StateStoreError("connection closed"), RegistryError("no answer")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [store]), registry])
    assert list(leaves(group)) == [store, registry]
    assert messages(group) == "StateStoreError: connection closed; RegistryError: no answer"
