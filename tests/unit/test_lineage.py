"""OpenLineage events of runs over in-memory fakes: what a run maps to, and that
emission never holds a run up or fails it."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

import anyio
import pytest

from jobs.top_artists import END_CONTENT_FACT, TopArtistsJob
from orchestrator.core.report import Status
from orchestrator.model import RunState
from orchestrator.stores.lineage.base import (
    Event,
    Lineage,
    Naming,
    QueuedEmitter,
    namespace_of,
    sending,
    storage_dataset,
)
from orchestrator.testing.lineage import RecordingEmitter
from orchestrator.testing.world import World, build_world
from tests.support.worlds import publish_day

JOB = TopArtistsJob(date="2018-10-31", top_n=10)
OUTPUT = "di.golden.path.charon.top_artists"
NAMING = Naming(job_namespace="team-a", registry="http://registry:8090",
                warehouse="bigquery")


def with_lineage(world: World, emitter: Any) -> World:
    adapters = dataclasses.replace(world.adapters, lineage=Lineage(emitter, NAMING))
    return dataclasses.replace(world, adapters=adapters)


def required_fields(event: Event) -> None:
    """What the OpenLineage spec requires of a RunEvent and its facets."""
    assert event["eventType"] in {"START", "COMPLETE", "FAIL", "ABORT", "OTHER"}
    assert event["producer"].startswith("https://")
    assert event["schemaURL"].startswith("https://openlineage.io/spec/")
    uuid.UUID(event["run"]["runId"])
    assert event["job"]["namespace"]
    assert event["job"]["name"]
    for dataset in [*event["inputs"], *event["outputs"]]:
        assert dataset["namespace"]
        assert dataset["name"]
    facets = [*event["run"]["facets"].values(),
              *(f for d in [*event["inputs"], *event["outputs"]] for f in d["facets"].values())]
    for facet in facets:
        assert facet["_producer"]
        assert facet["_schemaURL"]


def by_name(datasets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["name"]: d for d in datasets}


async def test_a_run_emits_start_then_complete_with_its_inputs_and_what_it_published() -> None:
    recorder = RecordingEmitter()
    world = with_lineage(build_world(real_time=True), recorder)
    stream = (await publish_day(world)).id
    report = await world.engine().run(JOB)
    assert report.exit_code == 0
    [run] = await world.state.list_runs()
    assert [e["eventType"] for e in recorder.events] == ["START", "COMPLETE"]
    start, complete = recorder.events
    for event in recorder.events:
        required_fields(event)
        assert event["run"]["runId"] == run.id
        assert event["job"] == {"namespace": "team-a", "name": "TopArtistsJob", "facets": {}}
        facet = event["run"]["facets"]["charon_run"]
        assert (facet["partition"], facet["fingerprint"]) == ("2018-10-31", run.fingerprint)
        assert facet["inputRevisions"] == {i.key: i.revision_id for i in run.inputs}
    inputs = by_name(complete["inputs"])
    assert inputs[END_CONTENT_FACT]["namespace"] == "http://registry:8090"
    assert inputs[END_CONTENT_FACT]["facets"]["version"]["datasetVersion"] == stream
    assert inputs[END_CONTENT_FACT]["facets"]["charon_partition"]["partition"] == "2018-10-31"
    table = "scio-playground.di_golden_path.track_entity_20181031"
    assert inputs[table]["namespace"] == "bigquery"
    outputs = by_name(complete["outputs"])
    assert outputs[OUTPUT]["facets"]["version"]["datasetVersion"] == run.outputs["textOutput"]
    assert "scio-playground.charon.top_artists_daily20181031" in outputs
    # At the start the outputs are named, with no version yet.
    assert "version" not in by_name(start["outputs"])[OUTPUT]["facets"]


async def test_a_failed_run_emits_fail_with_the_error_message() -> None:
    recorder = RecordingEmitter()
    world = with_lineage(build_world(real_time=True), recorder)
    world.runner.fail_with = "the pipeline ran out of memory"
    await publish_day(world)
    report = await world.engine().run(JOB)
    assert report.outcomes[JOB.task_id].status is Status.FAILED
    assert [e["eventType"] for e in recorder.events] == ["START", "FAIL"]
    [fail] = recorder.of("FAIL")
    required_fields(fail)
    error = fail["run"]["facets"]["errorMessage"]
    assert "ran out of memory" in error["message"]
    assert error["programmingLanguage"] == "python"


async def test_a_receiver_that_hangs_or_fails_does_not_hold_up_or_fail_a_run() -> None:
    async def hang(event: Event) -> None:
        await anyio.sleep_forever()

    emitter = QueuedEmitter(hang, queue=1)
    world = with_lineage(build_world(real_time=True), emitter)
    await publish_day(world)
    with anyio.fail_after(10):
        async with sending(emitter, close_timeout=0.1):
            report = await world.engine().run(JOB)
    assert report.exit_code == 0
    [run] = await world.state.list_runs()
    assert run.state is RunState.SUCCEEDED
    # The sender took the first event and hangs on it; the queue held the second.
    assert emitter.counts.sent == 0


async def test_a_full_queue_drops_new_events_and_counts_them() -> None:
    sent: list[str] = []

    async def send(event: Event) -> None:
        sent.append(event["eventType"])

    emitter = QueuedEmitter(send, queue=2)
    for kind in ("START", "COMPLETE", "FAIL"):
        await emitter.emit({"eventType": kind, "run": {"runId": "r"}})
    assert emitter.counts.dropped == 1
    async with sending(emitter, close_timeout=5):
        pass
    assert sent == ["START", "COMPLETE"]
    assert emitter.counts.sent == 2


async def test_a_failing_send_is_logged_and_counted_and_the_next_one_still_goes() -> None:
    sent: list[str] = []

    async def flaky(event: Event) -> None:
        if event["eventType"] == "START":
            raise OSError("connection refused")
        sent.append(event["eventType"])

    emitter = QueuedEmitter(flaky, queue=10)
    async with sending(emitter, close_timeout=5):
        await emitter.emit({"eventType": "START", "run": {"runId": "r"}})
        await emitter.emit({"eventType": "COMPLETE", "run": {"runId": "r"}})
    assert (emitter.counts.failed, emitter.counts.sent, sent) == (1, 1, ["COMPLETE"])


async def test_the_block_error_comes_out_unwrapped() -> None:
    async def send(event: Event) -> None:
        """Sent nowhere."""

    with pytest.raises(ValueError, match="the run's own error"):
        async with sending(QueuedEmitter(send, queue=1), close_timeout=1):
            raise ValueError("the run's own error")


def test_dataset_names_follow_openlineage_conventions() -> None:
    assert storage_dataset("gs://bucket/data/streams.tsv", None).namespace == "gs://bucket"
    assert storage_dataset("gs://bucket/data/streams.tsv", None).name == "data/streams.tsv"
    assert storage_dataset("/srv/data/x.tsv", "v1").namespace == "file"
    assert namespace_of("postgresql://user:secret@db.example:5433/toplists") == (
        "postgres://db.example:5433")
    naming = Naming(postgres="postgres://db:5432", postgres_database="toplists")
    assert naming.postgres_dataset("artist_toplist", None).name == "toplists.public.artist_toplist"
    assert naming.postgres_dataset("s.t", None).name == "toplists.s.t"
