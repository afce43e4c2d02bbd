"""What the engine asks the sensors while it evaluates: the external inputs of a graph
(one batched lookup), a task's inputs, and whether a task is complete.

Kept out of the engine's scheduling so the rules of "what is there" sit in one place:
every lookup of many targets goes out as one batched call (a year of daily files is one
listing, not 366 calls).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from functools import partial

from orchestrator.core.completeness import complete_when_present, present, reads_storage
from orchestrator.core.execution import Evaluation, Inputs
from orchestrator.core.graph import Graph, output_key
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Outcome, Status
from orchestrator.log import get_logger
from orchestrator.model import InputRevision, Run, RunState
from orchestrator.tasks.targets import Target
from orchestrator.tasks.task import ExternalTask, Task, input_sources, input_targets, outputs
from sensors import Sensors
from sensors.guard import SourceGuards, level_for

Externals = Mapping[str, InputRevision | None]
"""The outputs of external tasks as a batched lookup found them (None: absent), by a key
of the task's id and the output's."""


class Lookups:
    def __init__(self, adapters: Adapters, guards: SourceGuards) -> None:
        self._adapters = adapters
        self._sensors = Sensors(adapters.registry, adapters.warehouse, storage=adapters.storage,
                                data_prefix=adapters.data_prefix, database=adapters.database,
                                guards=guards)
        self._log = get_logger("charon.engine")

    async def externals(self, graph: Graph, known: Externals | None = None) -> Externals:
        """The outputs of the external tasks that require nothing: what ``known`` (a
        lookup made for several graphs, :meth:`externals_of`) answers, the rest in one
        batched lookup (a year of daily files: one listing, not 366 calls). What a
        source fails to answer there, each task looks up on its own, and fails alone."""
        targets = graph.external_outputs
        found = {key: known[key] for key in targets if key in known} if known else {}
        if len(found) < len(targets):
            found.update(await self._together(
                {key: target for key, target in targets.items() if key not in found}))
        return found

    async def externals_of(self, graphs: Iterable[Graph]) -> Externals:
        """The outputs of the external tasks of several graphs, in one batched lookup;
        without those of a source that fails (each evaluation then looks its own up)."""
        return await self._together(
            {key: target for graph in graphs for key, target in graph.external_outputs.items()})

    async def _together(self, targets: Mapping[str, Target]) -> Externals:
        """What the sources answered; the targets of a source that failed are left out
        (each evaluation needing them looks its own up, and fails alone)."""
        found, failures = await self._sensors.lookup_answered(targets)
        for failure in failures:
            level_for(self._log, failure)("cannot look external tasks up together",
                                          error=str(failure))
        return found

    @staticmethod
    def answered(task: Task, externals: Externals) -> bool:
        """Whether ``task`` is external and the batched lookup of the external tasks holds
        every one of its outputs: checking it then asks no sensor anything."""
        return isinstance(task, ExternalTask) and all(
            output_key(task.task_id, key) in externals for key in outputs(task))

    async def check_external(
        self, task: ExternalTask, known: Mapping[str, InputRevision | None]
    ) -> Outcome:
        absent, found = [], []
        for key, target in outputs(task).items():
            external_key = output_key(task.task_id, key)
            revision = (known[external_key] if external_key in known
                        else await self._sensors.lookup(key, target))
            if revision is None:
                absent.append(str(target))
            else:
                found.append(f"{target} at {revision.revision_id}")
        if absent:
            return Outcome(task.task_id, Status.MISSING, missing=tuple(absent))
        return Outcome(task.task_id, Status.AVAILABLE, ", ".join(found))

    @staticmethod
    def known_inputs(required: Mapping[str, Task], evaluation: Evaluation) -> Inputs | None:
        """A task's inputs as the evaluation's batched lookup of its external tasks found
        them, when every one was found there; None otherwise (it looks them up itself).

        Its first look only: one registry call a leaf fewer in a one-shot run of many.
        Inputs that moved on since are found before it publishes (the run is then
        superseded, not published), and by the look again after waiting for a place.
        """
        inputs: dict[str, InputRevision] = {}
        for input_key, (dep, dep_output, _) in input_sources(required).items():
            revision = evaluation.externals.get(output_key(dep.task_id, dep_output))
            if revision is None:
                return None
            inputs[input_key] = dataclasses.replace(revision, key=input_key)
        return inputs

    async def inputs(self, task: Task, required: Mapping[str, Task]) -> Inputs | Outcome:
        targets = input_targets(required)
        # One batched lookup for them all: a year of days is one call, not 366.
        found = await self._sensors.lookup_many({k: t for k, (_, t) in targets.items()})
        inputs: dict[str, InputRevision] = {}
        for input_key, (dep, target) in targets.items():
            if (revision := found[input_key]) is None:
                detail = f"{dep.task_id} finished but {target} is absent"
                return Outcome(task.task_id, Status.FAILED, detail)
            inputs[input_key] = revision
        return inputs

    async def complete(self, task: Task, run: Run | None) -> bool:
        """Luigi's ``complete()``: every output is there; and, charon's addition, the run
        that wrote them consumed the current inputs (``run`` succeeded for the current
        fingerprint) — unless the outputs are written once per task (a marker row)."""
        succeeded = run is not None and run.state is RunState.SUCCEEDED
        if not (succeeded or complete_when_present(list(outputs(task).values()))):
            return False
        found = await self._sensors.lookup_many(outputs(task))
        for key, target in outputs(task).items():
            if not await self._present(target, found[key]):
                if succeeded:
                    self._log.info("an output is missing", output=key,
                                   target=str(target))
                return False
        self._log.info("already complete", run_id=run.id if run else None)
        return True

    async def _present(self, target: Target, found: InputRevision | None) -> bool:
        check = partial(present, target, found, self._adapters)
        return await (self._sensors.ask_storage(check) if reads_storage(target) else check())
