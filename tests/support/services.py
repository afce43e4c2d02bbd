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
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from orchestrator.service.app import running_service
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry.base import Registry

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"
START_TIMEOUT_SECONDS = 30.0


def _accepting() -> bool:
    try:
        with socket.create_connection((PG_HOST, PG_PORT), timeout=1):
            return True
    except OSError:
        return False


def cluster_version() -> str:
    versions = [entry.name for entry in Path("/etc/postgresql").iterdir() if entry.is_dir()]
    if len(versions) != 1:
        raise RuntimeError(f"expected one PostgreSQL version in /etc/postgresql, found {versions}")
    return versions[0]


def ensure_postgres() -> None:
    """Make sure the local server accepts connections, starting it if needed."""
    if _accepting():
        return
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster_version(), "main", "start"]
    subprocess.run(command, check=True, capture_output=True, timeout=START_TIMEOUT_SECONDS)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _accepting():
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not come up on {PG_HOST}:{PG_PORT}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin DSN of a running local PostgreSQL server."""
    ensure_postgres()
    return ADMIN_DSN


@pytest.fixture
async def postgres_dsn(postgres_server: str) -> AsyncIterator[str]:
    """The DSN of a fresh database, dropped (connections and all) after the test."""
    name = f"charon_test_{uuid.uuid4().hex}"
    # The name is ours (a uuid), never input; identifiers cannot be bound parameters.
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"
    finally:
        admin = await asyncpg.connect(postgres_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


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
