"""DataflowJobRunner against the fake Dataflow REST API (tests/support/fake_dataflow.py).

The submitter is tests/support/fake_dataflow_pipeline.py, run as a subprocess the way the
launcher runs a Beam pipeline; it creates the job on the fake server as Beam would.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import anyio
import pytest

from jobs.runners.dataflow import (
    TERMINAL_STATES,
    DataflowApi,
    DataflowError,
    DataflowJobRunner,
    JobRef,
)
from orchestrator.adapters import open_job_runner
from orchestrator.config import load_settings
from orchestrator.errors import JobFailed, JobLost
from orchestrator.stores.drivers.gcp import GoogleApi, RetryPolicy
from orchestrator.tasks.commands import job_name
from tests.contracts.job_runner import Fate, JobRunnerContract, Jobs
from tests.support.fake_dataflow import FakeDataflowServer
from tests.support.fault_proxy import UNREADABLE_ANSWERS

NAME = job_name("TopArtistsJob", "2018-10-31", "0123456789abcdef")


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDataflowServer]:
    server = FakeDataflowServer()
    async with server.serve() as root:
        # The fake pipeline (a subprocess) submits its job here.
        monkeypatch.setenv("CHARON_DATAFLOW__API_ROOT", root)
        yield server


@pytest.fixture
async def runner(fake: FakeDataflowServer) -> AsyncIterator[DataflowJobRunner]:
    async with aiohttp.ClientSession() as session:
        google = GoogleApi(session, emulated=True, scopes=[],
                           retry=RetryPolicy(attempts=3, initial_seconds=0.01))
        yield DataflowJobRunner(DataflowApi(google, fake.root), poll_seconds=0.02,
                                project="p", region="r")


def pipeline(tmp_path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.support.fake_dataflow_pipeline", "--runner=DataflowRunner",
            "--project=p", "--region=r", f"--textOutput={tmp_path / 'out'}", *extra]


class TestDataflowJobRunner(JobRunnerContract):
    @pytest.fixture
    def jobs(self, fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path) -> Jobs:
        ends = {Fate.SUCCEEDS: "JOB_STATE_DONE", Fate.FAILS: "JOB_STATE_FAILED"}

        async def settle(job_id: str, fate: Fate) -> None:
            if fate in ends:  # as the job would end in the cloud, once submitted
                fake.set_state(JobRef.parse(job_id, project="", region="").id, ends[fate])

        return Jobs(runner, lambda fate: pipeline(tmp_path), settle=settle,
                    unknown_id="projects/p/locations/r/jobs/2018-10-31_00_00_00-999")


async def eventually(check: Callable[[], bool], timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not check():
            await anyio.sleep(0.01)


class Recorder:
    """on_started: what the engine would write to the state store."""

    def __init__(self, fake: FakeDataflowServer) -> None:
        self.fake = fake
        self.ids: list[str] = []
        self.state_when_recorded = ""

    async def __call__(self, job_id: str) -> None:
        self.ids.append(job_id)
        self.state_when_recorded = self.fake.state(JobRef.parse(job_id, project="",
                                                                region="").id)

    @property
    def job(self) -> str:
        return JobRef.parse(self.ids[0], project="", region="").id


async def run_until_recorded_then(
    runner: DataflowJobRunner, argv: list[str], recorder: Recorder, end_state: str
) -> None:
    """Run the job; once its id is recorded, end it in ``end_state``."""
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: runner.run(argv, job_name=NAME, on_started=recorder))
            await eventually(lambda: bool(recorder.ids))
            recorder.fake.set_state(recorder.job, end_state)
    except ExceptionGroup as errors:
        [error] = errors.exceptions  # the run's own error, for pytest.raises
        raise error from None


@pytest.mark.parametrize("blocking", [False, True], ids=["non-blocking", "blocking"])
async def test_the_job_id_is_recorded_before_the_job_ends_and_done_succeeds(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path, blocking: bool
) -> None:
    argv = pipeline(tmp_path, *(["--blocking"] if blocking else []))
    recorder = Recorder(fake)
    await run_until_recorded_then(runner, argv, recorder, "JOB_STATE_DONE")
    assert recorder.state_when_recorded == "JOB_STATE_PENDING"  # recorded, then waited
    [job] = fake.jobs.values()
    assert recorder.ids == [f"projects/p/locations/r/jobs/{job.id}"]
    assert job.name == NAME  # the launcher passed --jobName
    assert fake.created == 1
    assert (tmp_path / "out" / "part").exists()


@pytest.mark.parametrize("state", ["JOB_STATE_FAILED", "JOB_STATE_CANCELLED"])
async def test_a_job_that_ends_badly_fails_the_run_with_its_console_url(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path, state: str
) -> None:
    recorder = Recorder(fake)
    with pytest.raises(JobFailed, match=f"ended in {state}") as failed:
        await run_until_recorded_then(runner, pipeline(tmp_path, "--blocking"), recorder,
                                      state)
    assert f"console.cloud.google.com/dataflow/jobs/r/{recorder.job}?project=p" in str(
        failed.value
    )


async def test_a_live_job_of_the_same_name_is_attached_to_not_submitted_again(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path
) -> None:
    earlier = fake.create(NAME, project="p", region="r")
    recorder = Recorder(fake)
    await run_until_recorded_then(runner, pipeline(tmp_path), recorder, "JOB_STATE_DONE")
    assert recorder.job == earlier
    assert fake.created == 1
    assert not (tmp_path / "out").exists()  # nothing was launched


async def test_a_quiet_submitter_is_found_by_name_among_ended_jobs_of_that_name(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path
) -> None:
    # Two failed attempts under the same name: more than one page of jobs.list.
    old = [fake.create(NAME, project="p", region="r", state="JOB_STATE_FAILED")
           for _ in range(2)]
    recorder = Recorder(fake)
    await run_until_recorded_then(runner, pipeline(tmp_path, "--fakeQuiet", "--blocking"),
                                  recorder, "JOB_STATE_DONE")
    assert recorder.job not in old
    assert fake.created == 3
    assert any("pageToken=" in request for request in fake.requests)


async def test_a_failed_submission_fails_with_its_log_tail(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path
) -> None:
    recorder = Recorder(fake)
    with pytest.raises(JobFailed, match="exited with code 3") as failed:
        await runner.run(pipeline(tmp_path, "--fakeExitCode=3"), job_name=NAME,
                         on_started=recorder)
    assert "the submission failed" in str(failed.value)
    assert (recorder.ids, fake.created) == ([], 0)


async def test_reattaching_to_a_running_job_waits_for_it(
    fake: FakeDataflowServer, runner: DataflowJobRunner
) -> None:
    job = fake.create(NAME, project="p", region="r")
    finished = anyio.Event()

    async def reattach() -> None:
        await runner.reattach(f"projects/p/locations/r/jobs/{job}")
        finished.set()

    async with anyio.create_task_group() as group:
        group.start_soon(reattach)
        await anyio.sleep(0.2)
        assert not finished.is_set()
        fake.set_state(job, "JOB_STATE_DONE")
    assert finished.is_set()
    assert fake.created == 1


async def test_reattaching_to_an_ended_or_unknown_job(
    fake: FakeDataflowServer, runner: DataflowJobRunner
) -> None:
    done = fake.create("done", project="p", region="r", state="JOB_STATE_DONE")
    failed = fake.create("failed", project="p", region="r", state="JOB_STATE_FAILED")
    with anyio.fail_after(1):
        await runner.reattach(done)  # a bare id: the configured project and region
    with pytest.raises(JobFailed, match="JOB_STATE_FAILED"):
        await runner.reattach(failed)
    with pytest.raises(JobLost, match="no job"):
        await runner.reattach("projects/p/locations/r/jobs/2018-10-31_00_00_00-999")
    with pytest.raises(JobLost):
        await runner.reattach("local:host:4242:1")  # a subprocess job from another runner


async def test_cancel_stops_a_running_job_and_leaves_an_ended_one_alone(
    fake: FakeDataflowServer, runner: DataflowJobRunner
) -> None:
    running = fake.create("running", project="p", region="r")
    await runner.cancel(f"projects/p/locations/r/jobs/{running}")
    with pytest.raises(JobFailed, match="JOB_STATE_CANCELLED"):
        await runner.reattach(running)  # CANCELLING, then CANCELLED

    done = fake.create("done", project="p", region="r", state="JOB_STATE_DONE")
    await runner.cancel(done)
    assert fake.state(done) == "JOB_STATE_DONE"
    assert not any(request.startswith("PUT") and done in request for request in fake.requests)


async def test_a_run_stopped_while_waiting_leaves_its_job_for_the_next_owner(
    fake: FakeDataflowServer, runner: DataflowJobRunner, tmp_path: Path
) -> None:
    """Its lease lost, or its daemon shutting down: whoever takes the run over reattaches."""
    recorder = Recorder(fake)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: runner.run(pipeline(tmp_path, "--blocking"), job_name=NAME,
                                            on_started=recorder))
        await eventually(lambda: bool(recorder.ids))
        group.cancel_scope.cancel()
    assert fake.state(recorder.job) not in TERMINAL_STATES
    assert not any(request.startswith("PUT") for request in fake.requests)


async def test_rate_limits_and_server_errors_are_retried_other_errors_are_not(
    fake: FakeDataflowServer, runner: DataflowJobRunner
) -> None:
    job = fake.create(NAME, project="p", region="r", state="JOB_STATE_DONE")
    fake.fail_next(429, 503)
    await runner.reattach(job)
    fake.fail_next(403)
    with pytest.raises(DataflowError, match="HTTP 403") as refused:
        await runner.reattach(job)
    assert not refused.value.transient


async def test_the_runner_the_settings_ask_for(fake: FakeDataflowServer) -> None:
    settings = load_settings({"CHARON_BEAM__RUNNER": "DataflowRunner",
                              "CHARON_BEAM__PROJECT": "p", "CHARON_BEAM__REGION": "r",
                              "CHARON_DATAFLOW__API_ROOT": fake.root,
                              "CHARON_DATAFLOW__POLL_INTERVAL_MS": "20"})
    job = fake.create(NAME, project="p", region="r", state="JOB_STATE_DONE")
    async with open_job_runner(settings) as runner:
        assert isinstance(runner, DataflowJobRunner)
        await runner.reattach(job)
    async with open_job_runner(load_settings({})) as local:
        assert not isinstance(local, DataflowJobRunner)


async def test_an_unreadable_answer_is_waited_out_like_an_unreachable_api(
    fake: FakeDataflowServer, runner: DataflowJobRunner
) -> None:
    """A broken proxy's answer in place of the job's state: while the job is followed it
    is one poll that could not read the state, never the run's end (the job runs on in
    the cloud); on reattaching, a transient error, as the API out of reach is."""
    job = fake.create(NAME, project="p", region="r")
    async with anyio.create_task_group() as group:
        group.start_soon(runner.reattach, job)
        await eventually(lambda: len(fake.requests) >= 1)
        fake.garble_next(*UNREADABLE_ANSWERS.values())
        read = len(fake.requests)
        await eventually(lambda: len(fake.requests) >= read + len(UNREADABLE_ANSWERS))
        fake.set_state(job, "JOB_STATE_DONE")
    fake.garble_next(UNREADABLE_ANSWERS["JSON nested 200,000 deep"])
    with pytest.raises(DataflowError, match="nested too deeply") as unreadable:
        await runner.reattach(job)
    assert unreadable.value.transient
