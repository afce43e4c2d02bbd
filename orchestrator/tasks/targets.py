"""Where a task's output goes, and where an external input is found.

Targets are plain frozen descriptions; the engine resolves them through the
configured adapters, so a workflow never names a backend. Each place that acts on
targets (commit, sensors, the daemon's watch, the CLI) keeps one small handler per
target kind in a :class:`TargetKinds`: a new kind is one handler in each of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from orchestrator import validate
from orchestrator.errors import InvalidIdentifier, UsageError
from orchestrator.tablespec import TableSpec


@dataclass(frozen=True)
class RegistryTarget:
    """A partition of a registry endpoint (the golden-path tutorial's ``HadesTarget``).

    As an input it resolves to the partition's latest revision and the job gets
    ``<revision uri>/<pattern>``. As an output the job writes under a fresh random
    URI below ``uri_prefix`` (the configured storage prefix when None), which is
    published as a new revision only after the run succeeded.
    """

    endpoint: str
    partition: str
    uri_prefix: str | None = None
    pattern: str = "*"

    def __post_init__(self) -> None:
        validate.endpoint(self.endpoint)
        validate.partition(self.partition)
        if self.uri_prefix is not None:
            validate.uri(self.uri_prefix)

    def __str__(self) -> str:
        return f"registry {self.endpoint} {self.partition}"


@dataclass(frozen=True)
class WarehouseTable:
    """A warehouse table (the golden-path tutorial's ``BigQueryTarget``)."""

    project_id: str
    dataset_id: str
    table_id: str

    def __post_init__(self) -> None:
        self.spec  # noqa: B018  # validates the identifiers at construction

    @property
    def spec(self) -> TableSpec:
        return TableSpec(self.project_id, self.dataset_id, self.table_id)

    def __str__(self) -> str:
        return f"table {self.spec}"


@dataclass(frozen=True)
class StorageTarget:
    """One object in storage (Luigi's top-artists example's ``LocalTarget`` of an external input).

    ``uri`` is absolute (``gs://bucket/path``, ``/path``) or relative, like Luigi's
    ``LocalTarget("data/...")``: relative URIs are resolved against the storage's data
    prefix (the local storage root; on GCS, ``storage.output_prefix``). Input only:
    outputs go to a registry target, which makes them atomic and gives them lineage.
    """

    uri: str

    def __post_init__(self) -> None:
        if not self.uri or any(c in self.uri for c in "\n\r\0") or ".." in self.uri.split("/"):
            raise InvalidIdentifier(f"invalid storage URI {self.uri!r}")
        if self.uri.startswith(("gs://", "/")):
            validate.uri(self.uri)

    def resolve(self, data_prefix: str) -> str:
        """The absolute URI, a relative one joined to ``data_prefix``."""
        if self.uri.startswith(("gs://", "/")):
            return self.uri
        if not data_prefix:
            raise UsageError(f"{self.uri} is relative but no storage data prefix is configured")
        return f"{data_prefix.rstrip('/')}/{self.uri}"

    def __str__(self) -> str:
        return f"storage {self.uri}"


@dataclass(frozen=True)
class PostgresTable:
    """A PostgreSQL table loaded once per task (Luigi's top-artists example's ``PostgresTarget``).

    It exists when its marker row (``marker``, the loading task's id) is in the marker
    table: the rows and the marker are written in one transaction, so either both are
    there or neither is.
    """

    table: str
    marker: str

    def __post_init__(self) -> None:
        validate.pg_table(self.table)
        if not self.marker or len(self.marker) > 1000:
            raise InvalidIdentifier(f"invalid marker {self.marker!r}: 1 to 1000 characters")

    def __str__(self) -> str:
        return f"postgres table {self.table} marked {self.marker}"


Target = RegistryTarget | WarehouseTable | StorageTarget | PostgresTable


Handler = TypeVar("Handler")


class TargetKinds(Generic[Handler]):
    """One place's handlers, by target kind (a subclass of a kind is that kind)."""

    def __init__(self, place: str, handlers: Mapping[type[Target], Handler]) -> None:
        """``place`` names the handlers in errors: "commit", "sensor"…"""
        self._place = place
        self._handlers = dict(handlers)

    def __call__(self, target: Target) -> Handler:
        for kind in type(target).__mro__:
            if (handler := self._handlers.get(kind)) is not None:
                return handler
        known = ", ".join(sorted(kind.__name__ for kind in self._handlers))
        raise UsageError(f"no {self._place} handler for target kind "
                         f"{type(target).__name__} ({target}); known kinds: {known}")
