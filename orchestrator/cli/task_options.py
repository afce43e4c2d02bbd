"""A task's options on the command line, as Luigi's: ``--param VALUE`` for the task named,
``--<Family>-<param> VALUE`` for a family wherever it is built, and help that lists them."""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

from orchestrator.cli import arguments
from orchestrator.errors import UsageError
from orchestrator.tasks.params import BoolParameter, Overrides, Parameter
from orchestrator.tasks.task import Task, suggestion

# reStructuredText as docstrings carry it, and what a terminal shows for it:
# :class:`~a.B` → B, :ref:`text <target>` → text, ``code`` → code, `link <url>`_ → link.
_ROLE = re.compile(r":[\w.:+-]+:`(~?)([^`<]*?)\s*(?:<[^`>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_REFERENCE = re.compile(r"`([^`<]+?)\s*(?:<[^`>]*>)?`_{0,2}")
_STRONG = re.compile(r"\*\*(\S(?:.*?\S)?)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*(\S(?:[^*]*?\S)?)\*(?![\w*])")
_LITERAL_BLOCK = re.compile(r"(?<=\S)::(?=\s|$)")


def plain_text(text: str) -> str:
    """``text`` without its reStructuredText markup, for help printed on a terminal."""
    text = _ROLE.sub(lambda m: m[2].rsplit(".", 1)[-1] if m[1] else m[2], text)
    text = _LITERAL.sub(r"\1", text)
    text = _REFERENCE.sub(r"\1", text)
    text = _STRONG.sub(r"\1", text)
    text = _EMPHASIS.sub(r"\1", text)
    return _LITERAL_BLOCK.sub(":", text)


def summary(task_class: type[Task]) -> str:
    """The first paragraph of the task's own docstring, in plain text."""
    doc = task_class.__dict__.get("__doc__") or ""
    return plain_text(" ".join(doc.strip().split("\n\n")[0].split()))


def task_parser(task_class: type[Task], prog: str) -> arguments.Parser:
    """The task's parameters as flags: ``--top-n`` (or ``--top_n``), help with each."""
    parser = arguments.Parser(prog=prog, exit_on_error=False, add_help=False,
                              allow_abbrev=False, usage=argparse.SUPPRESS)
    group = parser.add_argument_group(f"{task_class.task_family} parameters")
    for name, parameter in task_class.parameters().items():
        _add_flag(group, (parameter.flag, f"--{name}"), name, parameter)
    return parser


def _add_flag(group: argparse._ArgumentGroup, flags: Sequence[str], dest: str,
              parameter: Parameter[Any]) -> None:
    # A BoolParameter is a flag, as in Luigi (--use-spark); --use-spark=false works too.
    is_flag = isinstance(parameter, BoolParameter)
    description = plain_text(parameter.description)
    group.add_argument(*dict.fromkeys(flags), dest=dest, default=None,
                       metavar=dest.upper(), nargs="?" if is_flag else None,
                       const="true" if is_flag else None,
                       help=f"{parameter.describe()}. {description}".strip())


def parse_parameters(task_class: type[Task], prog: str,
                     argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """The values given for the task's own parameters, and the arguments left over."""
    return _parse(task_parser(task_class, prog), argv)


def refuse_unknown(task_class: type[Task], unknown: Sequence[str]) -> None:
    """Refuse what neither the task nor any family takes, naming the flags close to the
    first option among it (``--Leaf-sise``: did you mean ``--Leaf-size``?)."""
    if not unknown:
        return
    option = next((arg.partition("=")[0] for arg in unknown if arg.startswith("--")), "")
    flags = [parameter.flag for parameter in task_class.parameters().values()]
    flags += [family_flag(family, name) for family, classes in families().items()
              for task in classes for name in task.parameters()]
    raise UsageError(f"{task_class.task_family} does not take {' '.join(unknown)}"
                     + suggestion(option, list(dict.fromkeys(flags))))


def _parse(parser: argparse.ArgumentParser,
           argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    try:
        values, unknown = parser.parse_known_args(argv)
    except argparse.ArgumentError as exc:
        raise UsageError(str(exc)) from None
    return {dest: value for dest, value in vars(values).items() if value is not None}, unknown


def families() -> dict[str, list[type[Task]]]:
    """Every task class imported so far, by family (Luigi's register of tasks)."""
    found: dict[str, list[type[Task]]] = {}
    for task_class in _subclasses(Task):
        found.setdefault(task_class.task_family, []).append(task_class)
    return found


def _subclasses(base: type[Task]) -> Iterator[type[Task]]:
    for subclass in base.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def family_flag(family: str, name: str) -> str:
    """Luigi's spelling: ``--TopArtistsJob-top-n`` (underscores of both become dashes)."""
    return f"--{family}-{name}".replace("_", "-")


def parse_overrides(argv: Sequence[str]) -> tuple[Overrides, list[str]]:
    """Luigi's ``--<Family>-<param> VALUE`` for any task family imported, each value
    parsed (a bad one is refused before anything runs); and the arguments left over."""
    parser = arguments.Parser(prog="charon", exit_on_error=False, add_help=False,
                              allow_abbrev=False)
    group = parser.add_argument_group("per-family parameters")
    parameters: dict[str, tuple[str, str, Parameter[Any]]] = {}
    for family, classes in families().items():
        for task_class in classes:
            for name, parameter in task_class.parameters().items():
                dest = f"{family}.{name}"
                if dest not in parameters:
                    parameters[dest] = (family, name, parameter)
                    _add_flag(group, (family_flag(family, name), f"--{family}-{name}"),
                              dest, parameter)
    given, rest = _parse(parser, argv)
    overrides: dict[str, dict[str, object]] = {}
    for dest, text in given.items():
        family, name, parameter = parameters[dest]
        try:
            overrides.setdefault(family, {})[name] = parameter.normalize(text)
        except UsageError as exc:
            raise UsageError(f"{family_flag(family, name)}: {exc}") from None
    return overrides, rest


def parameters_help(task_class: type[Task]) -> str:
    """What ``charon run --module M TASK --help`` adds to the command's own help."""
    family = task_class.task_family
    example = family_flag(family, next(iter(task_class.parameters()), "param"))
    overrides = textwrap.fill(
        f"Any task's parameter may also be given as --<Family>-<param> VALUE (e.g. {example}):"
        " it applies wherever that family is built without it, as in Luigi.", width=78)
    lines = [summary(task_class), task_parser(task_class, "").format_help().rstrip(), overrides]
    return "\n\n".join(filter(None, lines))


def module_families_help(module: str) -> str:
    """Every ``--<Family>-<param>`` of the tasks defined in ``module`` (for ``--help-all``)."""
    sections = []
    for family, classes in sorted(families().items()):
        task_class = classes[0]
        if task_class.__module__ != module and not task_class.__module__.startswith(
                f"{module}."):
            continue
        parser = arguments.Parser(prog="", add_help=False, usage=argparse.SUPPRESS)
        group = parser.add_argument_group(f"{family} parameters")
        for name, parameter in task_class.parameters().items():
            _add_flag(group, (family_flag(family, name),), name, parameter)
        if task_class.parameters():
            sections.append(parser.format_help().rstrip())
    return "\n\n".join(sections)


def every_command_help(parser: argparse.ArgumentParser) -> str:
    """The help of ``parser`` and of every command below it, in order."""
    sections = [parser.format_help().rstrip()]
    for action in parser._actions:  # argparse keeps its subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for command in action.choices.values():
                if id(command) not in seen:
                    seen.add(id(command))
                    sections.append(f"\n=== {command.prog} ===\n")
                    sections.append(every_command_help(command))
    return "\n".join(sections)


def required_missing(args: argparse.Namespace) -> list[str]:
    """What a task command was not given: ``--module`` and ``TASK``."""
    return [name for name, value in (("--module", args.module), ("TASK", args.family))
            if value is None]

