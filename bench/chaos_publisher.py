"""The chaos benchmark's publisher: what upstream teams would publish while charon runs.

The small task's inputs arrive in bursts: a file under the storage root, then a
publish through the registry service's HTTP API. Late revisions follow for a share of
partitions, half of them aimed at partitions whose run is in flight at that moment.
The top-artists days come from ``charon sample-data`` against the same service, and
get late revisions (``--new-revision --seed N``) while their runs are in flight too.
Every publish is retried until the service takes it: faults make it come and go.
Days after the watched window get their inputs too, and a backfill of them is started
through a replica's API, which the faults then kill and pause like any other.
"""

from __future__ import annotations

import json
import math
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import aiohttp
import anyio
import asyncpg

from bench.chaos_stack import CHARON, ROOT, TOKEN, Say, Stack
from bench.chaos_tasks import INPUT_ENDPOINT, INPUT_FILE

BURSTS = 8
BURSTS_END = 0.6
"""The last burst goes out by this fraction of the fault window."""
LATE_START, LATE_END = 0.25, 0.85
PUBLISH_DEADLINE_SECONDS = 90.0
REQUEST_SECONDS = 5.0
RETRY_SECONDS = 0.3
AT_ONCE = 16
IN_FLIGHT_WAIT_SECONDS = 5.0
SAMPLE_ATTEMPTS = 6
SAMPLE_SECONDS = 120.0
POLL_SECONDS = 0.1

RUNNING_PARTITIONS = (
    "SELECT partition FROM charon_state.runs WHERE family = $1 AND state = 'running'"
)


@dataclass
class Published:
    """What the publisher did."""

    inputs: int = 0
    late: int = 0
    late_in_flight: int = 0
    sample_days: int = 0
    sample_late: int = 0
    sample_late_in_flight: int = 0
    retries: int = 0
    failures: list[str] = field(default_factory=list)
    backfill: str = ""
    """The id of the backfill started through a replica's API."""


class Publisher:
    def __init__(self, stack: Stack, pool: asyncpg.Pool[Any], session: aiohttp.ClientSession,
                 rng: random.Random, say: Say, *, events: int) -> None:
        self._stack, self._pool, self._session = stack, pool, session
        self._rng, self._say, self._events = rng, say, events
        self._revisions: dict[date, int] = {}
        self._limit = anyio.CapacityLimiter(AT_ONCE)
        self.done = Published()

    async def run(self, window: float, days: Sequence[date], top_days: Sequence[date],
                  late_share: float) -> None:
        start = anyio.current_time()
        late = round(late_share * len(days))
        async with anyio.create_task_group() as group:
            group.start_soon(self._bursts, start, window, days, late - late // 2)
            group.start_soon(self._random_late, start, window, late // 2)
            group.start_soon(self._top_artists, start, window, top_days)

    async def backfill(self, days: Sequence[date]) -> None:
        """Publish the inputs of ``days`` (never revised: outside the watched window a
        late revision would not run), then start a backfill of them, one day at a time,
        through whichever replica answers."""
        if not days:
            return
        await self._publish_all(days, revised=False)
        self.done.inputs += len(days)
        body = {"workflow": "chaos", "max_parallel": 1,
                "interval": f"{days[0]}-{days[-1] + timedelta(days=1)}"}
        headers = {"Authorization": f"Bearer {TOKEN}"}
        timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
        with anyio.move_on_after(PUBLISH_DEADLINE_SECONDS):
            while True:
                replica = self._rng.choice(self._stack.replicas)
                try:
                    url = await replica.wait_ready(through_restarts=True)
                    async with self._session.post(f"{url}/api/backfills", json=body,
                                                  headers=headers, timeout=timeout) as answer:
                        if answer.status == 202:
                            self.done.backfill = (await answer.json())["id"]
                            self._say(f"backfill {self.done.backfill} of {len(days)} days"
                                      f" started through {replica.name}")
                            return
                except (aiohttp.ClientError, TimeoutError, RuntimeError):
                    pass  # that replica is down or paused now: another, in a moment
                self.done.retries += 1
                await anyio.sleep(RETRY_SECONDS)

    async def more_work(self, count: int) -> None:
        """Late revisions for ``count`` published partitions now: runs for a fault to catch."""
        chosen = self._rng.sample(sorted(self._revisions), min(count, len(self._revisions)))
        await self._publish_all(chosen)
        self.done.late += len(chosen)

    async def _bursts(self, start: float, window: float, days: Sequence[date],
                      in_flight: int) -> None:
        size = math.ceil(len(days) / BURSTS)
        chunks = [days[n:n + size] for n in range(0, len(days), size)]
        per_burst = math.ceil(in_flight / len(chunks))
        for k, chunk in enumerate(chunks):
            await _sleep_until(start + k * window * BURSTS_END / len(chunks))
            self._say(f"publish: burst {k + 1}/{len(chunks)}, {len(chunk)} partitions")
            await self._publish_all(chunk)
            self.done.inputs += len(chunk)
            wanted = min(per_burst, in_flight - self.done.late_in_flight)
            if wanted > 0:
                await self._late_in_flight(wanted)

    async def _late_in_flight(self, wanted: int) -> None:
        """Late revisions of watched partitions whose runs are running right now (not
        the backfill's days: outside the window, a late revision would not run)."""
        with anyio.move_on_after(IN_FLIGHT_WAIT_SECONDS):
            while not (running := {day for day in await self._running("ChaosTask")
                                   if date.fromisoformat(day) in self._revisions}):
                await anyio.sleep(POLL_SECONDS)
            chosen = self._rng.sample(sorted(running), min(wanted, len(running)))
            await self._publish_all([date.fromisoformat(day) for day in chosen])
            self.done.late += len(chosen)
            self.done.late_in_flight += len(chosen)
            self._say(f"publish: late revisions of {len(chosen)} partitions whose runs are"
                      " in flight")

    async def _random_late(self, start: float, window: float, count: int) -> None:
        moments = sorted(self._rng.uniform(LATE_START, LATE_END) * window for _ in range(count))
        for moment in moments:
            await _sleep_until(start + moment)
            if self._revisions:
                await self.more_work(1)

    async def _running(self, family: str) -> set[str]:
        rows = await self._pool.fetch(RUNNING_PARTITIONS, family)
        return {row["partition"] for row in rows}

    async def _publish_all(self, days: Sequence[date], *, revised: bool = True) -> None:
        """Each day's next input revision; ``revised``: the day may get late ones."""
        async with anyio.create_task_group() as group:
            for day in days:
                group.start_soon(self._publish_input, day, revised)

    async def _publish_input(self, day: date, revised: bool) -> None:
        async with self._limit:
            number = self._revisions.get(day, 0) + 1
            if revised:
                self._revisions[day] = number
            token = secrets.token_hex(4)
            folder = self._stack.layout.inputs / day.isoformat() / f"r{number}-{token}"
            await anyio.Path(folder).mkdir(parents=True)
            await anyio.Path(folder / INPUT_FILE).write_text(f"{day} revision {number}\n")
            body = {"endpoint": INPUT_ENDPOINT, "partition": day.isoformat(),
                    "uri": str(folder)}
            await self._post(body, key=f"chaos-{day}-{number}-{token}")

    async def _post(self, body: dict[str, str], *, key: str) -> None:
        """Publish once, however often it must be sent: the key makes a resend a replay."""
        headers = {"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key}
        url = f"{self._stack.registry_url}/v1/revisions"
        timeout = aiohttp.ClientTimeout(total=REQUEST_SECONDS)
        error = "no answer before the deadline"
        with anyio.move_on_after(PUBLISH_DEADLINE_SECONDS):
            while True:
                try:
                    async with self._session.post(url, json=body, headers=headers,
                                                  timeout=timeout) as response:
                        if response.status < 300:
                            return
                        error = f"HTTP {response.status}: {await response.text()}"
                        if response.status < 500:
                            break
                except (aiohttp.ClientError, TimeoutError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                self.done.retries += 1
                await anyio.sleep(RETRY_SECONDS)
        self.done.failures.append(f"publish {body['partition']} failed: {error}")

    async def _top_artists(self, start: float, window: float, days: Sequence[date]) -> None:
        await _sleep_until(start + 0.05 * window)
        for day in days:
            await self._sample(day)
            self.done.sample_days += 1
        seed = 1000
        for fraction, late_days in ((0.35, days), (0.7, days[:1])):
            await _sleep_until(start + fraction * window)
            for day in late_days:
                seed += 1
                caught = await self._until_running(day)
                await self._sample(day, seed=seed)
                self.done.sample_late += 1
                self.done.sample_late_in_flight += caught
                self._say(f"publish: late top-artists revision of {day} (seed {seed})"
                          + (", its run in flight" if caught else ""))

    async def _until_running(self, day: date) -> bool:
        with anyio.move_on_after(IN_FLIGHT_WAIT_SECONDS * 4):
            while day.isoformat() not in await self._running("TopArtistsJob"):
                await anyio.sleep(POLL_SECONDS)
            return True
        return False

    async def _sample(self, day: date, *, seed: int | None = None) -> None:
        """``charon sample-data`` for the day; run again until it exits 0."""
        argv = [CHARON, "sample-data", "--date", day.isoformat(), "--events",
                str(self._events), "--json"]
        if seed is not None:
            argv += ["--new-revision", "--seed", str(seed)]
        for _ in range(SAMPLE_ATTEMPTS):
            outcome = f"did not end within {SAMPLE_SECONDS:g} s"
            with anyio.move_on_after(SAMPLE_SECONDS):  # killed if it hangs
                result = await anyio.run_process(argv, env=self._stack.client_env,
                                                 check=False, cwd=ROOT)
                if result.returncode == 0:
                    revision = json.loads(result.stdout)["revision"]
                    self._say(f"publish: sample-data {day} -> revision {revision}")
                    return
                outcome = f"exited {result.returncode}"
            self.done.retries += 1
            self._say(f"publish: sample-data {day} {outcome}; again")
        self.done.failures.append(f"sample-data {day} failed {SAMPLE_ATTEMPTS} times")


async def _sleep_until(moment: float) -> None:
    await anyio.sleep(max(0.0, moment - anyio.current_time()))
