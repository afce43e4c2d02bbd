"""The days a workflow with ``window = "inputs"`` watches: every day for which one of its
root's external registry inputs has a revision, learnt from the registry change feed.

A root's inputs sit at fixed distances from its day (the day itself, or the day before
for a task reading yesterday's partition), so one root built at start-up says, per
endpoint, how far each input partition lies from the root's day. A changed partition
then names its candidate days at once; each candidate is kept only when its own root
really reads that partition, so a guess never adds a day the workflow does not read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, timedelta

from orchestrator.core.graph import resolve
from orchestrator.errors import CharonError, UsageError
from orchestrator.intervals import parse_interval
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import ExternalTask, Task, outputs
from orchestrator.workflows import WorkflowSettings
from sensors.facts import registry_key


class InputDays:
    def __init__(self, workflow: WorkflowSettings, today: date) -> None:
        self.workflow = workflow
        probe = workflow.partition_day(today)
        self.probe_tasks = tuple(resolve(root_task(workflow, probe)).tasks.values())
        """The graph of the probed day's root."""
        self._offsets: dict[str, set[timedelta]] = defaultdict(set)
        for target in registry_inputs(self.probe_tasks):
            self._offsets[target.endpoint].add(probe - parse_interval(target.partition).start)

    def candidates(self, key: str) -> list[date]:
        """The root days (each its period's first) whose root may read the partition of
        this target key, within the workflow's ``start`` and ``end``."""
        for endpoint, offsets in self._offsets.items():
            prefix = registry_key(endpoint, "")
            if key.startswith(prefix):
                try:
                    start = parse_interval(key[len(prefix):]).start
                    days = {self.workflow.partition_day(start + offset) for offset in offsets}
                # A partition that is no interval, or one so near the calendar's ends
                # that its days would leave it: no root reads it.
                except (UsageError, OverflowError):
                    return []
                return sorted(day for day in days if self.workflow.admits(day))
        return []

    def reads(self, day: date, key: str) -> bool:
        """Whether the root of ``day`` has the partition of ``key`` among its inputs (a
        root that cannot be built for that day reads nothing)."""
        try:
            tasks = resolve(root_task(self.workflow, day)).tasks.values()
        except CharonError:
            return False
        return key in {registry_key(t.endpoint, t.partition) for t in registry_inputs(tasks)}


def registry_inputs(tasks: Iterable[Task]) -> list[RegistryTarget]:
    """The registry targets of the external tasks among a graph's tasks."""
    return [target for task in tasks if isinstance(task, ExternalTask)
            for target in outputs(task).values() if isinstance(target, RegistryTarget)]
