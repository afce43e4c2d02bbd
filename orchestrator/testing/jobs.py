"""A fake of charon's own JobRunner Protocol, and the crash it can simulate."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence

import anyio.lowlevel

from orchestrator.errors import (
    JobFailed,
    JobLost,
)
from orchestrator.log import job_output
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.testing.crash import ProcessCrashed
from orchestrator.testing.data import InMemoryStorage, InMemoryWarehouse


def job_options(argv: Sequence[str]) -> dict[str, str]:
    """``--key=value`` arguments of a job command line."""
    return dict(arg[2:].split("=", 1) for arg in argv if arg.startswith("--") and "=" in arg)


@dataclasses.dataclass
class FakeJobRunner:
    """A JobRunner that plays a Beam job against in-memory storage and warehouse.

    It writes a ``part`` file under each of ``text_outputs`` and a one-row table at
    every staging table spec it is handed, then succeeds (or raises ``fail_with``).
    ``gate``, when set, holds every job until the test sets it.
    """

    warehouse: InMemoryWarehouse
    storage: InMemoryStorage
    text_outputs: tuple[str, ...] = ("textOutput",)
    fail_with: str | None = None
    write_outputs: bool = True
    gate: anyio.Event | None = None
    calls: list[list[str]] = dataclasses.field(default_factory=list)
    job_names: list[str] = dataclasses.field(default_factory=list)
    running: int = 0
    most_running: int = 0
    crash_after_start: bool = False
    """Simulate this process dying once the job id is recorded (nothing cleans up)."""
    reattachable: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Job ids an earlier process started that reattach() can follow, with their argv."""
    reattached: list[str] = dataclasses.field(default_factory=list)
    cancelled: list[str] = dataclasses.field(default_factory=list)
    finds_jobs_by_name: bool = True
    """As a Dataflow runner does; False plays a local runner, whose jobs die unnamed."""
    reaped: list[str] = dataclasses.field(default_factory=list)
    output: tuple[str, ...] = ()
    """Lines each job prints, ``output_pause`` seconds apart, before it waits on ``gate``."""
    output_pause: float = 0.0
    """Jobs still running when another attempt reattached: stopped, not followed."""
    _live: dict[str, anyio.CancelScope] = dataclasses.field(default_factory=dict)
    _stopped: dict[str, anyio.Event] = dataclasses.field(default_factory=dict)

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        self.calls.append(list(argv))
        self.job_names.append(job_name)
        job_id = f"fake-{len(self.calls)}"
        await on_started(job_id)
        if self.crash_after_start:
            self.reattachable[job_id] = list(argv)
            raise ProcessCrashed(job_id)
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        stopped = self._stopped[job_id] = anyio.Event()
        try:
            with anyio.CancelScope() as killed:
                self._live[job_id] = killed
                for line in self.output:
                    await job_output(line)
                    await anyio.sleep(self.output_pause)
                await (self.gate.wait() if self.gate else anyio.sleep(0.01))
                if self.write_outputs:
                    await self._write(job_options(argv))
        finally:
            self._live.pop(job_id, None)
            self.running -= 1
            stopped.set()
        if killed.cancelled_caught:
            raise JobFailed(f"{job_id} was killed")
        if self.fail_with:
            raise JobFailed(self.fail_with)

    async def reattach(self, job_id: str) -> None:
        if await self._stop(job_id):
            # A job left running by an owner that lost its lease: stopped (and waited
            # for), as the local runner stops a job another process left behind.
            self.reaped.append(job_id)
            raise JobLost(f"{job_id} was left running by its lost owner; stopped it")
        if job_id not in self.reattachable:
            raise JobLost(f"{job_id} is not running any more")
        self.reattached.append(job_id)
        await self._write(job_options(self.reattachable.pop(job_id)))

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)
        await self._stop(job_id)

    async def _stop(self, job_id: str) -> bool:
        """Stop the job if it runs, its run failing; whether it did."""
        killed = self._live.get(job_id)
        if killed is None:
            return False
        killed.cancel()
        await self._stopped[job_id].wait()
        return True

    async def _write(self, given: Mapping[str, str]) -> None:
        for key, value in given.items():
            if key in self.text_outputs:
                await self.storage.write(f"{value}/part", b"a1\tArtist\t3\n")
            elif ":_incoming_" in value:
                await self.warehouse.create_table(
                    TableSpec.parse(value),
                    [Column("artist_gid", "STRING"), Column("streams", "INT64")],
                    [("a1", 3)],
                )
