"""A one-shot command under a stop signal (orchestrator/cli/stopping.py), in process:
the signal is sent to this very process while the command listens for it."""

from __future__ import annotations

import os
import signal

import anyio
import pytest

from orchestrator.cli.stopping import Stopped, unless_stopped


async def test_a_command_that_ends_keeps_its_code() -> None:
    async def command() -> int:
        return 7

    assert await unless_stopped(command) == 7


@pytest.mark.parametrize(("signum", "said", "code"), [
    (signal.SIGTERM, "terminated", 143), (signal.SIGHUP, "hung up", 129),
])
async def test_a_stop_signal_cancels_the_command_after_its_clean_up(
    signum: signal.Signals, said: str, code: int
) -> None:
    cleaned_up = []

    async def command() -> int:
        try:
            os.kill(os.getpid(), signum)
            await anyio.sleep_forever()
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.01)  # a release awaits the store
                cleaned_up.append(True)
        return 0  # never reached: the command is cancelled

    with anyio.fail_after(5), pytest.raises(Stopped) as stopped:
        await unless_stopped(command)
    assert (str(stopped.value), stopped.value.exit_code) == (said, code)
    assert cleaned_up == [True]


async def test_a_signal_as_the_command_ends_changes_nothing() -> None:
    async def command() -> int:
        with anyio.CancelScope(shield=True):  # its last step, past cancelling
            os.kill(os.getpid(), signal.SIGTERM)
            await anyio.sleep(0.05)
        return 0

    assert await unless_stopped(command) == 0
