"""A Beam-shaped job task that hangs, with a ``worker_timeout`` of 2 seconds:
``charon run --module tests.support.timeout_tasks Hangs --date D``."""

from __future__ import annotations

from typing import ClassVar

from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import BeamJobTask


class Hangs(BeamJobTask):
    date = DateParameter()
    pipeline = "tests.support.hanging_job"
    worker_timeout: ClassVar[float | None] = 2

    def output(self) -> RegistryTarget:
        return RegistryTarget("hangs.output", self.date.isoformat())
