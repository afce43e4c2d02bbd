"""The chaos benchmark's small task: one registry input a day, one registry output a day.

Its job, ``bench.chaos_job``, is launched like any Beam job (``python -m`` with the
Beam command line), so it runs through the same launcher, process group, lease and
publication path as the real top-artists job, at a fraction of the cost.
"""

from __future__ import annotations

from orchestrator.tasks.params import DateParameter, Parameter
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import BeamJobTask, LookupDaily

INPUT_ENDPOINT = "chaos.input"
OUTPUT_ENDPOINT = "chaos.output"
INPUT_FILE = "input"
"""The one file of an input revision's folder; the job is handed ``<uri>/input``."""


class ChaosTask(BeamJobTask):
    date = DateParameter()
    # Where the job records its executions; not part of the task's identity.
    log_dir = Parameter[str]("", significant=False)

    pipeline = "bench.chaos_job"

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=INPUT_ENDPOINT, partition=self.date, pattern=INPUT_FILE)

    def output(self) -> RegistryTarget:
        return RegistryTarget(OUTPUT_ENDPOINT, self.date.isoformat())

    def args(self) -> list[str]:
        return [f"--partition={self.date.isoformat()}", f"--chaosLog={self.log_dir}"]
