"""A command whose output's reader goes away before the end (``charon registry ls ... |
head``): the shells' code for it, 141, as a command killed by SIGPIPE, and no traceback
(it was a 40-line one)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import anyio

from orchestrator.stores.registry.sqlite import SqliteRegistry
from tests.acceptance.conftest import CHARON, Cli, popen

ENDPOINT, PARTITION = "listed.output", "2018-10-31"
REVISIONS = 600
"""Lines of about 180 bytes: more than a pipe holds (64 KiB), so the listing is still
being written when its reader goes."""


def test_a_listing_whose_reader_stops_early_ends_quietly(charon: Cli) -> None:
    anyio.run(publish_many, charon.home / "registry.sqlite")
    with popen([CHARON, "registry", "ls", ENDPOINT, PARTITION], env=charon.env,
               stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("REVISION_ID")  # `head -1`
        process.stdout.close()
        stderr = process.stderr.read()
        process.wait(timeout=60)
    assert (process.returncode, stderr) == (141, "")


async def publish_many(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    registry = await SqliteRegistry.open(path)
    try:
        for n in range(REVISIONS):
            await registry.publish(ENDPOINT, PARTITION, f"/data/{n:04}/{'x' * 150}")
    finally:
        await registry.aclose()
