"""The ``charon`` command's entry point: its modules are imported with the cyclic
garbage collector off.

Importing them makes tens of thousands of objects that live as long as the process,
and the collector's passes over them while they are being made find nothing to free:
about 3% of the instructions of a ``charon run`` that finds everything complete.
``main`` then freezes them out of every later pass (orchestrator.cli.main).
"""

from __future__ import annotations

import gc


def main() -> None:
    gc.disable()
    try:
        from orchestrator.cli import main as command  # noqa: PLC0415  # the point of this module
    finally:
        gc.enable()
    command.main()
