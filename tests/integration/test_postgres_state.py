"""The state store on the local PostgreSQL server: the contract, and replicas sharing it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

import anyio
import asyncpg
import pytest
import time_machine

from orchestrator.errors import ConfigError, LeaseLost, RegistryError, RunConflict, StateStoreError
from orchestrator.model import Run, RunState
from orchestrator.stores.drivers import postgres as pg
from orchestrator.stores.drivers.migrations import load_migrations
from orchestrator.stores.registry.postgres import PostgresRegistry
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.postgres import MIGRATIONS, SCHEMA, PostgresStateStore
from orchestrator.testing import ManualClock
from tests.contracts.registry import APPLIED_MIGRATIONS
from tests.contracts.state import LEASE, StateStoreContract, claim
from tests.support.tcp_proxy import silent_drop_proxy


class TestPostgresStateStore(StateStoreContract):
    @pytest.fixture
    async def state(self, postgres_dsn: str, clock: ManualClock) -> AsyncIterator[StateStore]:
        store = await PostgresStateStore.open(postgres_dsn, now=clock)
        yield store
        await store.aclose()


Replicas = tuple[ManualClock, list[PostgresStateStore]]


@pytest.fixture
async def replicas(postgres_dsn: str) -> AsyncIterator[Replicas]:
    """Four stores on one database, each with its own pool: four daemons' worth."""
    clock = ManualClock()
    stores = [await PostgresStateStore.open(postgres_dsn, now=clock) for _ in range(4)]
    yield clock, stores
    for store in stores:
        await store.aclose()


async def race(stores: list[PostgresStateStore], task_id: str) -> tuple[list[Run], int]:
    """Three claimers per replica claim ``task_id`` at once: (winners, conflicts)."""
    winners: list[Run] = []
    conflicts = 0

    async def contend(store: PostgresStateStore, owner: str) -> None:
        nonlocal conflicts
        try:
            winners.append(await claim(store, owner=owner, task_id=task_id))
        except RunConflict:
            conflicts += 1

    async with anyio.create_task_group() as group:
        for n, store in enumerate(stores):
            for m in range(3):
                group.start_soon(contend, store, f"replica-{n}-{m}")
    return winners, conflicts


async def test_replicas_racing_for_a_new_run_launch_it_once(replicas: Replicas) -> None:
    _clock, stores = replicas
    for round_ in range(10):  # a race is a race: run it several times
        winners, conflicts = await race(stores, f"T(n={round_})")
        assert [run.attempt for run in winners] == [1]
        assert conflicts == 11


async def test_a_replica_takes_over_an_expired_lease_and_fences_the_old_owner(
    replicas: Replicas,
) -> None:
    clock, (first, second, *_others) = replicas
    run = await claim(first, owner="replica-1")
    await first.set_staged(run.id, run.attempt, {"output": "/data/out/abc"})
    with pytest.raises(RunConflict):
        await claim(second, owner="replica-2")

    clock.advance(LEASE + timedelta(seconds=1))
    taken = await claim(second, owner="replica-2")
    assert (taken.id, taken.attempt, taken.lease_owner) == (run.id, 2, "replica-2")
    assert taken.staged == {"output": "/data/out/abc"}  # inherited, to resume
    with pytest.raises(RunConflict):
        await first.succeed(run.id, run.attempt, {"output": "rev-from-the-dead"})
    done = await second.succeed(taken.id, taken.attempt, {"output": "rev-1"})
    assert done.state is RunState.SUCCEEDED
    assert await first.get(run.task_id, run.fingerprint) == done


async def test_migrations_apply_once_when_replicas_start_together(postgres_dsn: str) -> None:
    opened: list[PostgresStateStore] = []

    async def open_one() -> None:
        opened.append(await PostgresStateStore.open(postgres_dsn))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(open_one)
    try:
        for store in opened:
            applied = await store.migrations()
            assert [(version, name) for version, name, _at in applied] == [
                (1, "init"), (2, "one_active_run"), (3, "deliveries"), (4, "backfills"),
                (5, "replicas"), (6, "asked"), (7, "backfill_owner"),
            ]
    finally:
        for store in opened:
            await store.aclose()


async def test_it_shares_a_database_with_the_registry(postgres_dsn: str) -> None:
    """Each store keeps its tables and its schema_migrations in a schema of its own."""
    state = await PostgresStateStore.open(postgres_dsn)
    registry = await PostgresRegistry.open(postgres_dsn)
    try:
        await claim(state)
        await registry.publish("plays", "2018-10-31", "/data/plays/r1")
        assert len(await state.list_runs()) == 1
        assert [(v, name) for v, name, _at in await registry.migrations()] == APPLIED_MIGRATIONS
    finally:
        await state.aclose()
        await registry.aclose()
    connection = await asyncpg.connect(postgres_dsn)
    try:
        tables = {row["table_name"] for row in await connection.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = $1", SCHEMA,
        )}
    finally:
        await connection.close()
    assert tables == {"runs", "deliveries", "backfills", "backfill_days", "replicas", "asked",
                      "schema_migrations"}


async def test_an_unreachable_server_is_a_state_store_error() -> None:
    with pytest.raises(StateStoreError, match="cannot connect"):
        await PostgresStateStore.open("postgresql://postgres@127.0.0.1:1/nothing")


async def test_an_empty_dsn_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"state\.dsn"):
        await PostgresStateStore.open("")


async def test_writes_after_close_are_refused(postgres_dsn: str) -> None:
    store = await PostgresStateStore.open(postgres_dsn)
    await store.aclose()
    with pytest.raises(StateStoreError, match="closed"):
        await claim(store)


async def test_replicas_racing_to_take_over_an_expired_run_take_it_once(
    replicas: Replicas,
) -> None:
    clock, stores = replicas
    for round_ in range(10):
        task_id = f"T(n={round_})"
        await claim(stores[0], owner="the dead one", task_id=task_id)
        clock.advance(LEASE + timedelta(seconds=1))
        winners, conflicts = await race(stores, task_id)
        assert [run.attempt for run in winners] == [2]
        assert conflicts == 11


async def test_replicas_racing_with_different_inputs_leave_one_active_run(
    replicas: Replicas,
) -> None:
    _clock, stores = replicas
    for round_ in range(10):
        task_id = f"T(n={round_})"

        async def contend(store: PostgresStateStore, n: int, task_id: str = task_id) -> None:
            # Losing the race (RunConflict) is allowed; leaving two active runs is not.
            with contextlib.suppress(RunConflict):
                await claim(store, owner=f"replica-{n}", fingerprint=f"fp-{n}", task_id=task_id)

        async with anyio.create_task_group() as group:
            for n in range(12):
                group.start_soon(contend, stores[n % len(stores)], n)
        runs = await stores[0].list_runs(task_id=task_id)
        assert len([run for run in runs if run.state.active]) == 1, runs


async def test_the_database_refuses_a_second_active_run_of_a_task(postgres_dsn: str) -> None:
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        run = await claim(store)
    finally:
        await store.aclose()
    connection = await asyncpg.connect(postgres_dsn)
    try:
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(  # the schema name is a constant of ours
                f"INSERT INTO {SCHEMA}.runs (id, task_id, family, partition, fingerprint,"  # noqa: S608
                " state, attempt, created, updated, touched) VALUES ('other', $1, 'T', '',"
                " 'fp-other', 'running', 1, now(), now(), 0)", run.task_id,
            )
    finally:
        await connection.close()


async def test_leases_are_judged_by_the_database_clock(postgres_dsn: str) -> None:
    """A replica whose own clock runs two hours fast cannot take over a live lease."""
    first = await PostgresStateStore.open(postgres_dsn)
    second = await PostgresStateStore.open(postgres_dsn)
    try:
        run = await claim(first, owner="replica-1")
        connection = await asyncpg.connect(postgres_dsn)
        try:
            db_now = await connection.fetchval("SELECT clock_timestamp()")
        finally:
            await connection.close()
        assert run.lease_expires is not None
        assert abs((run.lease_expires - db_now) - LEASE) < timedelta(seconds=5)
        with time_machine.travel(timedelta(hours=2), tick=True):
            with pytest.raises(RunConflict):
                await claim(second, owner="replica-2-fast-clock")
            assert await second.check_fence(run.id, run.attempt) == run
    finally:
        await first.aclose()
        await second.aclose()


async def test_replicas_racing_one_delivery_id_remember_it_once(replicas: Replicas) -> None:
    clock, stores = replicas
    until = clock.now + timedelta(minutes=10)
    answers: dict[str, list[bool]] = {f"delivery-{n}": [] for n in range(10)}

    async def remember(store: PostgresStateStore, delivery_id: str) -> None:
        answers[delivery_id].append(await store.remember_delivery(delivery_id, until))

    for delivery_id in answers:  # a race is a race: run it several times
        async with anyio.create_task_group() as group:
            for store in stores:
                for _ in range(3):
                    group.start_soon(remember, store, delivery_id)
    for got in answers.values():
        assert sorted(got) == [False] * 11 + [True]


async def test_delivery_ids_expire_on_the_database_clock_and_leave_the_table(
    postgres_dsn: str,
) -> None:
    """A replica whose own clock runs two hours fast still sees a live id as live."""
    store = await PostgresStateStore.open(postgres_dsn)
    connection = await asyncpg.connect(postgres_dsn, server_settings={"search_path": SCHEMA})
    try:
        db_now = await connection.fetchval("SELECT clock_timestamp()")
        for n in range(5):
            assert await store.remember_delivery(f"gone-{n}", db_now - timedelta(seconds=1))
        with time_machine.travel(timedelta(hours=2), tick=True):
            assert await store.remember_delivery("live", db_now + timedelta(hours=1))
            assert not await store.remember_delivery("live", db_now + timedelta(hours=1))
        ids = [row["id"] for row in await connection.fetch("SELECT id FROM deliveries")]
        assert ids == ["live"]
    finally:
        await connection.close()
        await store.aclose()


async def test_a_lease_that_ran_out_on_the_database_clock_is_lost(postgres_dsn: str) -> None:
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        run = await claim(store)
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(  # the schema name is a constant of ours
                f"UPDATE {SCHEMA}.runs SET lease_expires = clock_timestamp()"  # noqa: S608
                " - interval '1 millisecond' WHERE id = $1", run.id,
            )
        finally:
            await connection.close()
        with pytest.raises(LeaseLost, match="ran out"):
            await store.check_fence(run.id, run.attempt)
        taken = await claim(store, owner="replica-2")
        assert (taken.id, taken.attempt) == (run.id, 2)
    finally:
        await store.aclose()


async def test_an_older_schema_with_two_active_runs_of_a_task_keeps_the_newest(
    postgres_dsn: str,
) -> None:
    connection = await asyncpg.connect(postgres_dsn, server_settings={"search_path": SCHEMA})
    try:
        await connection.execute(f"CREATE SCHEMA {SCHEMA}")
        await connection.execute(pg.CREATE_MIGRATIONS_TABLE)
        [init, *_later] = load_migrations(MIGRATIONS)
        await connection.execute(init.sql)
        await connection.execute(pg.INSERT_MIGRATION, init.version, init.name)
        for n in (1, 2):
            await connection.execute(
                "INSERT INTO runs (id, task_id, family, partition, fingerprint, state, attempt,"
                " created, updated, touched) VALUES ($1, 'T()', 'T', '', $2, 'running', 1,"
                " now(), now(), $3)", f"run-{n}", f"fp-{n}", n,
            )
    finally:
        await connection.close()
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        older, newer = await store.get("T()", "fp-1"), await store.get("T()", "fp-2")
        assert older is not None
        assert newer is not None
        assert (older.state, newer.state) == (RunState.SUPERSEDED, RunState.RUNNING)
    finally:
        await store.aclose()


def test_a_connection_cut_mid_operation_is_a_state_store_error() -> None:
    """asyncpg reports a connection terminated mid-operation as InternalClientError, which
    derives from neither of its other error bases; it must not escape as a crash."""
    with pytest.raises(StateStoreError, match="cannot switch to state"), \
            pg.converted(StateStoreError, "cannot read"):
        raise asyncpg.InternalClientError("cannot switch to state 15; another operation")


async def test_a_heartbeat_never_waits_on_a_paused_replicas_rows(postgres_dsn: str) -> None:
    """A replica paused inside its heartbeat holds its rows locked: the others' heartbeats
    go on without it, and count it gone once its heartbeat has run out."""
    store = await PostgresStateStore.open(postgres_dsn)
    paused = await asyncpg.connect(postgres_dsn)
    try:
        await store.heartbeat("paused", ["daily:1a"], timedelta(milliseconds=300))
        transaction = paused.transaction()
        await transaction.start()
        await paused.execute("UPDATE charon_state.replicas SET watched = watched"
                             " WHERE id = 'paused'")
        with anyio.fail_after(5):
            assert [r for r, _ in await store.heartbeat("a", ["daily:1a"], LEASE)] == [
                "a", "paused"]
            await anyio.sleep(0.4)
            assert await store.heartbeat("a", ["daily:1a"], LEASE) == [("a", "daily:1a")]
        await transaction.rollback()
    finally:
        await paused.close()
        await store.aclose()


Store = PostgresStateStore | PostgresRegistry


async def _one_call(store: Store) -> None:
    if isinstance(store, PostgresStateStore):
        await store.heartbeat("a", ["daily:1a"], LEASE)
    else:
        await store.latest("plays", "2018-10-31")


@pytest.mark.parametrize("kind", [PostgresStateStore, PostgresRegistry])
async def test_a_connection_gone_silently_dead_fails_as_an_outage_then_is_replaced(
    postgres_dsn: str, kind: type[Store]
) -> None:
    """The server's host failed over: the connections open then are silently dead (what
    is sent is acknowledged, nothing ever comes back). A call on one fails as an outage
    within the statement bound, not never; the pool then opens new ones that work."""
    url = urlsplit(postgres_dsn)
    async with silent_drop_proxy(url.hostname or "127.0.0.1", url.port or 5432) as proxy:
        through = urlunsplit(url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}"))
        store = await kind.open(through, command_timeout=0.5)
        try:
            await _one_call(store)
            dead = proxy.drop_silently()
            assert dead >= 1
            outages = 0
            with anyio.fail_after(15):
                while True:
                    try:
                        await _one_call(store)
                    except (StateStoreError, RegistryError):
                        outages += 1
                    else:
                        break
            assert 1 <= outages <= dead
        finally:
            with anyio.move_on_after(5):
                await store.aclose()


async def test_a_migration_waited_on_is_not_cut_short_by_the_statement_bound(
    postgres_dsn: str,
) -> None:
    """A starter waits for another process's migration as long as that takes: here
    three times its statements' bound."""
    migrating = await asyncpg.connect(postgres_dsn)
    try:
        transaction = migrating.transaction()
        await transaction.start()
        await migrating.execute(pg.TAKE_XACT_LOCK, pg.lock_key(f"charon.{SCHEMA}.migrate"))
        async with anyio.create_task_group() as group:
            group.start_soon(_release_after, transaction, 1.5)
            with anyio.fail_after(10):
                store = await PostgresStateStore.open(postgres_dsn, command_timeout=0.5)
        await store.aclose()
    finally:
        await migrating.close()


async def _release_after(transaction: asyncpg.transaction.Transaction, seconds: float) -> None:
    await anyio.sleep(seconds)
    await transaction.rollback()
