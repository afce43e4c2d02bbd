"""A JSON request body decoded with bounds, so no input can crash the decoder.

``json.loads`` alone recurses once per nesting level (100,000 ``[`` raise
RecursionError), accepts NaN and Infinity, turns ``1e999`` into infinity, reads
integers of thousands of digits, lets a later duplicate key silently win, and keeps
lone surrogates (``"\\ud800"``) that no database or UTF-8 encoder takes. Every one of
those is a :class:`UsageError` here, before anything else sees the value.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from orchestrator.errors import UsageError

DEFAULT_MAX_DEPTH = 32
# Integers within signed 64 bits (what a database column holds); a float written in at
# most this many characters. Both are checked on the text, before converting it.
MAX_INTEGER = 2**63 - 1
MAX_NUMBER_CHARS = 32
# A string (escapes and all, possessive so it never backtracks) or one bracket: strings
# are skipped whole, so a bracket inside one does not count towards the depth.
_TOKEN = re.compile(r'"(?:[^"\\]++|\\.)*+"|[\[\]{}]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")


def decode_object(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> dict[str, Any]:
    """The JSON object in ``body``; UsageError for anything else or anything unbounded."""
    try:
        text = body.decode("utf-8")  # strict: refuses invalid bytes and encoded surrogates
    except UnicodeDecodeError:
        raise UsageError("the request body is not valid JSON: not UTF-8") from None
    _check_depth(text, max_depth)
    try:
        value = json.loads(text, parse_int=_integer, parse_float=_float,
                           parse_constant=_constant, object_pairs_hook=_object)
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise UsageError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("the request body must be a JSON object")
    _check_strings(value)
    return value


def _check_depth(text: str, max_depth: int) -> None:
    depth = 0
    for token in _TOKEN.finditer(text):
        bracket = token[0]
        if bracket in "[{":
            depth += 1
            if depth > max_depth:
                raise UsageError(f"the request body is nested deeper than {max_depth} levels")
        elif bracket in "]}":
            depth -= 1


def _integer(text: str) -> int:
    # The length first: int() of thousands of digits is slow, and refused past 4,300.
    if len(text.lstrip("-")) > len(str(MAX_INTEGER)) or abs(number := int(text)) > MAX_INTEGER:
        raise UsageError(f"the request body holds an integer out of range: {text[:40]}")
    return number


def _float(text: str) -> float:
    number = float(text) if len(text) <= MAX_NUMBER_CHARS else math.inf
    if not math.isfinite(number):
        raise UsageError(f"the request body holds a number out of range: {text[:40]}")
    return number


def _constant(text: str) -> float:
    raise UsageError(f"the request body holds {text}, which JSON does not allow")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise UsageError("the request body names a field twice")
    return value


def _check_strings(value: object) -> None:
    """Refuse lone surrogates in any key or string; recurses no deeper than the depth
    already checked."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise UsageError("the request body holds a lone surrogate (\\ud800-\\udfff)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)
