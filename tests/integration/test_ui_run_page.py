"""The run page's live log (``/runs/{id}/log``), the partition page that says why a
partition is not running, and the grid's *ready*, over a daemon on an in-memory world."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import aiohttp
import anyio

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.daemon.ui.runlog import CHUNK_BYTES
from orchestrator.model import Run, RunState
from orchestrator.testing.world import DaemonWorld
from tests.support.browser import served_ui, server_sent
from tests.support.worlds import DAY, make_world, publish_day

OTHER_DAY = "2018-10-30"


async def active_run(world: DaemonWorld) -> Run:
    with anyio.fail_after(5):
        while not (runs := await world.state.list_runs(state=RunState.RUNNING)):
            await anyio.sleep(0.01)
    return runs[0]


async def log_events(session: aiohttp.ClientSession, url: str, run_id: str, *,
                     resume_at: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    headers = {} if resume_at is None else {"Last-Event-ID": resume_at}
    async with session.get(f"{url}/runs/{run_id}/log", headers=headers) as response:
        assert response.content_type == "text/event-stream"
        with anyio.fail_after(10):
            return [event async for event in server_sent(response.content)]


def logged(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [line for kind, data in events if kind == "log" for line in data["lines"]]


async def test_a_running_job_s_log_streams_live_and_the_stream_ends_with_the_run() -> None:
    world = make_world()
    world.runner.output = ("<script>alert(1)</script> & more", "second line")
    world.runner.gate = anyio.Event()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        run = await active_run(world)
        async with session.get(f"{url}/runs/{run.id}/log") as response:
            seen: list[str] = []
            with anyio.fail_after(10):
                async for kind, data in server_sent(response.content):
                    assert kind == "log"  # not the end: the job still runs
                    seen += data["lines"]
                    if "second line" in seen:
                        break
                world.runner.gate.set()
                events = [event async for event in server_sent(response.content)]
        page = await (await session.get(f"{url}/runs/{run.id}")).text()
    assert seen[0].endswith("attempt 1: starting the job")
    assert seen[1].endswith("job fake-1 started")
    assert seen[2:] == ["<script>alert(1)</script> & more", "second line"]
    assert logged(events)[-1].endswith("the job finished")
    assert events[-1] == ("end", {"state": "succeeded"})
    assert "<script>alert" not in page  # the page itself shows the log only as text


async def test_a_long_log_comes_in_bounded_chunks_and_resumes_where_it_was_left() -> None:
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        with anyio.fail_after(5):
            while not (done := await world.state.list_runs(state=RunState.SUCCEEDED)):
                await anyio.sleep(0.01)
        [run] = done
        before = await world.adapters.run_logs.read(run.id, 0, 10**9) or b""
        lines = [f"line {number:05d} " + "x" * 40 for number in range(3000)]
        for line in lines:
            await world.adapters.run_logs.append(run.id, line)
        events = await log_events(session, url, run.id)
        resumed = await log_events(session, url, run.id, resume_at=str(len(before) + len(
            "".join(f"{line}\n" for line in lines[:10]))))
        # An offset no file has (more digits than Python reads): from the start.
        from_start = await log_events(session, url, run.id, resume_at="9" * 5000)
    chunks = [data["lines"] for kind, data in events if kind == "log"]
    assert len(chunks) > 1
    assert all(len("\n".join(chunk).encode()) <= CHUNK_BYTES for chunk in chunks)
    # After the job's own lines, every line once, whole.
    assert logged(events)[before.count(b"\n"):] == lines
    assert events[-1] == ("end", {"state": "succeeded"})
    assert logged(resumed)[:2] == lines[10:12]
    assert logged(from_start) == logged(events)


async def test_a_log_another_worker_keeps_is_named_not_shown() -> None:
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        task = world.daemon.watch.task(world.daemon.watch.roots[0])
        run = await world.state.claim(
            task_id=task.task_id, family=task.task_family, partition=task.partition_label,
            fingerprint="f" * 16, inputs=[], owner="replica-b:42", lease=timedelta(hours=1))
        events = await log_events(session, url, run.id)
    assert events[0] == ("missing", {
        "text": "the job's log is kept by worker replica-b:42, which runs it"})
    assert events[-1][0] == "end"


async def test_an_unknown_run_s_log_is_a_json_404() -> None:
    async with served_ui(make_world()) as url, aiohttp.ClientSession() as session, \
            session.get(f"{url}/runs/%3Cnone%3E/log") as response:
        assert response.status == 404
        assert (await response.json())["code"] == "not_found"


async def test_a_waiting_partition_s_page_names_the_input_it_waits_for() -> None:
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await world.wait_for(lambda: len(world.daemon.roots) == 2 and all(
            state.verdict is not None for state in world.daemon.roots.values()))
        grid = await (await session.get(url)).text()
        page = await (await session.get(f"{url}/partitions/top_artists/{DAY}")).text()
    assert f'href="/partitions/top_artists/{DAY}">waiting</a>' in grid
    assert "waiting for input" in page
    assert END_CONTENT_FACT in page


async def test_a_partition_with_its_inputs_waiting_for_a_place_is_ready() -> None:
    world = make_world(max_runs=1)
    world.runner.gate = anyio.Event()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        running = await active_run(world)
        await publish_day(world, OTHER_DAY)
        with anyio.fail_after(5):
            while f'class="cell s-ready" data-key="top_artists/{OTHER_DAY}"' not in (
                    await (await session.get(url)).text()):
                await anyio.sleep(0.02)
        page = await (await session.get(f"{url}/partitions/top_artists/{OTHER_DAY}")).text()
        world.runner.gate.set()
    assert running.partition == DAY
    assert "max_concurrent_runs: 1 of 1 running" in page


async def test_a_dataflow_job_links_to_its_console_page() -> None:
    world = make_world()
    world.runner.gate = anyio.Event()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        run = await active_run(world)
        await world.wait_for(lambda: world.runner.running == 1)  # its own id recorded
        await world.state.set_job_id(run.id, run.attempt,
                                     "projects/p-1/locations/europe-west1/jobs/2018-10-31_x")
        page = await (await session.get(f"{url}/runs/{run.id}")).text()
        world.runner.gate.set()
    assert ('href="https://console.cloud.google.com/dataflow/jobs/europe-west1/2018-10-31_x'
            '?project=p-1"') in page


async def test_an_open_log_stream_does_not_hold_the_server_s_shutdown() -> None:
    world = make_world()
    world.runner.gate = anyio.Event()
    async with aiohttp.ClientSession() as session:
        async with served_ui(world) as url:
            await publish_day(world)
            run = await active_run(world)
            response = await session.get(f"{url}/runs/{run.id}/log")
            await response.content.readline()  # the stream is open
            stopping = anyio.current_time()
        # The server waits SHUTDOWN_SECONDS (5) for a stream that does not end.
        assert anyio.current_time() - stopping < 3
        response.close()
