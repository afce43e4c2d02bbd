"""`charon run` sends its runs' OpenLineage events (through openlineage-python's
transports) to a receiver on loopback, as Marquez would take them; the file transport
writes them one per line, the console one on stderr; a receiver that is down, errs or
hangs fails and holds up no run."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from orchestrator.web.http import listening
from tests.acceptance.conftest import CHARON, Cli, free_port

pytestmark = pytest.mark.slow

LUIGI = ("--module", "jobs.luigi_top_artists", "AggregateArtists", "--date-interval")
ENDPOINT = "/api/v1/lineage"


async def charon_run(cli: Cli, *args: str) -> subprocess.CompletedProcess[bytes]:
    """The command as a subprocess, without blocking the loop the receiver runs on."""
    return await anyio.run_process([CHARON, *args], env=cli.env, check=False)


def sample_streams(charon: Cli, events: int) -> None:
    made = charon("sample-data", "--streams", "--date-interval", "2012-06",
                  "--events", str(events))
    assert made.returncode == 0, made.stderr


@asynccontextmanager
async def receiving(charon: Cli, lineage: Callable[[web.Request], Awaitable[web.Response]],
                    **environ: str) -> AsyncIterator[Cli]:
    """A ``charon`` whose runs send their events to ``lineage`` on loopback, for the block."""
    app = web.Application()
    app.router.add_post(ENDPOINT, lineage)
    async with listening(app, "127.0.0.1", 0) as port:
        yield Cli(charon.home, {"CHARON_LINEAGE__KIND": "http",
                                "CHARON_LINEAGE__URL": f"http://127.0.0.1:{port}{ENDPOINT}",
                                **environ})


def check_required_fields(event: dict[str, Any]) -> None:
    """The OpenLineage RunEvent's required fields (openlineage-python ships no schema)."""
    assert event["eventType"] in {"START", "COMPLETE", "FAIL", "ABORT", "OTHER"}
    assert event["producer"]
    assert event["schemaURL"]
    assert event["eventTime"]
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"] == "charon-test"
    for dataset in [*event["inputs"], *event["outputs"]]:
        assert dataset["namespace"]
        assert dataset["name"]
        for facet in dataset["facets"].values():
            assert facet["_producer"]
            assert facet["_schemaURL"]


def corrupt_streams(home: Path, day: str) -> None:
    [streams] = [p for p in home.rglob(f"*{day}*") if p.is_file()]
    with streams.open("a") as out:
        out.write("not a stream line\n")


async def test_runs_send_start_complete_and_fail_to_an_http_receiver(charon: Cli) -> None:
    received: list[dict[str, Any]] = []
    tokens: list[str | None] = []

    async def lineage(request: web.Request) -> web.Response:
        received.append(await request.json())
        tokens.append(request.headers.get("Authorization"))
        return web.json_response({}, status=201)

    sample_streams(charon, 50)
    async with receiving(charon, lineage, CHARON_LINEAGE__NAMESPACE="charon-test",
                         CHARON_LINEAGE_API_KEY="s3cret") as cli:
        ran = await charon_run(cli, "run", *LUIGI, "2012-06-01-2012-06-03")
        assert ran.returncode == 0, ran.stderr
        corrupt_streams(charon.home, "2012_06_05")
        failed = await charon_run(cli, "run", *LUIGI, "2012-06-04-2012-06-06")
        assert failed.returncode != 0
    assert set(tokens) == {"Bearer s3cret"}
    for event in received:
        check_required_fields(event)
    kinds = [(e["eventType"], e["job"]["name"]) for e in received]
    assert kinds == [("START", "AggregateArtists"), ("COMPLETE", "AggregateArtists"),
                     ("START", "AggregateArtists"), ("FAIL", "AggregateArtists")]
    start, complete, _, fail = received
    assert start["run"]["runId"] == complete["run"]["runId"] != fail["run"]["runId"]
    # Luigi's interval leaves its last day out: two days' files, in the file namespace.
    assert [(d["namespace"], Path(d["name"]).name) for d in complete["inputs"]] == [
        ("file", "streams_2012_06_01_faked.tsv"), ("file", "streams_2012_06_02_faked.tsv")]
    [output] = complete["outputs"]
    assert output["name"] == "charon.examples.artist_streams"
    assert output["facets"]["charon_partition"]["partition"] == "2012-06-01-2012-06-03"
    assert output["facets"]["version"]["datasetVersion"]
    assert "expected 'timestamp artist track'" in (
        fail["run"]["facets"]["errorMessage"]["message"])


def test_the_file_transport_writes_one_event_per_line(charon: Cli, tmp_path: Path) -> None:
    sample_streams(charon, 20)
    events = tmp_path / "lineage" / "events.jsonl"
    cli = Cli(charon.home, {"CHARON_LINEAGE__KIND": "file",
                            "CHARON_LINEAGE__PATH": str(events)})
    ran = cli("run", *LUIGI, "2012-06-01-2012-06-02")
    assert ran.returncode == 0, ran.stderr
    lines = events.read_text().splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == ["START", "COMPLETE"]


def test_an_unreachable_receiver_fails_no_run(charon: Cli) -> None:
    sample_streams(charon, 20)
    cli = Cli(charon.home, {"CHARON_LINEAGE__KIND": "http",
                            "CHARON_LINEAGE__URL": f"http://127.0.0.1:{free_port()}/lineage",
                            "CHARON_LINEAGE__TIMEOUT_SECONDS": "2"})
    ran = cli("run", *LUIGI, "2012-06-01-2012-06-02")
    assert ran.returncode == 0, ran.stderr
    assert "AggregateArtists(date_interval=2012-06-01-2012-06-02): ran" in ran.stdout
    assert '"event": "lineage event not sent"' in ran.stderr


def test_the_console_transport_writes_one_event_per_line_on_stderr(charon: Cli) -> None:
    sample_streams(charon, 20)
    cli = Cli(charon.home, {"CHARON_LINEAGE__KIND": "console",
                            "CHARON_LINEAGE__NAMESPACE": "charon-test"})
    ran = cli("run", *LUIGI, "2012-06-01-2012-06-02")
    assert ran.returncode == 0, ran.stderr
    # Among charon's own log lines, each a JSON object too.
    events = [e for e in map(json.loads, ran.stderr.splitlines()) if "eventType" in e]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    for event in events:
        check_required_fields(event)
    assert "eventType" not in ran.stdout


HANG_SECONDS = 60


@pytest.mark.parametrize("answer", ["errs", "hangs"])
async def test_a_receiver_that_errs_or_hangs_fails_and_holds_up_no_run(
    charon: Cli, answer: str
) -> None:
    released = anyio.Event()

    async def lineage(request: web.Request) -> web.Response:
        await request.read()
        if answer == "hangs":
            with anyio.move_on_after(HANG_SECONDS):
                await released.wait()
        return web.json_response({"error": "down for maintenance"}, status=503)

    sample_streams(charon, 20)
    async with receiving(charon, lineage, CHARON_LINEAGE__TIMEOUT_SECONDS="1") as cli:
        began = time.monotonic()
        ran = await charon_run(cli, "run", *LUIGI, "2012-06-01-2012-06-02")
        took = time.monotonic() - began
        released.set()
    stderr = ran.stderr.decode()
    assert ran.returncode == 0, stderr
    assert "AggregateArtists(date_interval=2012-06-01-2012-06-02): ran" in ran.stdout.decode()
    assert '"event": "lineage event not sent"' in stderr
    # Each event gets one attempt within lineage.timeout_seconds, whatever the receiver.
    assert took < HANG_SECONDS / 2
