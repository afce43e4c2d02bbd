"""Lines streamed to task code across the bridge from its loop to the main loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any, TypeVar

import pytest

from orchestrator.core.task_loop import LINES_PER_CALL, BridgedStorage, _Caller
from orchestrator.testing.data import InMemoryStorage

T = TypeVar("T")
URI = "/store/day.tsv"


class CountingCaller(_Caller):
    """Carries calls over as the task loop does, counting them."""

    def __init__(self) -> None:
        super().__init__(asyncio.get_running_loop())
        self.calls = 0

    async def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        self.calls += 1
        return await super().__call__(coroutine)


class ClosingStorage(InMemoryStorage):
    """Storage that records whether each line reader it handed out was let go of."""

    def __init__(self) -> None:
        super().__init__()
        self.open_readers = 0

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        self.open_readers += 1
        try:
            async for line in super().read_lines(uri):
                yield line
        finally:
            self.open_readers -= 1


async def stored(storage: InMemoryStorage, count: int) -> list[str]:
    lines = [f"line {n}" for n in range(count)]
    await storage.write(URI, "".join(f"{line}\n" for line in lines).encode())
    return lines


@pytest.mark.parametrize("count", [0, 1, LINES_PER_CALL - 1, LINES_PER_CALL,
                                   LINES_PER_CALL + 1, 2 * LINES_PER_CALL])
async def test_every_line_arrives_whatever_the_batches(count: int) -> None:
    storage = ClosingStorage()
    lines = await stored(storage, count)
    bridged = BridgedStorage(storage, CountingCaller())
    assert [line async for line in bridged.read_lines(URI)] == lines
    assert storage.open_readers == 0


async def test_a_file_shorter_than_a_batch_crosses_over_once() -> None:
    # A crossing wakes both loops: a year of small daily files paid three each.
    storage = InMemoryStorage()
    lines = await stored(storage, LINES_PER_CALL - 1)
    caller = CountingCaller()
    assert [line async for line in BridgedStorage(storage, caller).read_lines(URI)] == lines
    assert caller.calls == 1


async def test_a_reader_left_early_is_closed_on_the_main_loop() -> None:
    storage = ClosingStorage()
    await stored(storage, 3 * LINES_PER_CALL)
    reader = BridgedStorage(storage, CountingCaller()).read_lines(URI)
    assert isinstance(reader, AsyncGenerator)
    assert await anext(reader) == "line 0"
    assert storage.open_readers == 1
    await reader.aclose()
    assert storage.open_readers == 0
