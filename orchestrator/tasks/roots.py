"""The root tasks of a configured workflow: one per watched day or period."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from orchestrator.errors import CharonError, ConfigError
from orchestrator.intervals import period_interval
from orchestrator.tasks.params import DateIntervalParameter, DateParameter
from orchestrator.tasks.task import Task, load_task_class
from orchestrator.workflows import WorkflowSettings

RootMaker = Callable[[date], Task]
"""Builds a workflow's task for a day, or for the period containing it."""


def root_task(workflow: WorkflowSettings, day: date) -> Task:
    """The workflow's task for the day, or for the period containing it."""
    return root_maker(workflow)(day)


def root_maker(workflow: WorkflowSettings) -> RootMaker:
    """The workflow's :data:`RootMaker`: its task class loaded and its partition
    parameter checked once, for a caller that builds many days' tasks (a daemon's
    100,000 watched days)."""
    task_class = load_task_class(workflow.module, workflow.task)
    parameter = task_class.parameters().get(workflow.partition_param)
    if not isinstance(parameter, DateParameter | DateIntervalParameter):
        dated = [name for name, p in task_class.parameters().items()
                 if isinstance(p, DateParameter | DateIntervalParameter)]
        raise ConfigError(f"partition_param = {workflow.partition_param!r}: not a date parameter"
                          f" of {workflow.task} (it has: {', '.join(dated) or 'none'})")
    params, name, period = dict(workflow.params), workflow.partition_param, workflow.period
    by_period = period != "day" or isinstance(parameter, DateIntervalParameter)

    def make(day: date) -> Task:
        value = period_interval(period, day) if by_period else day
        return task_class(**params, **{name: value})

    return make


def check_loadable(workflows: Sequence[WorkflowSettings], today: date) -> None:
    """Import every workflow's task and build today's instance, so mistakes show at start."""
    for index, workflow in enumerate(workflows):
        try:
            root_task(workflow, today)
        except CharonError as exc:
            raise ConfigError(f"workflows[{index}] ({workflow.name}): {exc}") from None
