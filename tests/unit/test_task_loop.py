"""Task code on a loop of its own: whatever its run() raises fails that run, and the loop
goes on serving the evaluation's other runs."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable

import anyio
import pytest

from orchestrator.core.task_loop import TaskLoop
from orchestrator.errors import JobFailed
from orchestrator.tasks.runcontext import RunContext
from orchestrator.testing.data import InMemoryStorage, InMemoryWarehouse


async def exits(context: RunContext) -> None:
    sys.exit(3)


async def interrupts(context: RunContext) -> None:
    raise KeyboardInterrupt


async def writes(context: RunContext) -> None:
    await context.storage.write(f"{context.outputs['output']}/part", b"written\n")


@pytest.mark.parametrize(("run", "said"), [(exits, r"SystemExit\(3\)"),
                                           (interrupts, r"KeyboardInterrupt\(\)")])
async def test_a_run_that_exits_fails_and_the_loop_serves_the_next(
    run: Callable[[RunContext], Awaitable[None]], said: str,
) -> None:
    """sys.exit() in a task's run() ended the task loop's thread, and the run's future
    never ended: charon hung."""
    context = RunContext({}, {"output": "/store/out"}, InMemoryStorage(), InMemoryWarehouse())
    async with TaskLoop() as loop:
        with anyio.fail_after(10), pytest.raises(JobFailed, match=said):
            await loop.run(run, context)
        with anyio.fail_after(10):
            await loop.run(writes, context)
    assert await context.storage.read("/store/out/part") == b"written\n"
