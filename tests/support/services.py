"""The real services integration tests use: the local PostgreSQL server, the registry service.

``postgres_dsn`` yields the DSN of a fresh, uniquely named database, dropped
afterwards. The server is the machine's own (127.0.0.1:5432, trust auth, user
postgres); when it is not running it is started once with ``pg_ctlcluster``.
Registered for every test module by ``tests/conftest.py``.

``registry_service`` runs ``charon registry serve``'s application in process, on a
free loopback port (or a given one, to restart a service where it was).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from orchestrator.service.app import running_service
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry.base import Registry
from orchestrator.testing.postgres import ADMIN_DSN, ensure_postgres, temporary_database


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN of a running local PostgreSQL server."""
    ensure_postgres()
    return ADMIN_DSN


@pytest.fixture
async def postgres_dsn(postgres_server: str) -> AsyncIterator[str]:
    """The DSN of a fresh database, dropped (connections and all) after the test."""
    async with temporary_database("charon_test") as dsn:
        yield dsn


@asynccontextmanager
async def registry_service(
    registry: Registry, options: ServiceOptions | None = None, *, port: int = 0
) -> AsyncIterator[str]:
    """The service over ``registry`` on 127.0.0.1 and ``port`` (0: a free one); yields
    its base URL.

    It runs in an asyncio task of its own because pytest-asyncio may set a fixture up
    and tear it down in different tasks, which a task group (the service has one)
    does not allow.
    """
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def run() -> None:
        async with running_service(
            registry, options or ServiceOptions(), host="127.0.0.1", port=port
        ) as url:
            started.set_result(url)
            await stop.wait()

    task = asyncio.create_task(run())
    either: set[asyncio.Future[Any]] = {task, started}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        await task  # raises why the service failed to start
        raise RuntimeError("the registry service stopped before it started")
    try:
        yield started.result()
    finally:
        stop.set()
        await task
