"""The janitor removes staging no live run owns, and nothing a revision points at."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.core.janitor import Janitor
from orchestrator.model import InputRevision, Run, RunState
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.testing import (
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryWarehouse,
    ManualClock,
)
from orchestrator.testing.world import World, build_world

PREFIX = "/data/outputs"
LEASE = timedelta(minutes=10)
ENDPOINT = "di.golden.path.charon.top_artists"


def staging(stamp: str, partition: str = "2018-10-31") -> str:
    return f"{PREFIX}/{ENDPOINT}/{partition}/20181031T{stamp}.000000-0123456789ab"


async def write(world: World, folder: str) -> None:
    await world.storage.write(f"{folder}/part", b"a1\tArtist\t3\n")


async def staging_table(world: World, name: str) -> TableSpec:
    spec = TableSpec.parse(f"scio-playground:_incoming_EU.{name}")
    await world.warehouse.create_table(spec, [Column("a", "STRING")], [("x",)])
    return spec


async def stage_for_a_live_run(world: World, refs: dict[str, str]) -> None:
    run = await world.state.claim(
        task_id="T()", family="T", partition="2018-10-31", fingerprint="fp",
        inputs=[InputRevision("in", "/data/in", "rev-1")], owner="worker", lease=LEASE,
    )
    await world.state.set_staged(run.id, run.attempt, refs)


async def folders(world: World) -> set[str]:
    return {info.uri.rsplit("/", 1)[0] for info in await world.storage.list("/data/")}


@pytest.fixture
def world() -> World:
    return build_world(lease=LEASE)


async def test_only_unowned_unpublished_old_staging_goes(world: World) -> None:
    orphan, owned, published = staging("000001"), staging("000002"), staging("000003")
    for folder in (orphan, owned, published):
        await write(world, folder)
    await write(world, f"{PREFIX}/not-staging/some")  # not charon's naming: never touched
    await stage_for_a_live_run(world, {"textOutput": owned})
    await world.registry.publish(ENDPOINT, "2018-10-31", published)
    world.advance(LEASE)
    young = staging("000004")
    await write(world, young)

    swept = await world.janitor().sweep([PREFIX], [])
    assert swept.removed_folders == [orphan]
    assert swept.kept_young == 1
    assert await folders(world) == {owned, published, young, f"{PREFIX}/not-staging/some"}

    world.advance(LEASE)
    again = await world.janitor().sweep([PREFIX], [])
    assert again.removed_folders == [young]


async def test_staging_tables_no_live_run_owns_are_dropped(world: World) -> None:
    orphan = await staging_table(world, "_t_0000000001")
    owned = await staging_table(world, "_t_0000000002")
    await stage_for_a_live_run(world, {"bqOutput": str(owned)})
    world.advance(LEASE)
    young = await staging_table(world, "_t_0000000003")

    swept = await world.janitor().sweep([], ["scio-playground"])
    assert swept.removed_tables == [str(orphan)]
    assert await world.warehouse.table_info(orphan) is None
    assert await world.warehouse.table_info(owned) is not None
    assert await world.warehouse.table_info(young) is not None


async def test_a_dry_run_lists_and_removes_nothing(world: World) -> None:
    orphan = staging("000001")
    await write(world, orphan)
    table = await staging_table(world, "_t_0000000001")
    world.advance(LEASE)
    swept = await world.janitor().sweep([PREFIX], ["scio-playground"], dry_run=True)
    assert (swept.removed_folders, swept.removed_tables) == ([orphan], [str(table)])
    assert await folders(world) == {orphan}
    assert await world.warehouse.table_info(table) is not None


async def test_an_empty_staging_folder_a_dead_writer_made_goes_too(tmp_path: Path) -> None:
    """A job killed between making its output folder and writing into it leaves the
    folder alone on a file system; its empty parents go with it, the prefix stays."""
    storage = LocalStorage(tmp_path)
    prefix = f"{tmp_path}/outputs"
    empty = f"{prefix}/{ENDPOINT}/2018-10-31/20181031T000001.000000-0123456789ab"
    await anyio.Path(empty, "beam-temp").mkdir(parents=True)
    young = f"{prefix}/{ENDPOINT}/2018-11-01/20181101T000001.000000-0123456789ab"
    await anyio.Path(young).mkdir(parents=True)
    old = (datetime.now(UTC) - LEASE * 2).timestamp()
    for path in (f"{empty}/beam-temp", empty):
        os.utime(path, (old, old))
    clock = ManualClock(datetime.now(UTC))
    janitor = Janitor(storage, InMemoryWarehouse(), InMemoryRegistry(),
                      InMemoryStateStore(now=clock), LEASE, "EU", clock=clock)
    swept = await janitor.sweep([prefix], [])
    assert swept.removed_folders == [empty]
    assert swept.kept_young == 1
    assert await anyio.Path(young).is_dir()
    clock.advance(LEASE * 2)  # the partition's folder, left empty: gone once as old as a lease
    await janitor.sweep([prefix], [])
    assert not await anyio.Path(f"{prefix}/{ENDPOINT}/2018-10-31").exists()
    assert await anyio.Path(prefix).is_dir()


async def test_runs_nobody_took_over_for_a_lease_are_ended_not_publications(
    world: World,
) -> None:
    running = await world.state.claim(
        task_id="Lost(n=1)", family="Lost", partition="", fingerprint="fp", inputs=[],
        owner="a-dead-worker", lease=LEASE,
    )
    publishing = await world.state.claim(
        task_id="Lost(n=2)", family="Lost", partition="", fingerprint="fp", inputs=[],
        owner="a-dead-worker", lease=LEASE,
    )
    await world.state.begin_publishing(publishing.id, 1)
    world.advance(LEASE)  # the leases ran out just now: not yet abandoned
    assert (await world.janitor().sweep([PREFIX], [])).abandoned == []
    world.advance(LEASE)
    swept = await world.janitor().sweep([PREFIX], [])
    assert (swept.abandoned, swept.stalled) == ([running.id], [publishing.id])
    ended = await world.state.get("Lost(n=1)", "fp")
    assert ended is not None
    assert (ended.state, ended.failures) == (RunState.FAILED, 1)
    assert "abandoned" in (ended.error or "")
    still = await world.state.get("Lost(n=2)", "fp")
    assert still is not None
    assert still.state is RunState.PUBLISHING


async def test_an_abandoned_run_a_daemon_watches_is_left_to_it(world: World) -> None:
    run = await world.state.claim(
        task_id="Watched()", family="Watched", partition="", fingerprint="fp", inputs=[],
        owner="a-dead-worker", lease=LEASE,
    )
    world.advance(LEASE * 2)
    offered: list[str] = []

    def adopt(abandoned: Run) -> bool:
        offered.append(abandoned.task_id)
        return True

    swept = await world.janitor().sweep([PREFIX], [], adopt=adopt)
    assert (swept.adopted, swept.abandoned, offered) == ([run.id], [], ["Watched()"])
    still = await world.state.get("Watched()", "fp")
    assert still is not None
    assert still.state is RunState.RUNNING
