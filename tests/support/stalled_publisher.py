"""A publisher that stops itself (SIGSTOP) in the middle of a statement, holding the
PostgreSQL registry's publish lock: the server has parsed the statement and waits for
its values. asyncpg sends a statement it has not used on a connection yet as Parse,
Describe and Flush, and its values (Bind, Execute, Sync) after the answer: a process
paused between the two leaves its session ``active``, waiting for the client, where
the server's ``idle_in_transaction_session_timeout`` never applies.
Usage: python -m tests.support.stalled_publisher DSN
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

import anyio
import asyncpg

from orchestrator.stores.registry.postgres import SELECT_BY_IDEMPOTENCY_KEY, PostgresRegistry

ENDPOINT, PARTITION, URI = "stalled.output", "2018-10-31", "/data/stalled"


def stop_after_preparing_the_key_lookup() -> None:
    # Where the pause must fall: asyncpg's own step, not a typed API of it.
    prepare = asyncpg.Connection._get_statement  # type: ignore[attr-defined]

    async def then_stop(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        statement = await prepare(self, query, *args, **kwargs)
        if query == SELECT_BY_IDEMPOTENCY_KEY:
            os.kill(os.getpid(), signal.SIGSTOP)
        return statement

    asyncpg.Connection._get_statement = then_stop  # type: ignore[attr-defined]


async def main(dsn: str) -> None:
    registry = await PostgresRegistry.open(dsn)
    try:
        stop_after_preparing_the_key_lookup()
        await registry.publish(ENDPOINT, PARTITION, URI, idempotency_key="stalled")
    finally:
        await registry.aclose()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
