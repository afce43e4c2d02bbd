"""The ports the core works through, as one bundle the composition root fills in.

The core owns this type so that it never imports the composition root
(``orchestrator.adapters``), which is the one place that picks and builds backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.stores.database.base import Database
from orchestrator.stores.lineage.base import Lineage
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.runlogs.base import NoRunLogs, RunLogs
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Warehouse


@dataclass(frozen=True)
class Adapters:
    registry: Registry
    warehouse: Warehouse
    storage: Storage
    state: StateStore
    output_prefix: str
    """Where registry outputs without a ``uri_prefix`` of their own are written
    (``StorageSettings.resolved_output_prefix``)."""
    database: Database | None = None
    """The PostgreSQL database CopyToTable tasks load into; None without postgres.dsn."""
    data_prefix: str = ""
    """What relative StorageTarget URIs (Luigi's ``data/...``) are resolved against
    (``StorageSettings.data_prefix``)."""
    lineage: Lineage = field(default_factory=Lineage)
    """Where OpenLineage events of runs go; nowhere by default (``lineage.kind``)."""
    run_logs: RunLogs = field(default_factory=NoRunLogs)
    """Where each run's job output is kept for the run page (``<home>/logs``)."""
