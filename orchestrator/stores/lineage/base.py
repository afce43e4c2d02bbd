"""The lineage port: OpenLineage run events, and the rules every backend shares.

A run of a task is one OpenLineage run: its id is charon's run id (a UUID), its job is
the task family in the configured job namespace. Datasets are named after the
OpenLineage naming conventions: a warehouse table ``project.dataset.table`` in
``bigquery`` (or ``duckdb://<warehouse folder>``), a storage object by its path in
``file`` or ``gs://<bucket>``, a PostgreSQL table ``database.schema.table`` in
``postgres://host:port``, and a registry endpoint by its name in the registry's own
namespace; the partition and the revision travel as facets, so Marquez or DataHub show
one dataset per endpoint with its versions.

Events are plain dicts following the OpenLineage 2-0-2 spec, built here without the
client library, so that a process with lineage off never imports it; they are sent
through openlineage-python's transports (``transports.py``, the ``openlineage`` extra),
whose serialiser takes a dict as it is. Those transports block (requests, file writes,
stdlib logging): ``QueuedEmitter`` keeps them off the run's path, in one sender task.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.log import get_logger
from orchestrator.model import Run

Event = dict[str, Any]
"""One OpenLineage RunEvent, as JSON."""

PRODUCER = "https://github.com/charon-orchestrator/charon"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACETS = "https://openlineage.io/spec/facets"
ERROR_FACET = f"{_FACETS}/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet"
VERSION_FACET = f"{_FACETS}/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet"
# charon's own facets: where their fields are described.
CHARON_FACET = f"{PRODUCER}/blob/main/README.md#openlineage"
START, COMPLETE, FAIL, ABORT = "START", "COMPLETE", "FAIL", "ABORT"


class LineageEmitter(Protocol):
    async def emit(self, event: Event) -> None:
        """Hand ``event`` on; never raises and never waits on the receiver."""

    async def aclose(self) -> None:
        """Send what is queued (within a bound), then stop."""


class NoLineage:
    """``lineage.kind = "none"``: nothing is emitted."""

    async def emit(self, event: Event) -> None:
        """Dropped: lineage is off."""

    async def aclose(self) -> None:
        """Nothing to close."""


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str
    facets: Mapping[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"namespace": self.namespace, "name": self.name, "facets": dict(self.facets)}


@dataclass(frozen=True)
class Naming:
    """Where this process's datasets live, from its settings (see the module's doc)."""

    job_namespace: str = "charon"
    registry: str = "charon"
    warehouse: str = "bigquery"
    postgres: str = "postgres://localhost:5432"
    postgres_database: str = "postgres"

    def registry_dataset(self, endpoint: str, partition: str, revision: str | None) -> Dataset:
        facets = {"charon_partition": _facet(CHARON_FACET, partition=partition)}
        if revision is not None:
            facets["version"] = _facet(VERSION_FACET, datasetVersion=revision)
        return Dataset(self.registry, endpoint, facets)

    def table_dataset(self, project: str, dataset: str, table: str,
                      revision: str | None) -> Dataset:
        return Dataset(self.warehouse, f"{project}.{dataset}.{table}", _versioned(revision))

    def postgres_dataset(self, table: str, revision: str | None) -> Dataset:
        schema, _, name = table.rpartition(".")
        qualified = f"{self.postgres_database}.{schema or 'public'}.{name}"
        return Dataset(self.postgres, qualified, _versioned(revision))


@dataclass(frozen=True)
class Lineage:
    """What a process emits lineage through, and how it names its datasets."""

    emitter: LineageEmitter = field(default_factory=NoLineage)
    naming: Naming = field(default_factory=Naming)

    @property
    def off(self) -> bool:
        """Nothing is emitted: a run then describes none of its events (describing them
        took 6% of the main loop's time in a one-shot run of many leaves)."""
        return isinstance(self.emitter, NoLineage)


def storage_dataset(uri: str, revision: str | None) -> Dataset:
    """``gs://bucket/path`` in ``gs://bucket``; a local path in ``file``."""
    if uri.startswith("gs://"):
        bucket, _, path = uri[len("gs://"):].partition("/")
        return Dataset(f"gs://{bucket}", path, _versioned(revision))
    return Dataset("file", uri, _versioned(revision))


def namespace_of(url: str) -> str:
    """A server's address as a namespace: scheme://host:port, never its credentials."""
    parts = urlsplit(url)
    scheme = "postgres" if parts.scheme.startswith("postgres") else parts.scheme
    port = f":{parts.port}" if parts.port else ""
    return f"{scheme}://{parts.hostname or 'localhost'}{port}"


def run_event(kind: str, run: Run, naming: Naming, *, inputs: Sequence[Dataset] = (),
              outputs: Sequence[Dataset] = (), error: str | None = None) -> Event:
    """The RunEvent of ``kind`` (START, COMPLETE, FAIL, ABORT) for ``run``."""
    facets: dict[str, Any] = {"charon_run": _facet(
        CHARON_FACET, partition=run.partition, fingerprint=run.fingerprint,
        taskId=run.task_id, attempt=run.attempt,
        inputRevisions={i.key: i.revision_id for i in run.inputs},
    )}
    if error is not None:
        facets["errorMessage"] = _facet(ERROR_FACET, message=error,
                                        programmingLanguage="python")
    return {
        "eventType": kind,
        "eventTime": datetime.now(UTC).isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": run.id, "facets": facets},
        "job": {"namespace": naming.job_namespace, "name": run.family, "facets": {}},
        "inputs": [d.as_json() for d in inputs],
        "outputs": [d.as_json() for d in outputs],
    }


def _facet(schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def _versioned(revision: str | None) -> dict[str, Any]:
    return {} if revision is None else {"version": _facet(VERSION_FACET,
                                                          datasetVersion=revision)}


Send = Callable[[Event], Awaitable[None]]


@dataclass
class Counts:
    sent: int = 0
    failed: int = 0
    dropped: int = 0


class QueuedEmitter:
    """Emission off the run's path: ``emit`` only queues (bounded; full drops and logs),
    one task sends in order; a failed send is logged and counted, never raised."""

    def __init__(self, send: Send, *, queue: int) -> None:
        self._send = send
        self._in: MemoryObjectSendStream[Event]
        self._out: MemoryObjectReceiveStream[Event]
        self._in, self._out = anyio.create_memory_object_stream[Event](queue)
        self.counts = Counts()
        self._log = get_logger("charon.lineage")

    async def emit(self, event: Event) -> None:
        try:
            self._in.send_nowait(event)
        except anyio.WouldBlock:
            self.counts.dropped += 1
            self._log.warning("lineage queue full: event dropped",
                              event_type=event["eventType"], run_id=event["run"]["runId"],
                              dropped=self.counts.dropped)
        except anyio.ClosedResourceError:
            self.counts.dropped += 1

    async def sender(self) -> None:
        """Send queued events until closed; run in the process's task group."""
        async with self._out:
            async for event in self._out:
                try:
                    await self._send(event)
                except Exception as exc:  # whatever a receiver does, runs go on
                    self.counts.failed += 1
                    self._log.warning("lineage event not sent", error=str(exc),
                                      event_type=event["eventType"],
                                      run_id=event["run"]["runId"], failed=self.counts.failed)
                else:
                    self.counts.sent += 1

    async def aclose(self) -> None:
        """Stop taking events; the sender then sends what is queued and stops."""
        self._in.close()


@asynccontextmanager
async def sending(emitter: QueuedEmitter, close_timeout: float) -> AsyncIterator[None]:
    """Run ``emitter``'s sender for the block; on exit give it ``close_timeout`` seconds
    to send what is queued. The block's own error comes out as it was raised, not
    wrapped in the task group's ExceptionGroup."""
    failure: BaseException | None = None
    async with anyio.create_task_group() as group:
        scope = anyio.CancelScope()

        async def send_all() -> None:
            with scope:
                await emitter.sender()

        group.start_soon(send_all)
        try:
            yield
        except BaseException as exc:  # re-raised below, outside the task group
            failure = exc
        finally:
            await emitter.aclose()
            scope.deadline = anyio.current_time() + close_timeout
    if failure is not None:
        raise failure
