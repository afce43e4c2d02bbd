"""The spark-submit command line of a SparkSubmitTask (run by the same JobRunner as Beam jobs)."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from orchestrator.errors import UsageError
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.task import SparkSubmitTask

# Quiet start-up (Spark logs every step at INFO) and no web UI port to bind.
DEFAULT_CONF = {"spark.ui.enabled": "false", "spark.log.level": "WARN"}


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
        **DEFAULT_CONF,
        "spark.pyspark.python": interpreter,
        "spark.pyspark.driver.python": interpreter,
        **task.conf,
    }
    argv = [spark_submit(), "--master", task.master, "--name", job_name]
    for key, value in conf.items():
        argv += ["--conf", f"{key}={value}"]
    return [*argv, task.app, *task.app_options(context)]
