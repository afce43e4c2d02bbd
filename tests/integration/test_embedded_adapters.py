"""The contract suites against the embedded adapters: SQLite, DuckDB, a local folder."""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import duckdb
import pytest

from orchestrator.errors import InvalidIdentifier, RunConflict, StateStoreError, StorageError
from orchestrator.model import Revision, Run, RunState
from orchestrator.stores.drivers.migrations import load_migrations
from orchestrator.stores.drivers.sqlite import (
    CREATE_MIGRATIONS_TABLE,
    INSERT_MIGRATION,
    split_statements,
)
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.sqlite import SqliteStateStore
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.storage.local import CHUNK_BYTES, LocalStorage
from orchestrator.stores.warehouse import duckdb_files
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.stores.warehouse.duckdb import DuckDBWarehouse
from orchestrator.tablespec import TableSpec
from orchestrator.testing import ManualClock
from tests.contracts.registry import APPLIED_MIGRATIONS, DAY, KEY, RegistryContract
from tests.contracts.state import StateStoreContract, claim
from tests.contracts.storage import StorageContract
from tests.contracts.warehouse import COLUMNS, FINAL, ROWS, WarehouseContract


@contextmanager
def older_state_file(path: Path, *, migrations: int) -> Iterator[sqlite3.Connection]:
    """A state store file as an older charon left it, its first ``migrations`` applied;
    what the block writes in it is committed."""
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY,"
            " name TEXT NOT NULL, applied TEXT NOT NULL)"
        )
        for migration in load_migrations("state/sqlite")[:migrations]:
            for statement in split_statements(migration.sql):
                connection.execute(statement)
            connection.execute("INSERT INTO schema_migrations VALUES (?, ?, '')",
                               (migration.version, migration.name))
        yield connection


class TestSqliteRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self, tmp_path: Path) -> AsyncIterator[Registry]:
        registry = await SqliteRegistry.open(tmp_path / "registry.sqlite")
        yield registry
        await registry.aclose()

    async def test_revisions_survive_reopen(self, tmp_path: Path) -> None:
        path = tmp_path / "nested" / "registry.sqlite"
        first = await SqliteRegistry.open(path)
        published = await first.publish("plays", "2018-10-31", "/data/x", ["lineage-1"])
        await first.aclose()
        second = await SqliteRegistry.open(path)
        try:
            assert await second.get(published.id) == published
            again = await second.publish("plays", "2018-10-31", "/data/y")
            assert again.seq > published.seq
        finally:
            await second.aclose()

    async def test_migrations_apply_once(self, tmp_path: Path) -> None:
        path = tmp_path / "registry.sqlite"
        for _ in range(2):
            registry = await SqliteRegistry.open(path)
            applied = await registry.migrations()
            await registry.aclose()
            assert [(version, name) for version, name, _at in applied] == APPLIED_MIGRATIONS
        with sqlite3.connect(path) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        assert {"revisions", "schema_migrations"} <= tables

    async def test_a_registry_from_before_idempotency_keys_is_upgraded(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "registry.sqlite"
        init = load_migrations("registry/sqlite")[0]
        with closing(sqlite3.connect(path)) as connection, connection:
            connection.execute(CREATE_MIGRATIONS_TABLE)
            for statement in split_statements(init.sql):
                connection.execute(statement)
            connection.execute(INSERT_MIGRATION, (init.version, init.name, "2018-10-31"))
            connection.execute(
                "INSERT INTO revisions (id, endpoint, partition, uri, created, lineage)"
                " VALUES ('old-1', 'plays', ?, '/data/old', ?, '[\"in-1\"]')",
                (DAY, "2018-10-31T01:02:03.004+00:00"),
            )
        registry = await SqliteRegistry.open(path)
        try:
            [old] = await registry.changes(0)
            assert old == Revision("old-1", "plays", DAY, "/data/old",
                                   datetime(2018, 10, 31, 1, 2, 3, 4000, tzinfo=UTC),
                                   ("in-1",), seq=1)
            keyed = await registry.publish("plays", DAY, "/data/new", idempotency_key=KEY)
            assert await registry.publish("plays", DAY, "/data/other", idempotency_key=KEY) == keyed
            assert await registry.changes(0) == [old, keyed]
        finally:
            await registry.aclose()

    async def test_closed_registry_raises_adapter_error(self, tmp_path: Path) -> None:
        registry = await SqliteRegistry.open(tmp_path / "registry.sqlite")
        await registry.aclose()
        with pytest.raises(Exception, match="closed") as caught:
            await registry.latest("plays", "2018-10-31")
        assert type(caught.value).__module__ == "orchestrator.errors"

    async def test_unopenable_file_is_a_registry_error(self, tmp_path: Path) -> None:
        (tmp_path / "a-directory.sqlite").mkdir()
        with pytest.raises(Exception, match="cannot open") as caught:
            await SqliteRegistry.open(tmp_path / "a-directory.sqlite")
        assert type(caught.value).__name__ == "RegistryError"


class TestSqliteStateStore(StateStoreContract):
    @pytest.fixture
    async def state(self, tmp_path: Path, clock: ManualClock) -> AsyncIterator[StateStore]:
        store = await SqliteStateStore.open(tmp_path / "state.sqlite", now=clock)
        yield store
        await store.aclose()

    async def test_run_survives_reopen(self, tmp_path: Path, clock: ManualClock) -> None:
        path = tmp_path / "state.sqlite"
        store = await SqliteStateStore.open(path, now=clock)
        run = await claim(store)
        run = await store.set_job_id(run.id, run.attempt, "job-1")
        await store.aclose()
        reopened = await SqliteStateStore.open(path, now=clock)
        try:
            assert await reopened.get(run.task_id, run.fingerprint) == run
            with pytest.raises(RunConflict):  # the lease outlives the process
                await claim(reopened, owner="worker-b")
            done = await reopened.succeed(run.id, run.attempt, {"out": "/x"})
            assert done.state is RunState.SUCCEEDED
        finally:
            await reopened.aclose()

    async def test_two_connections_claim_exactly_once(self, tmp_path: Path) -> None:
        path = tmp_path / "state.sqlite"
        stores = [await SqliteStateStore.open(path) for _ in range(4)]
        winners: list[Run] = []
        conflicts: list[str] = []

        async def contend(store: StateStore, owner: str) -> None:
            try:
                winners.append(await claim(store, owner=owner))
            except RunConflict:
                conflicts.append(owner)

        try:
            async with anyio.create_task_group() as group:
                for n, store in enumerate(stores):
                    group.start_soon(contend, store, f"process-{n}")
        finally:
            for store in stores:
                await store.aclose()
        assert (len(winners), len(conflicts)) == (1, 3)

    async def test_migrations_apply_once(self, tmp_path: Path) -> None:
        path = tmp_path / "state.sqlite"
        for _ in range(2):
            store = await SqliteStateStore.open(path)
            applied = await store.migrations()
            await store.aclose()
            assert [version for version, _name, _at in applied] == [1, 2, 3, 4, 5, 6, 7, 8, 9]

    async def test_an_older_file_with_two_active_runs_of_a_task_keeps_the_newest(
        self, tmp_path: Path
    ) -> None:
        path = tmp_path / "state.sqlite"
        with older_state_file(path, migrations=3) as connection:
            for n in (1, 2):
                connection.execute(
                    "INSERT INTO runs (id, task_id, family, partition, fingerprint, state,"
                    " attempt, created, updated, touched) VALUES (?, 'T()', 'T', '',"
                    " ?, 'running', 1, '2018-10-31T00:00:00.000+00:00',"
                    " '2018-10-31T00:00:00.000+00:00', ?)", (f"run-{n}", f"fp-{n}", n),
                )
        store = await SqliteStateStore.open(path)
        try:
            older, newer = await store.get("T()", "fp-1"), await store.get("T()", "fp-2")
            assert older is not None
            assert newer is not None
            assert (older.state, newer.state) == (RunState.SUPERSEDED, RunState.RUNNING)
            assert (newer.generation, newer.failures) == (1, 0)
        finally:
            await store.aclose()

    async def test_an_older_file_s_backfills_are_the_command_s(self, tmp_path: Path) -> None:
        """Recorded before a backfill kept its runner: resumed by its command, never
        taken over by a daemon."""
        path = tmp_path / "state.sqlite"
        with older_state_file(path, migrations=8) as connection:
            connection.execute(
                "INSERT INTO backfills VALUES ('bf-1', 'key', '--module m T', '2018-10',"
                " 'oldest', 'running', 31, '2018-10-31T00:00:00.000+00:00',"
                " '2018-10-31T00:00:00.000+00:00')")
            connection.execute("INSERT INTO backfill_days VALUES ('bf-1', '2018-10-01', 'done',"
                               " '2018-10-31T00:00:00.000+00:00')")
        store = await SqliteStateStore.open(path)
        try:
            [running] = await store.list_backfills(running=True)
            assert (running.id, running.workflow, running.max_parallel, running.owner,
                    running.days) == ("bf-1", "", 0, "", {"2018-10-01": "done"})
            await store.record_backfill_day("bf-1", "2018-10-02", "done")
        finally:
            await store.aclose()
        with closing(sqlite3.connect(path)) as connection:
            # Built anew, the days' table still refers to the backfills'.
            [reference] = connection.execute("PRAGMA foreign_key_list(backfill_days)")
            assert reference[2:5] == ("backfills", "backfill_id", "id")

    async def test_sqlite_errors_become_state_store_errors(self, tmp_path: Path) -> None:
        path = tmp_path / "state.sqlite"
        store = await SqliteStateStore.open(path)
        with sqlite3.connect(path) as connection:
            connection.execute("DROP TABLE runs")
        try:
            with pytest.raises(StateStoreError):
                await store.get("T()", "fp")
        finally:
            await store.aclose()


def test_migration_scripts_split_into_statements() -> None:
    for name in ("registry/sqlite", "state/sqlite"):
        migrations = load_migrations(name)
        assert [m.version for m in migrations] == list(range(1, len(migrations) + 1))
        for migration in migrations:
            statements = list(split_statements(migration.sql))
            assert statements
            assert all(sqlite3.complete_statement(s) for s in statements)


class TestDuckDBWarehouse(WarehouseContract):
    @pytest.fixture
    async def warehouse(self, tmp_path: Path) -> AsyncIterator[Warehouse]:
        warehouse = await DuckDBWarehouse.open(tmp_path / "warehouse", "EU")
        yield warehouse
        await warehouse.aclose()

    async def test_job_options_point_at_the_folder(self, tmp_path: Path) -> None:
        warehouse = DuckDBWarehouse(tmp_path / "wh", "EU")
        assert warehouse.job_options() == [f"--duckdbDir={tmp_path / 'wh'}"]

    def test_location_is_validated(self, tmp_path: Path) -> None:
        with pytest.raises(InvalidIdentifier):
            DuckDBWarehouse(tmp_path, 'EU"; --')

    async def test_reading_creates_no_file(self, tmp_path: Path) -> None:
        warehouse = await DuckDBWarehouse.open(tmp_path, "EU")
        assert await warehouse.table_info(FINAL) is None
        await warehouse.drop_table(FINAL)
        assert [p async for p in anyio.Path(tmp_path).iterdir()] == []

    async def test_unstamped_table_gets_file_mtime(self, tmp_path: Path) -> None:
        warehouse = await DuckDBWarehouse.open(tmp_path, "EU")
        await warehouse.create_table(FINAL, COLUMNS, ROWS)
        path = duckdb_files.database_path(tmp_path, FINAL.project)
        with duckdb.connect(str(path)) as connection:
            connection.execute(f'CREATE TABLE "{FINAL.dataset}".raw AS SELECT 1 AS x')
        mtime = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
        raw = TableSpec(FINAL.project, FINAL.dataset, "raw")
        info = await warehouse.table_info(raw)
        assert info is not None
        assert (info.rows, info.last_modified) == (1, mtime)

    async def test_file_is_released_between_operations(self, tmp_path: Path) -> None:
        """Another process (a Beam job) can write the file right after any call."""
        warehouse = await DuckDBWarehouse.open(tmp_path, "EU")
        staging = await warehouse.staging_table(FINAL)
        script = (
            "import sys; from pathlib import Path;"
            "from orchestrator.stores.warehouse import duckdb_files as f;"
            "from orchestrator.tablespec import TableSpec;"
            "c = f.connect(Path(sys.argv[1]), sys.argv[2]);"
            "f.replace_table(c, TableSpec.parse(sys.argv[3]), [('n', 'INT64')], [(1,), (2,)]);"
            "c.close()"
        )
        job = [sys.executable, "-c", script, str(tmp_path), FINAL.project, str(staging)]
        result = await anyio.run_process(job, check=False)
        assert result.returncode == 0, result.stderr.decode()
        info = await warehouse.replace_from_staging(staging, FINAL, "job-1")
        assert info.rows == 2
        assert await warehouse.read_rows(FINAL) == [{"n": 1}, {"n": 2}]


class TestLocalStorage(StorageContract):
    @pytest.fixture
    def root(self, tmp_path: Path) -> Path:
        return (tmp_path / "storage").resolve()

    @pytest.fixture
    def base(self, root: Path) -> str:
        return f"{root}/objects/"

    @pytest.fixture
    async def storage(self, root: Path) -> AsyncIterator[Storage]:
        storage = await LocalStorage.open(root)
        yield storage
        await storage.aclose()

    @pytest.mark.parametrize(
        "uri", ["/etc/passwd", "{root}/../escape", "{root}-sibling/x", "relative/x"]
    )
    async def test_paths_outside_root_are_refused(
        self, storage: Storage, root: Path, uri: str
    ) -> None:
        with pytest.raises(StorageError, match=r"outside|absolute"):
            await storage.write(uri.format(root=root), b"x")
        assert not await anyio.Path(root.parent / "escape").exists()

    async def test_symlink_escape_is_refused(self, storage: Storage, root: Path) -> None:
        outside = root.parent / "outside"
        outside.mkdir()
        (root / "link").symlink_to(outside)
        with pytest.raises(StorageError, match="outside"):
            await storage.write(f"{root}/link/x", b"x")
        assert [p async for p in anyio.Path(outside).iterdir()] == []

    async def test_read_lines_refuses_a_symlink_escape(self, storage: Storage, root: Path) -> None:
        outside = root.parent / "outside"
        outside.mkdir()
        (outside / "x").write_bytes(b"secret\n")
        (root / "link").symlink_to(outside)
        with pytest.raises(StorageError, match="outside"):
            async for _line in storage.read_lines(f"{root}/link/x"):
                pass

    # Four bytes a line: one line, a chunk exactly, a chunk and one line more.
    @pytest.mark.parametrize("count", [1, CHUNK_BYTES // 4, CHUNK_BYTES // 4 + 1])
    async def test_read_lines_leaves_no_file_open(
        self, storage: Storage, base: str, count: int
    ) -> None:
        await storage.write(base + "a.txt", b"abc\n" * count)
        before = sorted(os.listdir("/proc/self/fd"))
        assert [line async for line in storage.read_lines(base + "a.txt")] == ["abc"] * count
        reader = storage.read_lines(base + "a.txt")
        assert isinstance(reader, AsyncGenerator)
        assert await anext(reader) == "abc"
        await reader.aclose()
        assert sorted(os.listdir("/proc/self/fd")) == before

    async def test_gcs_uris_name_the_setting(self, storage: Storage) -> None:
        with pytest.raises(StorageError, match=re.escape('storage.kind = "gcs"')):
            await storage.read("gs://bucket/x")

    async def test_temp_files_are_invisible_and_cleaned(
        self, storage: Storage, base: str, root: Path
    ) -> None:
        await storage.write(base + "a.txt", b"a")
        with pytest.raises(StorageError):
            await storage.write(base + "a.txt", b"b")
        assert [p.name async for p in anyio.Path(root / "objects").iterdir()] == ["a.txt"]
        # A crash mid-write leaves a temp file behind; nobody may mistake it for an object.
        await anyio.Path(root / "objects" / ".b.txt.charon-tmp-0123").write_bytes(b"partial")
        assert not await storage.exists(base + "b.txt")
        assert [info.uri for info in await storage.list(base)] == [base + "a.txt"]

    async def test_delete_prefix_prunes_empty_folders(
        self, storage: Storage, base: str, root: Path
    ) -> None:
        await storage.write(base + "run/1/a", b"x")
        assert await storage.delete_prefix(base + "run/") == 1
        assert not await anyio.Path(root / "objects" / "run").exists()
        assert await anyio.Path(root).is_dir()

    async def test_delete_prefix_takes_the_temp_files_of_dead_writers_along(
        self, storage: Storage, base: str, root: Path
    ) -> None:
        await storage.write(base + "run/2/a", b"x")
        dead = anyio.Path(root / "objects" / "run" / "2" / ".b.charon-tmp-0123")
        await dead.write_bytes(b"a writer killed mid-write")
        assert await storage.delete_prefix(base + "run/") == 1
        assert not await anyio.Path(root / "objects" / "run").exists()

    async def test_symlinked_root_keeps_the_callers_spelling(self, tmp_path: Path) -> None:
        real = anyio.Path(tmp_path / "real")
        await real.mkdir()
        link = tmp_path / "link"
        await anyio.Path(link).symlink_to(tmp_path / "real")
        storage = await LocalStorage.open(link)
        await storage.write(f"{link}/a/b.txt", b"via link")
        assert [i.uri for i in await storage.list(f"{link}/")] == [f"{link}/a/b.txt"]
        assert await storage.read(f"{tmp_path}/real/a/b.txt") == b"via link"
        assert [i.uri for i in await storage.list(f"{tmp_path}/real/a")] == [
            f"{tmp_path}/real/a/b.txt"
        ]
