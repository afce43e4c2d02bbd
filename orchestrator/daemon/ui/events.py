"""``GET /events``: the changes of the partitions' and runs' states, as server-sent events.

One poller compares successive snapshots of the partitions the clients want (every
watched one only if a client wants every day) and hands each change to every client's
bounded queue. A client too slow to keep up is dropped (its
stream ends; a browser's EventSource reconnects by itself), a gone one is forgotten
when writing to it fails, so neither holds memory nor slows the others.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import anyio
from aiohttp import web
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.daemon.ui.states import Cell, partition_cells

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon
    from sensors.facts import Root

POLL_SECONDS = 0.5
KEEPALIVE_POLLS = 30
"""A comment every 15 s finds the clients that left without a word."""
QUEUE_EVENTS = 1024


KEEPALIVE = ": keepalive\n\n"


@dataclass(frozen=True)
class Event:
    text: str
    """As sent on the wire."""
    day: date | None = None
    """The partition's day, for a partition's event."""
    run_id: str | None = None
    """The run's id, for a run's event."""


@dataclass(frozen=True)
class Interest:
    """What a client is sent: the partitions of ``days`` (None: every day), the runs
    ``run_id`` names (None: every run), and the keep-alives."""

    days: frozenset[date] | None = None
    run_id: str | None = None
    looks: frozenset[date] = frozenset()
    """Days looked at for it, not sent: those of the partitions its run is of."""

    def wants(self, event: Event) -> bool:
        if event.day is not None:
            return self.days is None or event.day in self.days
        if event.run_id is not None:
            return self.run_id in (None, event.run_id)
        return True


def message(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def event_stream(request: web.Request) -> web.StreamResponse:
    """A server-sent events answer, its headers sent: kept from caches and from proxies'
    buffers, so each event reaches the browser as it is written."""
    response = web.StreamResponse(headers={"Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(request)
    return response


def partition_event(cell: Cell) -> Event:
    data = {**asdict(cell), "day": cell.day.isoformat(), "key": cell.key}
    return Event(message("partition", data), day=cell.day)


def run_event(cell: Cell) -> Event:
    data = {"id": cell.run_id, "state": cell.run_state}
    return Event(message("run", data), run_id=cell.run_id)


def changes(old: dict[str, Cell], new: dict[str, Cell]) -> list[Event]:
    """The events that take a client from ``old`` to ``new``."""
    found: list[Event] = []
    for key, cell in new.items():
        before = old.get(key)
        if before == cell:
            continue
        found.append(partition_event(cell))
        if cell.run_id and (before is None or (before.run_id, before.run_state)
                            != (cell.run_id, cell.run_state)):
            found.append(run_event(cell))
    return found


class Changes:
    def __init__(self, daemon: Daemon, *, poll_seconds: float = POLL_SECONDS,
                 queue_events: int = QUEUE_EVENTS) -> None:
        self._daemon = daemon
        self._poll_seconds = poll_seconds
        self._queue_events = queue_events
        self._clients: dict[MemoryObjectSendStream[str], Interest] = {}
        self._cells: dict[str, Cell] = {}

    @property
    def clients(self) -> int:
        return len(self._clients)

    async def run(self) -> None:
        """Poll until cancelled."""
        polls = 0
        while True:
            found = await self._changed() if self._clients else []
            polls += 1
            if polls % KEEPALIVE_POLLS == 0:
                found.append(Event(KEEPALIVE))
            self._publish(found)
            await anyio.sleep(self._poll_seconds)

    async def _changed(self) -> list[Event]:
        """What changed since the last look, on the days the clients want. With nobody
        listening the poller does not look (a client that comes has its partitions
        looked at first), and a grid page's client costs its 60 days a look, not every
        watched day."""
        wanted = self._wanted()
        cells = await partition_cells(self._daemon, self._roots(wanted))
        new = {cell.key: cell for cell in cells}
        found = changes(self._cells, new)
        self._cells = new
        return found

    def _wanted(self) -> frozenset[date] | None:
        """The days some client wants, None for every day."""
        wanted: set[date] = set()
        for interest in self._clients.values():
            if interest.days is None:
                return None
            wanted |= interest.days | interest.looks
        return frozenset(wanted)

    def _roots(self, days: frozenset[date] | None) -> list[Root]:
        watch = self._daemon.watch
        return watch.roots if days is None else [
            root for day in sorted(days) for root in watch.roots_on(day)]

    async def _look_again(self, days: frozenset[date] | None) -> None:
        """Look at the days a coming client wants that nobody listening wants yet (the
        others' cells are as fresh as the clients were last sent)."""
        wanted = self._wanted() if self._clients else frozenset()
        if wanted is None:
            return
        roots = [root for root in self._roots(days) if root.day not in wanted]
        cells = await partition_cells(self._daemon, roots)
        self._cells.update((cell.key, cell) for cell in cells)

    def _publish(self, found: list[Event]) -> None:
        for client, interest in list(self._clients.items()):
            try:
                for event in found:
                    if interest.wants(event):
                        client.send_nowait(event.text)
            except (anyio.WouldBlock, anyio.BrokenResourceError, anyio.ClosedResourceError):
                client.close()
                del self._clients[client]

    @contextmanager
    def subscribe(
        self, interest: Interest
    ) -> Iterator[tuple[list[str], MemoryObjectReceiveStream[str]]]:
        """What the client needs to catch up (the cells it wants, as last seen), and its
        queue."""
        send, receive = anyio.create_memory_object_stream[str](self._queue_events)
        self._clients[send] = interest
        catch_up = [partition_event(cell).text for cell in self._cells.values()
                    if interest.days is None or cell.day in interest.days]
        try:
            with receive:
                yield catch_up, receive
        finally:
            send.close()
            self._clients.pop(send, None)

    def close(self) -> None:
        """End every client's stream (the server is shutting down)."""
        for client in self._clients:
            client.close()
        self._clients.clear()

    async def stream(self, request: web.Request, interest: Interest) -> web.StreamResponse:
        response = await event_stream(request)
        if interest.days != frozenset():
            # The last look at its days may be old, nobody having wanted them since:
            # look at what this client is first sent (its catch-up is partitions only).
            await self._look_again(interest.days)
        with self.subscribe(interest) as (catch_up, receive):
            try:
                await response.write("".join(catch_up).encode() or b": hello\n\n")
                async for event in receive:
                    await response.write(event.encode())
            except ConnectionError:
                pass  # the client left; forgotten on the way out
        return response

    async def polling(self, app: web.Application) -> AsyncIterator[None]:
        """aiohttp's cleanup context: the poller runs while the application does. A
        plain asyncio task, since aiohttp enters and leaves this in different tasks."""
        poller = asyncio.create_task(self.run())
        yield
        poller.cancel()
        with suppress(asyncio.CancelledError):
            await poller

    async def closing(self, app: web.Application) -> None:
        """aiohttp's shutdown signal: end the streams, which would hold the shutdown."""
        self.close()
