"""The job command line, pinned against the golden-path tutorial's ScioJobTask log line."""

from dataclasses import replace

import pytest

from jobs.top_artists import TopArtistsJob
from orchestrator.config import load_settings
from orchestrator.errors import UsageError
from orchestrator.model import InputRevision
from orchestrator.tasks.commands import beam_command
from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.task import BeamJobTask

GOLDEN_PATH_INPUT = (
    "gs://golden-path-sample-data/di.golden.path.EndContentFactXT2/2018-10-31/"
    "20181031T075406.854146-12dc225803c3/*.avro"
)
INPUTS = {
    "endContentFact": InputRevision("endContentFact", GOLDEN_PATH_INPUT, "rev-1"),
    "trackEntity": InputRevision(
        "trackEntity", "scio-playground:di_golden_path.track_entity_20181031", "t@1"
    ),
}
OUTPUTS = {
    "textOutput": "gs://scio-playground/di_golden_path/part3/charon/random",
    "bqOutput": "scio-playground:_incoming_EU._top_artists_daily20181031_2295469999",
}


def test_dataflow_command_line_matches_the_golden_path() -> None:
    beam = replace(load_settings({}).beam, runner="DataflowRunner", python="python3")
    argv = beam_command(
        TopArtistsJob(date="2018-10-31", top_n=100), inputs=INPUTS, outputs=OUTPUTS, beam=beam
    )
    assert argv == [
        "python3", "-m", "jobs.top_artists.pipeline",
        "--runner=DataflowRunner",
        "--project=scio-playground",
        "--region=europe-west1",
        "--stagingLocation=gs://scio-playground/user/charon/dataflow/staging",
        "--tempLocation=gs://scio-playground/user/charon/dataflow/tmp",
        "--autoscalingAlgorithm=THROUGHPUT_BASED",
        "--maxNumWorkers=25",
        "--blocking",
        f"--endContentFact={GOLDEN_PATH_INPUT}",
        "--trackEntity=scio-playground:di_golden_path.track_entity_20181031",
        "--textOutput=gs://scio-playground/di_golden_path/part3/charon/random",
        "--bqOutput=scio-playground:_incoming_EU._top_artists_daily20181031_2295469999",
        "--topN=100",
    ]


def test_direct_runner_gets_no_dataflow_options_but_the_warehouse_options() -> None:
    beam = replace(load_settings({}).beam, python="python3")
    argv = beam_command(
        TopArtistsJob(date="2018-10-31", top_n=5), inputs=INPUTS, outputs=OUTPUTS, beam=beam,
        job_options=["--duckdbDir=/data/warehouse"],
    )
    assert argv[3:6] == ["--runner=DirectRunner", "--blocking", "--duckdbDir=/data/warehouse"]
    assert not any(arg.startswith(("--project", "--region")) for arg in argv)
    assert argv[-1] == "--topN=5"


def test_task_options_fall_back_to_config() -> None:
    class Bare(BeamJobTask):
        pipeline = "some.pipeline"
        date = DateParameter()

    beam = replace(load_settings({}).beam, runner="DataflowRunner", project="from-config",
                   region="us-central1")
    argv = beam_command(Bare(date="2018-10-31"), inputs={}, outputs={}, beam=beam)
    assert "--project=from-config" in argv
    assert "--region=us-central1" in argv


def test_keys_that_cannot_be_arguments_are_refused() -> None:
    beam = load_settings({}).beam
    bad = {"0": InputRevision("0", "/x", "r")}
    with pytest.raises(UsageError, match="cannot be a job argument"):
        beam_command(TopArtistsJob(date="2018-10-31", top_n=1), inputs=bad, outputs={},
                     beam=beam)


def test_dataflow_jobs_are_named_after_their_run() -> None:
    # The tutorial's line above has no --jobName (Luigi let Dataflow pick one); charon passes
    # the run's deterministic name, so a restarted charon can find the job again.
    beam = replace(load_settings({}).beam, runner="DataflowRunner", python="python3")
    task = TopArtistsJob(date="2018-10-31", top_n=100)
    argv = beam_command(task, inputs=INPUTS, outputs=OUTPUTS, beam=beam, job_name="charon-x")
    assert argv[10:12] == ["--jobName=charon-x", "--blocking"]
    direct = beam_command(task, inputs=INPUTS, outputs=OUTPUTS,
                          beam=replace(beam, runner="DirectRunner"), job_name="charon-x")
    assert not any(arg.startswith("--jobName") for arg in direct)


def test_configured_beam_options_come_before_the_job_arguments() -> None:
    options = ("--direct_num_workers=2", "--direct_running_mode=multi_processing")
    beam = replace(load_settings({}).beam, python="python3", options=options)
    argv = beam_command(
        TopArtistsJob(date="2018-10-31", top_n=5), inputs=INPUTS, outputs=OUTPUTS, beam=beam,
    )
    assert argv[3:7] == ["--runner=DirectRunner", *options, "--blocking"]
