"""The task API, in Luigi's vocabulary: parameters, ``requires()``, ``output()``, ``args()``."""

from __future__ import annotations

import importlib
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from orchestrator.bounds import MODULE_PATH, shown
from orchestrator.errors import (
    CharonError,
    InvalidIdentifier,
    TaskCodeError,
    TaskNotFound,
    UsageError,
    described,
)
from orchestrator.tasks.commands import beam_command, spark_command
from orchestrator.tasks.params import (
    DateIntervalParameter,
    DateParameter,
    Parameter,
    overrides_for,
)
from orchestrator.tasks.targets import RegistryTarget, Target

if TYPE_CHECKING:
    from orchestrator.config import BeamSettings
    from orchestrator.model import InputRevision
    from orchestrator.tasks.runcontext import RunContext

T = TypeVar("T")


def _check_worker_timeout(cls: type[Task]) -> None:
    timeout = cls.worker_timeout
    valid = isinstance(timeout, int | float) and not isinstance(timeout, bool) and (
        0 < timeout < float("inf"))
    if timeout is not None and not valid:
        raise UsageError(f"{cls.__name__}.worker_timeout must be a positive number of"
                         f" seconds or None, got {timeout!r}")


class Task:
    """A parameterised unit of work; identity is (family, significant non-runner parameters)."""

    task_family: ClassVar[str]
    variant_of: ClassVar[type[Task] | None] = None
    """The task this one computes another way (the Luigi example's AggregateArtistsSpark
    of AggregateArtists): the same task for charon, sharing its runs and fingerprints,
    so whichever variant ran first, the other finds the partition complete."""
    _parameters: ClassVar[dict[str, Parameter[Any]]]
    _identity: ClassVar[tuple[tuple[str, Parameter[Any]], ...]]
    """The parameters its id names: significant ones that choose what, not how."""
    _partition: ClassVar[tuple[str, Parameter[Any]] | None] = None
    """Its first date or interval parameter, by name: the one its partition label shows."""
    allow_empty_inputs: ClassVar[bool] = False
    """An input that holds no data is an error when ``run()`` reads it (EmptyInput), not
    an empty result; True when empty is a valid answer for this task."""
    worker_timeout: ClassVar[float | None] = None
    """Seconds its job (or its ``run()``) may take, as Luigi's ``worker_timeout``: past
    them the job is stopped and the run fails, to be retried as any failure. None: no
    limit. A ``run()`` that computes without awaiting is stopped at its next await."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.task_family = cls.__name__
        parameters: dict[str, Parameter[Any]] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                if isinstance(value, Parameter):
                    parameters[name] = value
        cls._parameters = parameters
        cls._identity = tuple((name, parameter) for name, parameter in parameters.items()
                              if parameter.significant and not parameter.runner)
        cls._partition = next(((name, parameter) for name, parameter in parameters.items()
                               if isinstance(parameter, DateParameter | DateIntervalParameter)),
                              None)
        _check_worker_timeout(cls)

    def __init__(self, **kwargs: object) -> None:
        if not kwargs.keys() <= self._parameters.keys():
            unknown = sorted(set(kwargs) - set(self._parameters))
            raise UsageError(f"{self.task_family} has no parameter {', '.join(unknown)}")
        # Values given to the constructor win over --<Family>-<param>, as in Luigi.
        if overrides := overrides_for(self.task_family):
            kwargs = {**overrides, **kwargs}
        values: dict[str, object] = {}
        for name, parameter in self._parameters.items():
            if name in kwargs:
                values[name] = parameter.normalize(kwargs[name])
            elif parameter.required:
                raise UsageError(
                    f"{self.task_family} needs parameter {name!r} ({parameter.flag})"
                )
            else:
                values[name] = parameter.default
        self.__dict__["_params"] = values

    @classmethod
    def parameters(cls) -> dict[str, Parameter[Any]]:
        return dict(cls._parameters)

    @property
    def param_values(self) -> dict[str, object]:
        return dict(self.__dict__["_params"])

    @property
    def task_id(self) -> str:
        # Parameters never change after construction, and the engine asks often.
        cached: str | None = self.__dict__.get("_task_id")
        if cached is None:
            # Runner parameters choose how, not what: both choices are one task.
            params = self.__dict__["_params"]
            significant = ", ".join([f"{name}={parameter.serialize(params[name])}"
                                     for name, parameter in self._identity])
            family = (self.variant_of or self).task_family
            cached = self.__dict__["_task_id"] = f"{family}({significant})"
        return cached

    @property
    def partition_label(self) -> str:
        """The partition this task instance covers: its first date or interval parameter."""
        cached: str | None = self.__dict__.get("_partition_label")
        if cached is None:
            partition = self._partition
            cached = self.__dict__["_partition_label"] = "" if partition is None else (
                partition[1].serialize(self.__dict__["_params"][partition[0]]))
        return cached

    def requires(self) -> Task | Sequence[Task] | Mapping[str, Task] | None:
        return None

    def output(self) -> Target | Mapping[str, Target] | None:
        return None

    def args(self) -> list[str]:
        return []

    async def run(self, context: RunContext) -> None:
        """Produce the outputs in process; job tasks are launched instead."""
        raise NotImplementedError(f"{self.task_family} defines no run()")

    def __repr__(self) -> str:
        return self.task_id

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.task_id == self.task_id

    def __hash__(self) -> int:
        return hash(self.task_id)


class ExternalTask(Task):
    """Data made outside charon; complete when its output exists, never run."""


class WrapperTask(Task):
    """Groups other tasks; complete when everything it requires is (Luigi's WrapperTask)."""


@dataclass(frozen=True)
class JobLaunch:
    """What a job's command line is built from."""

    inputs: Mapping[str, InputRevision]
    outputs: Mapping[str, str]
    """Output key → where the run writes it (its staged reference)."""
    context: RunContext
    job_name: str
    beam: BeamSettings
    job_options: Sequence[str] = ()
    """The warehouse's options for jobs that write to it."""


class JobTask(Task):
    """A task launched as a job by a JobRunner instead of running in process.

    A job kind says how its job is launched: its command line, and on which runner.
    """

    runs_locally: ClassVar[bool] = False
    """Always a subprocess on this machine, whatever runner the Beam jobs go to."""
    found_by_name: ClassVar[bool] = False
    """A runner that finds jobs by name may attach to this job by its name: a run whose
    job id was never recorded is then relaunched to the same places."""

    def command(self, launch: JobLaunch) -> list[str]:
        raise NotImplementedError(f"{self.task_family} defines no command()")


class BeamJobTask(JobTask):
    """A Beam pipeline launched as a subprocess, shaped like the golden path's ScioJobTask.

    ``pipeline`` is the module run with ``python -m``. The Dataflow options are class
    attributes as in Spotify's golden-path tutorial; None falls back to the ``[beam]``
    config section.
    """

    pipeline: ClassVar[str]
    project: ClassVar[str | None] = None
    region: ClassVar[str | None] = None
    staging_location: ClassVar[str | None] = None
    temp_location: ClassVar[str | None] = None
    autoscaling_algorithm: ClassVar[str | None] = None
    max_num_workers: ClassVar[int | None] = None
    found_by_name = True

    def command(self, launch: JobLaunch) -> list[str]:
        return beam_command(self, inputs=launch.inputs, outputs=launch.outputs,
                            beam=launch.beam, job_options=launch.job_options,
                            job_name=launch.job_name)


class SparkSubmitTask(JobTask):
    """A Spark application launched with ``spark-submit`` (Luigi's ``SparkSubmitTask``).

    ``app`` is the application's file, ``master`` the cluster (``local[*]`` runs on this
    machine) and ``conf`` extra ``--conf`` pairs. ``app_options(context)`` gives the
    application's arguments; ``context.inputs`` and ``context.outputs`` are where the
    Luigi example's ``self.input()`` and ``self.output().path`` point. No run() to write.
    """

    app: ClassVar[str]
    master: ClassVar[str] = "local[*]"
    conf: ClassVar[Mapping[str, str]] = {}
    runs_locally = True

    def app_options(self, context: RunContext) -> list[str]:
        return []

    def command(self, launch: JobLaunch) -> list[str]:
        return spark_command(self, launch.context, job_name=launch.job_name,
                             python=launch.beam.python)


class LookupDaily(ExternalTask):
    """A day's partition of a registry endpoint (the golden path's Hades ``LookupDaily``)."""

    endpoint = Parameter[str]()
    partition = DateParameter()
    pattern = Parameter[str]("*.avro", significant=False)

    def output(self) -> RegistryTarget:
        return RegistryTarget(self.endpoint, self.partition.isoformat(), pattern=self.pattern)


def requirements(task: Task) -> dict[str, Task]:
    """requires() normalised to a dict; list entries (or a generator's, as Luigi's
    ``yield``) are keyed by position. Anything else is the task's mistake, said as one
    (it was a TypeError's traceback, or a failure further on)."""
    required = _called(task, "requires", task.requires)
    if required is None:
        return {}
    if isinstance(required, Task):
        return {"input": required}
    if isinstance(required, Mapping):
        found = dict(required)
    elif isinstance(required, Iterable) and not isinstance(required, str | bytes):
        # A generator's body runs here, not in the call above: what it raises is its own.
        found = _called(task, "requires",
                        lambda: {str(index): item for index, item in enumerate(required)})
    else:
        raise UsageError(f"{task.task_id}.requires() returned {shown(required)}: a task, a"
                         " list or a dict of tasks, or None")
    for key, item in found.items():
        if not isinstance(key, str):
            raise UsageError(f"{task.task_id}.requires() names a task by {shown(key)}:"
                             " a dict's keys are strings")
        if not isinstance(item, Task):
            raise UsageError(f"{task.task_id}.requires() holds {shown(item)} (at {key!r}),"
                             " not a task")
    return found


def outputs(task: Task) -> Mapping[str, Target]:
    """output() normalised to a mapping; a single target is keyed ``output``."""
    # output() follows from the parameters, which never change, and an evaluation asks
    # for each task's outputs several times (a year of daily inputs: 1,464 calls; a
    # daemon's start-up sweep, 6 a day): made once, and not copied for each (typed a
    # Mapping, so that no caller may change it).
    made: Mapping[str, Target] | None = task.__dict__.get("_outputs")
    if made is None:
        made = task.__dict__["_outputs"] = _normalised(_called(task, "output", task.output))
    return made


def _called(task: Task, method: str, call: Callable[[], T]) -> T:
    """``call()``, a task's own method: what it raises, but charon's errors, becomes a
    TaskCodeError (it was a traceback through charon's and anyio's frames, or a
    daemon's evaluation logged as crashed)."""
    try:
        return call()
    except CharonError:
        raise
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        raise TaskCodeError(f"{task.task_id}.{method}() raised {type(exc).__name__}:"
                            f" {described(exc)} ({where.filename}:{where.lineno})") from exc


def _normalised(produced: Target | Mapping[str, Target] | None) -> dict[str, Target]:
    if produced is None:
        return {}
    if isinstance(produced, Mapping):
        return dict(produced)
    return {"output": produced}


def input_sources(required: Mapping[str, Task]) -> dict[str, tuple[Task, str, Target]]:
    """Each input of a task requiring ``required``, by its key among the task's inputs
    (the requirement's key, or ``key.output`` when that requirement has several
    outputs): the requirement, which of its outputs it is, and that output."""
    sources: dict[str, tuple[Task, str, Target]] = {}
    for key, dep in required.items():
        produced = outputs(dep)
        for sub_key, target in produced.items():
            sources[key if len(produced) == 1 else f"{key}.{sub_key}"] = (dep, sub_key, target)
    return sources


def input_targets(required: Mapping[str, Task]) -> dict[str, tuple[Task, Target]]:
    """Each input of a task requiring ``required`` (see :func:`input_sources`)."""
    return {key: (dep, target) for key, (dep, _, target) in input_sources(required).items()}


def load_task_class(module: str, family: str) -> type[Task]:
    """Import ``module`` and return its task class ``family`` (``--module M Family``)."""
    if not MODULE_PATH.fullmatch(module):
        raise InvalidIdentifier(f"invalid module {shown(module)}: expected a dotted Python"
                                " module path such as jobs.top_artists")
    try:
        loaded = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise TaskNotFound(_missing_module(module, exc)) from None
    # Importing a user's module runs its code, which may raise anything; it is one line
    # for the user, not a traceback.
    except Exception as exc:
        raise TaskNotFound(f"cannot import module {module!r}: {type(exc).__name__}: {exc}"
                           ) from None
    candidate = getattr(loaded, family, None)
    if not (isinstance(candidate, type) and issubclass(candidate, Task)):
        tasks = [name for name, value in vars(loaded).items()
                 if isinstance(value, type) and issubclass(value, Task)]
        raise TaskNotFound(f"no task {shown(family)} in {module}{suggestion(family, tasks)}")
    return candidate


def _missing_module(module: str, exc: ModuleNotFoundError) -> str:
    """Which module is missing, and its siblings of a close name when it is ``module`` or
    one of its packages (not a library the module imports)."""
    missing = exc.name or module
    if not (module == missing or module.startswith(f"{missing}.")):
        return f"cannot import module {module!r}: {exc}"
    # Imported for this error alone (as difflib for suggestion's): importing the two is
    # 2% of the instructions of a `charon run` that finds everything complete.
    import pkgutil  # noqa: PLC0415  # see above

    parent, _, _ = missing.rpartition(".")
    path = getattr(sys.modules.get(parent), "__path__", None) if parent else None
    siblings = [] if parent and path is None else [
        f"{parent}.{info.name}" if parent else info.name for info in pkgutil.iter_modules(path)
    ]
    return (f"cannot import module {module!r}: no module {missing!r}"
            + suggestion(missing, siblings))


def suggestion(name: str, candidates: Sequence[str]) -> str:
    """``; did you mean X?`` with the names of ``candidates`` close to ``name``, or nothing."""
    import difflib  # noqa: PLC0415  # for a mistyped name's error only, see _missing_module

    close = difflib.get_close_matches(name, candidates, n=3)
    return f"; did you mean {' or '.join(close)}?" if close else ""
