"""A charon process that stops itself (SIGSTOP) in the middle of a statement, holding an
advisory lock that every other process doing the same thing takes: ``publish`` holds
the PostgreSQL registry's publish lock, ``claim`` a task's claim lock in the PostgreSQL
state store. The server has parsed the statement and waits for its values. asyncpg
sends a statement it has not used on a connection yet as Parse, Describe and Flush, and
its values (Bind, Execute, Sync) after the answer: a process paused between the two
leaves its session ``active``, waiting for the client, where the server's
``idle_in_transaction_session_timeout`` never applies.
Usage: python -m tests.support.stalled_in_statement DSN publish|claim
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta
from typing import Any

import anyio
import asyncpg

from orchestrator.stores.registry.postgres import SELECT_BY_IDEMPOTENCY_KEY, PostgresRegistry
from orchestrator.stores.state.postgres import SELECT_FOR_CLAIM, PostgresStateStore

ENDPOINT, PARTITION, URI = "stalled.output", "2018-10-31", "/data/stalled"
TASK_ID = "Stalled(date=2018-10-31)"


def stop_after_preparing(stop_at: str) -> None:
    # Where the pause must fall: asyncpg's own step, not a typed API of it.
    prepare = asyncpg.Connection._get_statement  # type: ignore[attr-defined]

    async def then_stop(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        statement = await prepare(self, query, *args, **kwargs)
        if query == stop_at:
            os.kill(os.getpid(), signal.SIGSTOP)
        return statement

    asyncpg.Connection._get_statement = then_stop  # type: ignore[attr-defined]


async def publish(dsn: str) -> None:
    registry = await PostgresRegistry.open(dsn)
    try:
        stop_after_preparing(SELECT_BY_IDEMPOTENCY_KEY)
        await registry.publish(ENDPOINT, PARTITION, URI, idempotency_key="stalled")
    finally:
        await registry.aclose()


async def claim(dsn: str) -> None:
    store = await PostgresStateStore.open(dsn)
    try:
        stop_after_preparing(SELECT_FOR_CLAIM)
        await store.claim(task_id=TASK_ID, family="Stalled", partition=PARTITION,
                          fingerprint="stalled", inputs=(), owner="stalled",
                          lease=timedelta(minutes=1))
    finally:
        await store.aclose()


if __name__ == "__main__":
    anyio.run({"publish": publish, "claim": claim}[sys.argv[2]], sys.argv[1])
