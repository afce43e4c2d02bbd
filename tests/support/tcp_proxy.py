"""A loopback TCP proxy that can make the connections through it go silently dead.

What a client sees when the server's host fails over, or a firewall or NAT drops a
connection's state: its bytes are accepted and nothing ever comes back, no reset, no
error, while a new connection works. ``drop_silently()`` does that to every connection
open at that moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import anyio
from anyio.abc import SocketAttribute, SocketStream


@dataclass
class _Link:
    dead: anyio.Event = field(default_factory=anyio.Event)


@dataclass
class SilentDropProxy:
    target_host: str
    target_port: int
    port: int = 0
    _links: list[_Link] = field(default_factory=list)

    def drop_silently(self) -> int:
        """Every connection open now stops carrying bytes, both ways, without closing;
        returns how many there were."""
        live = [link for link in self._links if not link.dead.is_set()]
        for link in live:
            link.dead.set()
        return len(live)

    async def _serve(self, client: SocketStream) -> None:
        link = _Link()
        self._links.append(link)
        server = await anyio.connect_tcp(self.target_host, self.target_port)
        async with client, server, anyio.create_task_group() as group:
            group.start_soon(_pump, client, server, link, group.cancel_scope)
            group.start_soon(_pump, server, client, link, group.cancel_scope)


async def _pump(source: SocketStream, sink: SocketStream, link: _Link,
                scope: anyio.CancelScope) -> None:
    try:
        async for chunk in source:
            if not link.dead.is_set():
                await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    if not link.dead.is_set():
        scope.cancel()  # one side closed: so does the other, as a real path would
    else:
        await anyio.sleep_forever()  # a dead path never says it closed


@asynccontextmanager
async def silent_drop_proxy(target_host: str, target_port: int) -> AsyncIterator[SilentDropProxy]:
    """The proxy on a free loopback port (``port``) until the block ends."""
    proxy = SilentDropProxy(target_host, target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = listener.extra(SocketAttribute.local_port)  # noqa: S610  # anyio's typed attribute, not Django's QuerySet.extra
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, proxy._serve)
        try:
            yield proxy
        finally:
            group.cancel_scope.cancel()
