"""A service's answer read as JSON, so that no answer can crash the client reading it.

``json.loads`` raises RecursionError, not ValueError, on an answer nested deeper than
the interpreter's stack allows: 200,000 ``[`` are 200 KB, and such an answer from a
registry service (or from whatever a mistyped URL reaches) ended a daemon's registry
sensor, and the daemon with it. Each client of a service reads its answers here and
turns :class:`MalformedAnswer` into its port's own error, an outage like any other.
"""

from __future__ import annotations

import json


class MalformedAnswer(ValueError):
    """The answer is not JSON, or is nested too deeply to read."""


def decoded(body: bytes | str) -> object:
    """The JSON value of ``body``; MalformedAnswer for anything else."""
    try:
        return json.loads(body)
    except RecursionError:
        raise MalformedAnswer("JSON nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MalformedAnswer(f"no JSON ({exc})") from None
