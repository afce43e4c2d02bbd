"""The contract suites against the in-memory adapters of orchestrator.testing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import anyio
import pytest

from orchestrator.errors import InvalidIdentifier, StorageError
from orchestrator.stores.database.base import Database
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryDatabase,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
    ManualClock,
)
from tests.contracts.database import DatabaseContract
from tests.contracts.job_runner import Fate, JobRunnerContract, Jobs
from tests.contracts.registry import RegistryContract
from tests.contracts.state import StateStoreContract
from tests.contracts.storage import StorageContract
from tests.contracts.warehouse import WarehouseContract


class TestInMemoryRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self) -> AsyncIterator[Registry]:
        registry = InMemoryRegistry()
        yield registry
        await registry.aclose()


class TestInMemoryStateStore(StateStoreContract):
    @pytest.fixture
    async def state(self, clock: ManualClock) -> AsyncIterator[StateStore]:
        store = InMemoryStateStore(now=clock)
        yield store
        await store.aclose()


class TestInMemoryWarehouse(WarehouseContract):
    @pytest.fixture
    async def warehouse(self) -> AsyncIterator[Warehouse]:
        warehouse = InMemoryWarehouse(location="EU")
        yield warehouse
        await warehouse.aclose()

    def test_needs_no_job_options(self) -> None:
        assert InMemoryWarehouse().job_options() == []

    def test_location_is_validated(self) -> None:
        with pytest.raises(InvalidIdentifier):
            InMemoryWarehouse(location="EU; DROP")


class TestInMemoryStorage(StorageContract):
    @pytest.fixture
    def base(self) -> str:
        return "gs://bucket/tests/"

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        storage = InMemoryStorage()
        yield storage
        await storage.aclose()

    async def test_root_confines_uris(self) -> None:
        storage = InMemoryStorage(root="/data/")
        with pytest.raises(StorageError):
            await storage.write("/elsewhere/x", b"x")
        with pytest.raises(StorageError):
            await storage.write("relative/x", b"x")
        await storage.write("/data/x", b"x")
        assert await storage.exists("/data/x")


class TestInMemoryDatabase(DatabaseContract):
    @pytest.fixture
    def memory(self) -> InMemoryDatabase:
        return InMemoryDatabase()

    @pytest.fixture
    async def database(self, memory: InMemoryDatabase) -> AsyncIterator[Database]:
        yield memory
        await memory.aclose()

    @pytest.fixture
    async def crashing(self, memory: InMemoryDatabase) -> AsyncIterator[Database]:
        crashing = InMemoryDatabase()
        crashing.tables, crashing.columns = memory.tables, memory.columns
        crashing.markers, crashing.fail_after_copy = memory.markers, True
        yield crashing
        await crashing.aclose()


class ScriptedJobRunner(FakeJobRunner):
    """The fake runner, its job's fate named by the first word of its command line."""

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        self.fail_with = "the job failed" if argv[0] == Fate.FAILS.value else None
        self.gate = anyio.Event() if argv[0] == Fate.LASTS.value else None
        await super().run(argv, job_name=job_name, on_started=on_started)


class TestFakeJobRunner(JobRunnerContract):
    @pytest.fixture
    def jobs(self) -> Jobs:
        runner = ScriptedJobRunner(InMemoryWarehouse(), InMemoryStorage())
        return Jobs(runner, lambda fate: [fate.value], unknown_id="fake-999")
