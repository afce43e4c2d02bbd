"""``lineage.kind`` = ``console``, ``file`` or ``http``: events sent through
openlineage-python's own transports (the ``openlineage`` extra).

The transports are used without the client's ``OpenLineageClient`` around them: its
``emit`` takes only the client's attrs event classes, and it merges settings charon does
not own into every event (``OPENLINEAGE_*`` variables, an ``openlineage.yml`` in the
working directory: filters, tags, environment facets). A transport serialises with the
client's ``Serde``, which takes charon's event dict as it is, so what goes on the wire is
the event ``base.run_event`` built, keys sorted.

Each transport is blocking (requests, file writes, logging): ``emit`` runs in a worker
thread, called by the emitter's one sender task.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import cast

import anyio
from openlineage.client.transport import console
from openlineage.client.transport.console import ConsoleConfig, ConsoleTransport
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.transport import Transport

from orchestrator.config import LineageSettings
from orchestrator.errors import AdapterError
from orchestrator.stores.lineage.base import Event, Send

# One attempt per event, as long as ``lineage.timeout_seconds``: the client's default
# retries would multiply how long a receiver that is down holds the queue.
NO_RETRY = {"total": 0}


def console_transport() -> Transport:
    """The client's console transport logs each event at INFO through stdlib logging;
    its logger gets a handler that prints the message alone on stderr (where charon's log
    goes: stdout carries what a command prints for its user)."""
    logger = logging.getLogger(console.__name__)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return ConsoleTransport(ConsoleConfig())


async def file_transport(path: Path) -> Transport:
    """Appended to ``path``: one write of a whole line per event, so lines of several
    processes sharing the file do not interleave."""
    # A folder that cannot be made shows as each event's error, never as the command's.
    with suppress(OSError):
        await anyio.Path(path.parent).mkdir(parents=True, exist_ok=True)
    return FileTransport(FileConfig(log_file_path=str(path), append=True))


def http_transport(url: str, *, api_key: str, seconds: float) -> Transport:
    """POSTed to ``url`` itself (Marquez's ``/api/v1/lineage``, DataHub's
    ``/openapi/openlineage/api/v1/lineage``), ``api_key`` as a bearer token."""
    auth = ApiKeyTokenProvider({"apiKey": api_key}) if api_key else TokenProvider({})
    return HttpTransport(HttpConfig(url=url, endpoint="", timeout=seconds, auth=auth,
                                    retry=NO_RETRY))


async def open_transport(config: LineageSettings, api_key: str) -> Transport:
    """The transport of ``config.kind`` (not ``none``)."""
    if config.kind == "console":
        return console_transport()
    if config.kind == "file":
        return await file_transport(config.path)
    return http_transport(config.url, api_key=api_key, seconds=config.timeout_seconds)


def sender(transport: Transport) -> Send:
    """Each event through ``transport`` in a worker thread; whatever the client raises
    (requests' errors, a non-2xx answer, its file errors) comes out as an AdapterError."""
    # The transports' signature names only the client's attrs events; their Serde takes
    # a dict as it is.
    emit = cast("Callable[[Event], object]", transport.emit)

    async def send(event: Event) -> None:
        try:
            # Abandoned when the exit's bound is reached: the thread ends within the
            # client's own timeout.
            await anyio.to_thread.run_sync(emit, event, abandon_on_cancel=True)
        except Exception as exc:  # the client's, requests' and OS errors alike
            raise AdapterError(f"{transport.kind} transport: {exc}") from exc

    return send
