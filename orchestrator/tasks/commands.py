"""The command lines of the job task kinds: Beam in the golden path's ScioJobTask shape, and
spark-submit. Pure functions of the task and where its inputs and outputs are; the
runners in ``jobs.runners`` only launch what they are given."""

from __future__ import annotations

import importlib.util
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config import BeamSettings
    from orchestrator.model import InputRevision
    from orchestrator.tasks.runcontext import RunContext
    from orchestrator.tasks.task import BeamJobTask, SparkSubmitTask

# (task attribute / beam setting, command-line flag), in the golden-path tutorial's order.
DATAFLOW_OPTIONS = (
    ("project", "--project"),
    ("region", "--region"),
    ("staging_location", "--stagingLocation"),
    ("temp_location", "--tempLocation"),
    ("autoscaling_algorithm", "--autoscalingAlgorithm"),
    ("max_num_workers", "--maxNumWorkers"),
)
JOB_NAME_FLAG = "--jobName="
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Quiet start-up (Spark logs every step at INFO) and no web UI port to bind.
DEFAULT_SPARK_CONF = {"spark.ui.enabled": "false", "spark.log.level": "WARN"}


def job_name(task_family: str, partition: str, fingerprint: str) -> str:
    """The job's name, the same for every attempt at one (task, partition, fingerprint).

    Dataflow job names are lowercase letters, digits and hyphens, starting with a letter.
    """
    raw = f"charon-{task_family}-{partition}-{fingerprint[:12]}".lower()
    return re.sub(r"[^a-z0-9-]+", "-", raw).strip("-")[:1023]


def beam_command(
    task: BeamJobTask,
    *,
    inputs: Mapping[str, InputRevision],
    outputs: Mapping[str, str],
    beam: BeamSettings,
    job_options: Sequence[str] = (),
    job_name: str | None = None,
) -> list[str]:
    """The job's argument list.

    Runner and Dataflow options first (with ``job_name``, ``--jobName`` last among them),
    then the configured Beam options (``beam.options``), ``--blocking``, the warehouse's
    options, then one ``--<key>=<ref>`` per requires() key and per output() key in
    declaration order, then ``args()``.
    """
    python = beam.python or sys.executable
    argv = [python, "-m", task.pipeline, f"--runner={beam.runner}"]
    if beam.runner == "DataflowRunner":
        for attribute, flag in DATAFLOW_OPTIONS:
            value = getattr(task, attribute) or getattr(beam, attribute)
            if value:
                argv.append(f"{flag}={value}")
        if job_name:
            argv.append(f"{JOB_NAME_FLAG}{job_name}")
    argv.extend(beam.options)
    argv.append("--blocking")
    argv.extend(job_options)
    for key, value in [*((k, i.ref) for k, i in inputs.items()), *outputs.items()]:
        if not _KEY.match(key):
            raise UsageError(
                f"{task.task_family}: key {key!r} cannot be a job argument; "
                "requires() and output() of a job task must be dicts keyed by argument names"
            )
        argv.append(f"--{key}={value}")
    argv.extend(task.args())
    return argv


def spark_submit() -> str:
    """The ``spark-submit`` of the installed ``pyspark``, else one on PATH.

    The copy inside the pyspark package is preferred: the one pip puts next to the
    interpreter asks ``python3`` (not necessarily this one) where Spark lives.
    """
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "spark-submit"
        if bundled.is_file():
            return str(bundled)
    found = shutil.which("spark-submit")
    if found is None:
        raise UsageError("spark-submit not found: pip install 'charon[spark]' (needs Java 17+)")
    return found


def spark_command(
    task: SparkSubmitTask, context: RunContext, *, job_name: str, python: str = ""
) -> list[str]:
    """spark-submit, the master, the app's name and conf, the app, then ``app_options()``.

    The app's Python workers and driver run on charon's interpreter (``python``), where
    pyspark is installed.
    """
    interpreter = python or sys.executable
    conf = {
        **DEFAULT_SPARK_CONF,
        "spark.pyspark.python": interpreter,
        "spark.pyspark.driver.python": interpreter,
        **task.conf,
    }
    argv = [spark_submit(), "--master", task.master, "--name", job_name]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, task.app, *task.app_options(context)]
