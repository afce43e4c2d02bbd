"""The composition root: the one place that picks backends and runners from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING

from jobs.runners.base import JobRunner
from jobs.runners.beam import SubprocessJobRunner
from orchestrator.config import Settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.errors import UsageError
from orchestrator.stores.database.base import Database
from orchestrator.stores.lineage.base import (
    Lineage,
    Naming,
    QueuedEmitter,
    Send,
    namespace_of,
    sending,
)
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.runlogs.files import FileRunLogs
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.sqlite import SqliteStateStore
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.stores.warehouse.duckdb import DuckDBWarehouse
from sensors.guard import SourceGuards

if TYPE_CHECKING:
    import aiohttp

# The adapters of other backends are imported where they are chosen: their clients
# (aiohttp, gcloud-aio, asyncpg) took most of a command's start-up on the defaults.

DATAFLOW_RUNNER = "DataflowRunner"


@contextmanager
def _extra(name: str) -> Iterator[None]:
    """Imports of an optional extra's clients: when one is not installed, one line that
    says which extra to install instead of a traceback."""
    try:
        yield
    except ModuleNotFoundError as missing:
        package = str(missing.name).partition(".")[0]
        raise UsageError(f"{package} is not installed: pip install 'charon[{name}]'") from missing


async def _build_registry(settings: Settings) -> Registry:
    config = settings.registry
    if config.kind == "postgres":
        from orchestrator.stores.registry.postgres import PostgresRegistry  # noqa: PLC0415  # see top

        return await PostgresRegistry.open(config.dsn)
    if config.kind == "http":
        from orchestrator.stores.registry.http import HttpRegistry  # noqa: PLC0415  # see top

        return await HttpRegistry.open(
            config.url, token=settings.secrets.registry_token, timeout=config.timeout_seconds
        )
    return await SqliteRegistry.open(config.path)


async def _build_state(settings: Settings) -> StateStore:
    if settings.state.kind == "postgres":
        from orchestrator.stores.state.postgres import PostgresStateStore  # noqa: PLC0415  # see top

        return await PostgresStateStore.open(settings.state.dsn)
    return await SqliteStateStore.open(settings.state.path)


@asynccontextmanager
async def open_registry(settings: Settings) -> AsyncIterator[Registry]:
    """The configured registry alone (by ``registry.kind``), closed on exit."""
    registry = await _build_registry(settings)
    try:
        yield registry
    finally:
        await registry.aclose()


async def _warehouse_and_storage(
    settings: Settings, stack: AsyncExitStack
) -> tuple[Warehouse, Storage]:
    """By ``warehouse.kind`` and ``storage.kind``, each on its own; the Google Cloud
    adapters share one aiohttp session (one connection pool), closed after both."""
    session: aiohttp.ClientSession | None = None
    if settings.warehouse.kind == "bigquery" or settings.storage.kind == "gcs":
        with _extra("gcp"):
            from orchestrator.stores.drivers.gcp import new_session  # noqa: PLC0415  # see top

        session = await stack.enter_async_context(new_session())
    warehouse: Warehouse
    if settings.warehouse.kind == "bigquery":
        with _extra("gcp"):
            from orchestrator.stores.warehouse.bigquery import BigQueryWarehouse  # noqa: PLC0415

        warehouse = await BigQueryWarehouse.open(
            project=settings.warehouse.project, location=settings.warehouse.location,
            session=session,
        )
    else:
        warehouse = DuckDBWarehouse(settings.warehouse.path, settings.warehouse.location)
    stack.push_async_callback(warehouse.aclose)
    storage: Storage
    if settings.storage.kind == "gcs":
        with _extra("gcp"):
            from orchestrator.stores.storage.gcs import GcsStorage  # noqa: PLC0415  # see top

        storage = await GcsStorage.open(session=session)
    else:
        storage = LocalStorage(settings.storage.root)
    stack.push_async_callback(storage.aclose)
    return warehouse, storage


def _naming(settings: Settings) -> Naming:
    """Each store's namespace, from where it is configured (OpenLineage's conventions)."""
    registry = settings.registry
    where = {"http": registry.url.rstrip("/"), "postgres": namespace_of(registry.dsn)}
    warehouse = settings.warehouse
    pg_database = settings.postgres.dsn.rpartition("/")[2].partition("?")[0]
    return Naming(
        job_namespace=settings.lineage.namespace,
        registry=where.get(registry.kind, f"charon+file://{registry.path}"),
        warehouse="bigquery" if warehouse.kind == "bigquery" else f"duckdb://{warehouse.path}",
        postgres=namespace_of(settings.postgres.dsn or "postgres://localhost:5432"),
        postgres_database=pg_database or "postgres",
    )


async def _lineage_sender(settings: Settings, stack: AsyncExitStack) -> Send | None:
    """Through openlineage-python's transport of ``lineage.kind``; None when lineage is
    off."""
    if settings.lineage.kind == "none":
        return None
    with _extra("openlineage"):
        from orchestrator.stores.lineage.transports import (  # noqa: PLC0415  # see top
            open_transport,
            sender,
        )
    transport = await open_transport(settings.lineage, settings.secrets.lineage_api_key)
    stack.callback(transport.close)
    return sender(transport)


async def _build_lineage(settings: Settings, stack: AsyncExitStack) -> Lineage:
    """Events are queued and sent by a task of their own, never on a run's path; on
    exit what is queued gets ``lineage.timeout_seconds`` to go out."""
    send = await _lineage_sender(settings, stack)
    if send is None:
        return Lineage(naming=_naming(settings))
    emitter = QueuedEmitter(send, queue=settings.lineage.queue)
    await stack.enter_async_context(sending(emitter, settings.lineage.timeout_seconds))
    return Lineage(emitter, _naming(settings))


@asynccontextmanager
async def open_adapters(settings: Settings) -> AsyncIterator[Adapters]:
    """Open every configured backend; close them all on exit, whatever happened."""
    async with AsyncExitStack() as stack:
        registry = await stack.enter_async_context(open_registry(settings))
        state = await _build_state(settings)
        stack.push_async_callback(state.aclose)
        warehouse, storage = await _warehouse_and_storage(settings, stack)
        database: Database | None = None
        if settings.postgres.dsn:
            from orchestrator.stores.database.postgres import PostgresDatabase  # noqa: PLC0415  # see top

            database = await PostgresDatabase.open(settings.postgres.dsn)
            stack.push_async_callback(database.aclose)
        lineage = await _build_lineage(settings, stack)
        yield Adapters(registry, warehouse, storage, state,
                       settings.storage.resolved_output_prefix, database,
                       settings.storage.data_prefix, lineage,
                       FileRunLogs(settings.home / "logs"))


def local_job_runner() -> JobRunner:
    """What runs jobs that always run on this machine (spark-submit), even when Beam jobs
    go to Dataflow."""
    return SubprocessJobRunner()


@asynccontextmanager
async def open_job_runner(settings: Settings) -> AsyncIterator[JobRunner]:
    """By ``beam.runner``; the Dataflow runner's HTTP session is closed on exit."""
    if settings.beam.runner != DATAFLOW_RUNNER:
        # Every other Beam runner runs the pipeline inside the launched process.
        yield SubprocessJobRunner()
        return
    with _extra("gcp"):
        from jobs.runners.dataflow import DataflowJobRunner  # noqa: PLC0415  # see top
        from orchestrator.stores.drivers.gcp import new_session  # noqa: PLC0415  # see top

    async with new_session() as session:
        yield DataflowJobRunner.from_settings(settings, session)


def build_engine(
    adapters: Adapters,
    settings: Settings,
    runner: JobRunner,
    *,
    local_runner: JobRunner | None = None,
    max_concurrent_runs: int | None = None,
) -> Engine:
    """The engine as the settings describe it.

    ``runner`` runs Beam jobs; ``local_runner`` the jobs that always run on this machine
    (spark-submit), even when Beam jobs go to Dataflow.
    """
    return Engine(
        adapters, runner=runner, beam=settings.beam,
        max_concurrent_runs=max_concurrent_runs or settings.engine.max_concurrent_runs,
        lease=timedelta(seconds=settings.engine.lease_seconds), local_runner=local_runner,
        guards=SourceGuards(settings.engine.lookup_timeout_seconds),
    )
