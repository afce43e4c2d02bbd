"""``lineage.kind = "console"``: each event as one JSON line on stderr.

Stderr, where charon's log goes: stdout carries what a command prints for its user.
"""

from __future__ import annotations

import json
import sys

from orchestrator.stores.lineage.base import Event


async def send(event: Event) -> None:
    print(json.dumps(event, sort_keys=True), file=sys.stderr, flush=True)
