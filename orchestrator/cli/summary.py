"""The execution summary ``charon run`` ends with, laid out as Luigi's
(``luigi/execution_summary.py``): tasks counted by what became of them, grouped by family
with their parameters as ranges, and the line that says how the progress looks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from itertools import pairwise

from orchestrator.core.report import Category, Outcome, Report
from orchestrator.tasks.task import Task

SUMMARY_LENGTH = 5
"""Families listed per group before "..." (Luigi's ``execution_summary.summary_length``)."""
RULE = "===== charon execution summary ====="

# Why a task was left pending because of a dependency, named as Luigi names it.
UPSTREAM = {
    Category.FAILED: "had failed dependencies",
    Category.MISSING: "had missing dependencies",
    Category.RUN_BY_OTHER_WORKER: "had dependencies that were being run by another worker",
    Category.SCHEDULING_ERROR: "had dependencies whose scheduling failed",
}
PENDING = (Category.MISSING, Category.RUN_BY_OTHER_WORKER, Category.BLOCKED, Category.NOT_RUN)


def summary(report: Report) -> str:
    """The whole summary between its two rules, as Luigi prints it."""
    groups = _groups(report)
    lines = [RULE, "", f"Scheduled {len(report.outcomes)} tasks of which:"]
    for category in (Category.COMPLETE, Category.RAN, Category.FAILED,
                     Category.SCHEDULING_ERROR):
        lines.extend(_group(f"* {{}} {category.value}:", groups.get(category.value), 4,
                            report.tasks))
    pending = sum(len(groups.get(category.value, ())) for category in PENDING)
    if pending:
        lines.append(f"* {pending} were left pending, among these:")
    for name in (Category.MISSING.value, Category.RUN_BY_OTHER_WORKER.value,
                 *UPSTREAM.values(), Category.NOT_RUN.value):
        lines.extend(_group(f"    * {{}} {name}:", groups.get(name), 8, report.tasks))
    lines.append("")
    if not groups.get(Category.RAN.value):
        lines.append("Did not run any tasks")
    lines.extend([_looks(groups), "", RULE])
    return "\n".join(lines)


def _groups(report: Report) -> dict[str, list[str]]:
    """Task ids by the summary line they belong to; a blocked task under each reason its
    dependencies give (as in Luigi, one task may have several)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for task_id, outcome in report.outcomes.items():
        groups[outcome.category.value].append(task_id)
        if outcome.category is Category.BLOCKED:
            for reason in _upstream(outcome, report.outcomes):
                groups[UPSTREAM[reason]].append(task_id)
    return groups


def _upstream(outcome: Outcome, outcomes: Mapping[str, Outcome]) -> set[Category]:
    """The root causes behind a blocked task, found through its blocked dependencies."""
    causes: set[Category] = set()
    seen: set[str] = set()
    stack = list(outcome.blocked_by)
    while stack:
        dep = outcomes.get(stack.pop())
        if dep is None or dep.task_id in seen:
            continue
        seen.add(dep.task_id)
        if dep.category in UPSTREAM:
            causes.add(dep.category)
        stack.extend(dep.blocked_by)
    return causes


def _group(header: str, task_ids: Sequence[str] | None, indent: int,
           tasks: Mapping[str, Task]) -> list[str]:
    if not task_ids:
        return []
    return [header.format(len(task_ids)), *_families(task_ids, indent, tasks)]


def _looks(groups: Mapping[str, Sequence[str]]) -> str:
    failed, scheduling = Category.FAILED.value in groups, Category.SCHEDULING_ERROR.value in groups
    if failed and scheduling:
        face, why = ":(", "there were failed tasks and tasks whose scheduling failed"
    elif failed:
        face, why = ":(", "there were failed tasks"
    elif scheduling:
        face, why = ":(", "there were tasks whose scheduling failed"
    elif Category.NOT_RUN.value in groups or Category.RUN_BY_OTHER_WORKER.value in groups:
        face, why = ":|", "there were tasks that were not run"
    elif Category.MISSING.value in groups:
        face, why = ":|", "there were missing external dependencies"
    else:
        face, why = ":)", "there were no failed tasks or missing dependencies"
    return f"This progress looks {face} because {why}"


def _families(task_ids: Sequence[str], indent: int, tasks: Mapping[str, Task]) -> list[str]:
    by_family: dict[str, list[str]] = defaultdict(list)
    for task_id in task_ids:
        by_family[task_id.partition("(")[0]].append(task_id)
    prefix = " " * indent
    lines: list[str] = []
    for family in sorted(by_family):
        if len(lines) >= SUMMARY_LENGTH:
            lines.append(prefix + "...")
            break
        ids = sorted(by_family[family])
        lines.append(f"{prefix}- {len(ids)} {_described(family, ids, tasks)}")
    return lines


def _described(family: str, task_ids: Sequence[str], tasks: Mapping[str, Task]) -> str:
    """One family's tasks in one line: when one parameter alone varies, over a run of
    consecutive days or numbers, it is shown as ``first...last``, as Luigi shows ranges."""
    known = [tasks[task_id] for task_id in task_ids if task_id in tasks]
    if len(known) == len(task_ids) > 2:
        ranged = _ranged(family, known)
        if ranged is not None:
            return ranged
    if len(task_ids) == 1:
        return task_ids[0]
    if len(task_ids) == 2:
        return f"{task_ids[0]} and {task_ids[1]}"
    return f"{task_ids[0]} ..."


def _ranged(family: str, tasks: Sequence[Task]) -> str | None:
    parameters = {name: p for name, p in tasks[0].parameters().items() if p.significant}
    values = [task.param_values for task in tasks]
    varying = [name for name in parameters if len({v[name] for v in values}) > 1]
    if len(varying) != 1:
        return None
    name = varying[0]
    ends = _range({v[name] for v in values})
    if ends is None:
        return None
    first, last = (parameters[name].serialize(value) for value in ends)
    shown = [f"{key}={first}...{last}" if key == name
             else f"{key}={parameter.serialize(values[0][key])}"
             for key, parameter in parameters.items()]
    return f"{family}({', '.join(shown)})"


def _range(values: set[object]) -> tuple[object, object] | None:
    """The first and last of values that are consecutive days or whole numbers."""
    days = sorted(value for value in values if isinstance(value, date))
    numbers = sorted(value for value in values
                     if isinstance(value, int) and not isinstance(value, bool))
    if len(days) == len(values) and all(
        b - a == timedelta(days=1) for a, b in pairwise(days)
    ):
        return days[0], days[-1]
    if len(numbers) == len(values) and all(
        b - a == 1 for a, b in pairwise(numbers)
    ):
        return numbers[0], numbers[-1]
    return None
