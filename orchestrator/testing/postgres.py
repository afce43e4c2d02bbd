"""The machine's PostgreSQL server, as tests and benchmarks use it: started when it is
down, and throwaway databases on it."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import asyncpg

HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
SERVER = f"postgresql://{USER}@{HOST}:{PORT}"
ADMIN_DSN = f"{SERVER}/postgres"
START_TIMEOUT_SECONDS = 30.0


def _accepting() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1):
            return True
    except OSError:
        return False


def cluster_version() -> str:
    versions = [entry.name for entry in Path("/etc/postgresql").iterdir() if entry.is_dir()]
    if len(versions) != 1:
        raise RuntimeError(f"expected one PostgreSQL version in /etc/postgresql, found {versions}")
    return versions[0]


def ensure_postgres() -> None:
    """Make sure the local server accepts connections, starting it if needed (blocks)."""
    if _accepting():
        return
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", cluster_version(), "main", "start"]
    # A fixed argument list, no shell; the version comes from the folder names. Its exit
    # status is not trusted either way: the suite's worker processes may each find the
    # server down, and all but the first are told it is running already.
    started = subprocess.run(command, capture_output=True, text=True,  # noqa: S603
                             timeout=START_TIMEOUT_SECONDS, check=False)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _accepting():
        if time.monotonic() > deadline:
            raise RuntimeError(f"PostgreSQL did not come up on {HOST}:{PORT}:"
                               f" {started.stderr.strip() or started.returncode}")
        time.sleep(0.2)


@asynccontextmanager
async def temporary_database(prefix: str) -> AsyncIterator[str]:
    """The DSN of a fresh, uniquely named database, dropped (connections and all) at the
    end, even when the block is cancelled."""
    await anyio.to_thread.run_sync(ensure_postgres)
    name = f"{prefix}_{uuid.uuid4().hex}"
    # The name is ours (a uuid), never input; identifiers cannot be bound parameters.
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{SERVER}/{name}"
    finally:
        with anyio.CancelScope(shield=True):
            admin = await asyncpg.connect(ADMIN_DSN)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()
