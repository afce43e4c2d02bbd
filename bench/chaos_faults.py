"""The chaos benchmark's faults, as production deals them, during a fixed window.

All along: a random replica SIGKILLed every few seconds and restarted after a moment,
as a supervisor would (one replica is always left working). At set points of the
window: the registry service SIGKILLed and restarted on its port, every PostgreSQL
connection of the daemons and the service cut (``pg_terminate_backend``), a replica
paused (SIGSTOP) for longer than its lease, and one replica paused in the middle of a
publication: caught in ``charon_state.runs`` owning a run in state ``publishing``,
the registry service frozen for a moment so that publication cannot finish, the
owner stopped, and the database asked, twice, whether the stopped owner still holds
the publishing run. That is tried until it happens.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import asyncpg

from bench.chaos_stack import HARNESS_APP, Say, Service, Stack

RESTART_AFTER = (1.0, 3.0)
PAUSE_PAST_LEASE_SECONDS = 3.0
REGISTRY_DOWN_SECONDS = 2.0
CATCH_SECONDS = 3.0
CATCH_POLL_SECONDS = 0.005
CONFIRM_AGAIN_SECONDS = 1.0
MID_PUBLICATION_EXTRA_SECONDS = 90.0
"""How long past the window the mid-publication pause is still tried for, at most
(and no longer than the window itself)."""

PUBLISHING_RUNS = (
    "SELECT id, task_id, attempt, lease_owner FROM charon_state.runs"
    " WHERE state = 'publishing' AND lease_owner IS NOT NULL"
    " AND lease_expires > clock_timestamp()"
)
STILL_PUBLISHING = (
    "SELECT count(*) FROM charon_state.runs WHERE id = $1 AND state = 'publishing'"
    " AND attempt = $2 AND lease_owner = $3"
)
CUT_CONNECTIONS = (
    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS cut FROM pg_stat_activity"
    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    " AND application_name <> $1) AS terminated WHERE cut"
)


@dataclass
class FaultLog:
    replica_kills: int = 0
    replica_pauses: int = 0
    registry_kills: int = 0
    connections_cut: list[int] = field(default_factory=list)
    mid_publication: list[str] = field(default_factory=list)
    """One line per confirmed pause of an owner mid-publication: run, task, replica."""
    mid_publication_runs: list[str] = field(default_factory=list)
    mid_publication_tries: int = 0


class Faults:
    def __init__(self, stack: Stack, pool: asyncpg.Pool[Any], group: anyio.abc.TaskGroup,
                 rng: random.Random, say: Say, *, kill_every: float,
                 more_work: Callable[[int], Awaitable[None]]) -> None:
        self._stack, self._pool, self._group = stack, pool, group
        self._rng, self._say = rng, say
        self._kill_every = kill_every
        self._more_work = more_work
        self._pause_seconds = stack.config.lease_seconds + PAUSE_PAST_LEASE_SECONDS
        self.log = FaultLog()
        self._window = 0.0
        # Choosing a victim and striking it is one step: two faults never pick one
        # process at once (a kill while the mid-publication pause is confirmed).
        self._choosing = anyio.Lock()

    async def run(self, window: float) -> None:
        start = anyio.current_time()
        self._window = window
        scenes: list[tuple[float, Callable[[], Awaitable[None]]]] = [
            (0.12, self._kill_registry), (0.22, self._cut_connections),
            (0.30, self._pause_replica),
            (0.40, lambda: self._pause_mid_publication(start + window)),
            (0.50, self._cut_connections),
            (0.62, self._kill_registry), (0.75, self._cut_connections),
            (0.85, self._pause_replica),
        ]
        async with anyio.create_task_group() as faults:
            killing = anyio.CancelScope()
            faults.start_soon(self._kill_replicas, killing, faults)
            # Each at its moment, whatever the others are doing: a pause may still be on
            # when the registry service goes down.
            for fraction, scene in scenes:
                faults.start_soon(_at, start + fraction * window, scene)
            await anyio.sleep(window)
            killing.cancel()
        await self.restore()

    async def restore(self) -> None:
        """Every process back, running and ready: the end of the window, or of a failed
        run. Settling starts from there, so the final SIGTERM meets daemons that have
        started, not one still importing its modules after a pause."""
        registry = self._stack.registry
        registry.resume()
        if not registry.running:
            await registry.start(self._group)
        await registry.wait_ready(through_restarts=True)
        for replica in self._stack.replicas:
            replica.resume()
            if not replica.running:
                await replica.start(self._group)
        for replica in self._stack.replicas:
            await replica.wait_ready(through_restarts=True)

    async def _kill_replicas(self, scope: anyio.CancelScope,
                             restarts: anyio.abc.TaskGroup) -> None:
        with scope:
            while True:
                await anyio.sleep(self._rng.uniform(0.6, 1.4) * self._kill_every)
                async with self._choosing:
                    working = [r for r in self._stack.replicas if r.running and not r.paused]
                    if len(working) < 2:
                        continue  # one replica is always left to do the work
                    victim = self._rng.choice(working)
                    self._say(f"fault: SIGKILL {victim.name} (pid {victim.pid})")
                    await victim.kill()
                self.log.replica_kills += 1
                restarts.start_soon(self._restart, victim, self._rng.uniform(*RESTART_AFTER))

    async def _restart(self, replica: Service, after: float) -> None:
        await anyio.sleep(after)
        if not replica.running:
            await replica.start(self._group)
            self._say(f"restart: {replica.name} (pid {replica.pid})")

    async def _kill_registry(self) -> None:
        registry = self._stack.registry
        async with self._choosing:  # not while a mid-publication pause has it frozen
            registry.resume()
            self._say(f"fault: SIGKILL the registry service (pid {registry.pid})")
            await registry.kill()
        self.log.registry_kills += 1
        await anyio.sleep(REGISTRY_DOWN_SECONDS)
        await registry.start(self._group)
        await registry.wait_ready()
        self._say(f"restart: the registry service (pid {registry.pid}), same port")

    async def _cut_connections(self) -> None:
        cut = int(await self._pool.fetchval(CUT_CONNECTIONS, HARNESS_APP))
        self.log.connections_cut.append(cut)
        self._say(f"fault: pg_terminate_backend on {cut} connections of daemons and service")

    async def _pause_replica(self) -> None:
        async with self._choosing:
            working = [r for r in self._stack.replicas if r.running and not r.paused]
            if len(working) < 2:
                return
            replica = self._rng.choice(working)
            self._say(f"fault: SIGSTOP {replica.name} (pid {replica.pid}) for"
                      f" {self._pause_seconds:g} s, past its lease")
            replica.pause()
        self.log.replica_pauses += 1
        await anyio.sleep(self._pause_seconds)
        replica.resume()
        self._say(f"fault over: SIGCONT {replica.name}")

    async def _pause_mid_publication(self, window_end: float) -> None:
        give_up = window_end + min(MID_PUBLICATION_EXTRA_SECONDS, self._window)
        while anyio.current_time() < give_up:
            self.log.mid_publication_tries += 1
            async with self._choosing:
                caught = await self._catch_publishing()
                paused = caught is not None and await self._pause_owner(*caught)
            if caught is None:
                await self._more_work(4)  # nothing publishing: give it something to publish
                continue
            replica, run_id, task_id, attempt, _owner = caught
            if paused:
                self.log.mid_publication.append(
                    f"run {run_id} of {task_id}, attempt {attempt}, owned by {replica.name}"
                    f" (pid {replica.pid})")
                self.log.mid_publication_runs.append(run_id)
                self._say(f"fault: SIGSTOP {replica.name} (pid {replica.pid}) MID-PUBLICATION"
                          f" of run {run_id} ({task_id}, attempt {attempt}), confirmed in"
                          f" charon_state.runs; for {self._pause_seconds:g} s")
                await anyio.sleep(self._pause_seconds)
                replica.resume()
                self._say(f"fault over: SIGCONT {replica.name}")
                return
        self._say("fault: NO replica was caught mid-publication"
                  f" in {self.log.mid_publication_tries} tries")

    async def _catch_publishing(self) -> tuple[Service, str, str, int, str] | None:
        """A run publishing under a live lease whose owner is one of our replicas."""
        with anyio.move_on_after(CATCH_SECONDS):
            while True:
                for row in await self._pool.fetch(PUBLISHING_RUNS):
                    owner: str = row["lease_owner"]
                    pid = owner.split(":")[1]
                    replica = self._stack.replica_with_pid(int(pid)) if pid.isdigit() else None
                    if replica is not None and not replica.paused:
                        return replica, row["id"], row["task_id"], row["attempt"], owner
                await anyio.sleep(CATCH_POLL_SECONDS)
        return None

    async def _pause_owner(self, replica: Service, run_id: str, task_id: str, attempt: int,
                           owner: str) -> bool:
        """Stop the owner; True if it still holds the run in ``publishing`` once stopped.

        The registry service is frozen first, for the confirmation's length: the
        owner's publish, if under way, cannot be answered, so it cannot finish.
        Asked twice, a second apart: a write the owner sent just before it stopped
        has landed by the second read.
        """
        registry = self._stack.registry
        registry.pause()
        replica.pause()
        try:
            held = await self._still_publishing(run_id, attempt, owner)
            if held:
                await anyio.sleep(CONFIRM_AGAIN_SECONDS)
                held = await self._still_publishing(run_id, attempt, owner)
        finally:
            registry.resume()
        if not held:
            replica.resume()
        return held

    async def _still_publishing(self, run_id: str, attempt: int, owner: str) -> bool:
        return bool(await self._pool.fetchval(STILL_PUBLISHING, run_id, attempt, owner))


async def _at(moment: float, scene: Callable[[], Awaitable[None]]) -> None:
    await anyio.sleep(max(0.0, moment - anyio.current_time()))
    await scene()
