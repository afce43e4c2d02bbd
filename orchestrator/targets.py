"""Where a task's output goes, and where an external input is found.

Targets are plain frozen descriptions; the engine resolves them through the
configured adapters, so a workflow never names a backend.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator import validate
from orchestrator.tablespec import TableSpec


@dataclass(frozen=True)
class RegistryTarget:
    """A partition of a registry endpoint (the seed's ``HadesTarget``).

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
    """A warehouse table (the seed's ``BigQueryTarget``)."""

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


Target = RegistryTarget | WarehouseTable
