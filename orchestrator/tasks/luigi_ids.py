"""Luigi's task ids (``luigi.task.task_id_str``), so CopyToTable markers are Luigi's own.

Luigi keys its marker rows by the loading task's id: the family, the first characters
of its first three significant parameters (sorted by name) and an md5 of all of them as
canonical JSON, each value serialized the way Luigi serializes its parameter type. The
same task with the same parameters gets the same id from charon and from Luigi, so
either finds the other's loads.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from collections.abc import Mapping

from orchestrator.tasks.params import Parameter
from orchestrator.tasks.task import Task

# luigi.task's TASK_ID_INCLUDE_PARAMS, TASK_ID_TRUNCATE_PARAMS, TASK_ID_TRUNCATE_HASH and
# TASK_ID_INVALID_CHAR_REGEX (Luigi 3.x).
INCLUDE_PARAMS = 3
TRUNCATE_PARAMS = 16
TRUNCATE_HASH = 10
INVALID_CHARS = re.compile(r"[^A-Za-z0-9_]")


def task_id_str(family: str, params: Mapping[str, str]) -> str:
    """Luigi's id of ``family`` with these serialized significant parameters."""
    canonical = json.dumps(dict(params), separators=(",", ":"), sort_keys=True)
    digest = hashlib.md5(canonical.encode(), usedforsecurity=False).hexdigest()
    summary = "_".join(params[name][:TRUNCATE_PARAMS]
                       for name in sorted(params)[:INCLUDE_PARAMS])
    return f"{family}_{INVALID_CHARS.sub('_', summary)}_{digest[:TRUNCATE_HASH]}"


def luigi_serialized(parameter: Parameter[object], value: object) -> str:
    """A value as Luigi serializes it: its BoolParameter writes ``True``/``False``; dates,
    intervals (as spelled: ``2012-06``, ``2012-W05``), ints and strings are spelled alike."""
    return str(value) if isinstance(value, bool) else parameter.serialize(value)


def luigi_task_id(task: Task, **overrides: object) -> str:
    """``task``'s id in Luigi, runner parameters included (Luigi knows no runner
    parameters: to it ``use_spark`` is as significant as any other)."""
    values = {**task.param_values, **overrides}
    return task_id_str(task.task_family, {
        name: luigi_serialized(parameter, values[name])
        for name, parameter in task.parameters().items() if parameter.significant
    })


def runner_variant_ids(task: Task) -> list[str]:
    """Luigi's ids of ``task`` under every choice of its runner parameters (flags)."""
    runners = [name for name, parameter in task.parameters().items()
               if parameter.significant and parameter.runner]
    return [luigi_task_id(task, **dict(zip(runners, choice, strict=True)))
            for choice in itertools.product((False, True), repeat=len(runners))]
