"""The declared bounds of settings: a range, a set of values or a pattern per key.

A settings dataclass states each key's rule in its field's metadata
(``port: int = field(metadata=within(0, 65535))``), and :func:`problems` checks a
section's values against them, so the rules are a table beside the keys, not code
scattered through the loader.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

MAX_PORT = 65535
# What a value may be shown as in an error: a 5,000-digit number or a long string is
# cut, so the error stays one readable line.
_SHOWN = 40
# ASCII control characters (a NUL from the environment among them) belong in no setting.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# A whole number as users write it, matched whole: ASCII digits only (int() also takes
# full-width ones and "1_000"), and few enough (int() raises past 4,300 of them).
INTEGER = re.compile(r"[+-]?[0-9]{1,30}")
# Fullmatch, ASCII only: a dotted Python module path (jobs.top_artists), an identifier.
IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
MODULE_PATH = re.compile(rf"{IDENTIFIER}(?:\.{IDENTIFIER})*")
# A host name, an IPv4 address or an IPv6 literal: what a server may listen on.
HOST = re.compile(r"[A-Za-z0-9_.:-]{1,253}")


@dataclass(frozen=True)
class Rule:
    """A number's range, or a string's allowed values or pattern (None: any)."""

    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    spelling: str = ""
    """What the pattern accepts, in words, for the error."""
    optional: bool = True
    """An empty string is allowed: it means unset."""

    def problem(self, value: object) -> str | None:
        """Why ``value`` breaks the rule; None when it does not."""
        if isinstance(value, int) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"must be at least {self.minimum}"
            if self.maximum is not None and value > self.maximum:
                return f"must be at most {self.maximum}"
        elif isinstance(value, str):
            return self._text_problem(value)
        elif isinstance(value, list | tuple):
            return next(filter(None, map(self.problem, value)), None)
        return None

    def _text_problem(self, value: str) -> str | None:
        if _CONTROL.search(value):
            return "must not contain control characters"
        if self.choices and value not in self.choices:
            return f"expected one of {', '.join(self.choices)}"
        if self.pattern is None or (self.optional and not value):
            return None
        if not self.pattern.fullmatch(value):
            return f"expected {self.spelling}"
        return None


def within(minimum: int, maximum: int) -> dict[str, Rule]:
    return {"rule": Rule(minimum=minimum, maximum=maximum)}


def one_of(*choices: str) -> dict[str, Rule]:
    return {"rule": Rule(choices=choices)}


def matching(pattern: re.Pattern[str] | str, spelling: str, *,
             optional: bool = True) -> dict[str, Rule]:
    """A string of this pattern (matched whole); ``optional``: or empty, meaning unset."""
    return {"rule": Rule(pattern=re.compile(pattern), spelling=spelling, optional=optional)}


PORT = within(0, MAX_PORT)
HOST_NAME = matching(HOST, "a host name or IP address")
URL = matching(r"https?://[^\s]+", "an http:// or https:// URL")
DSN = matching(r"postgres(?:ql)?://[^\s]*", "a postgresql:// or postgres:// DSN")
_ANY = Rule()


def problems(section: type, values: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, problem) for every value of a settings dataclass's fields that breaks its
    rule; every string is at least free of control characters."""
    for item in fields(section):
        if item.name in values:
            rule: Rule = item.metadata.get("rule", _ANY)
            if (problem := rule.problem(values[item.name])) is not None:
                yield item.name, problem


def shown(value: object) -> str:
    """``repr(value)``, cut to one short line."""
    text = repr(value) if not isinstance(value, int) or abs(value) < 10**_SHOWN else "<huge>"
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}…"
