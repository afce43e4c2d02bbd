"""The plumbing every PostgreSQL adapter shares: one pool, vendor errors converted.

asyncpg runs on the event loop itself (it is an asyncio driver), so unlike sqlite3
and DuckDB it needs no worker threads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import anyio
import asyncpg

from orchestrator.errors import AdapterError

CONNECT_TIMEOUT_SECONDS = 10.0
CLOSE_TIMEOUT_SECONDS = 10.0
VENDOR_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


@contextmanager
def converted(error: type[AdapterError], what: str) -> Iterator[None]:
    """Vendor and network errors become ``error`` here, at the adapter's edge."""
    try:
        yield
    except VENDOR_ERRORS as exc:
        raise error(f"{what}: {exc}") from exc


class Pool:
    """An asyncpg pool that refuses use after close and closes within bounds."""

    def __init__(self, pool: asyncpg.Pool, error: type[AdapterError], name: str) -> None:
        self._pool = pool
        self._error = error
        self._name = name
        self._closed = False

    @classmethod
    async def open(
        cls, dsn: str, *, error: type[AdapterError], name: str, min_size: int, max_size: int,
        server_settings: Mapping[str, str] | None = None,
    ) -> Pool:
        with converted(error, f"cannot connect to {name}"):
            pool = await asyncpg.create_pool(
                dsn, min_size=min_size, max_size=max_size, timeout=CONNECT_TIMEOUT_SECONDS,
                server_settings=dict(server_settings or {}),
            )
        return cls(pool, error, name)

    def acquire(self) -> asyncpg.pool.PoolAcquireContext:
        if self._closed:
            raise self._error(f"{self._name} is closed")
        return self._pool.acquire()

    def terminate(self) -> None:
        self._pool.terminate()

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Lets calls in flight finish, within bounds; then the sockets are cut.
        with anyio.move_on_after(CLOSE_TIMEOUT_SECONDS, shield=True) as scope:
            await self._pool.close()
        if scope.cancelled_caught:
            self._pool.terminate()
