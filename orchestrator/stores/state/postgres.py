"""The state store on PostgreSQL (asyncpg): what daemon replicas on several machines share.

Same rules as every store (``base.py``), so the same contract suite passes against
it. Leases are judged by the **database's clock** (``clock_timestamp()``), never by a
replica's own: replicas whose clocks disagree still agree on whose lease is live.

A claim takes a transaction-scoped advisory lock on its task, so the claims of one task
queue up whichever fingerprint they are for, and reads the task's rows ``FOR UPDATE``,
so a write of the run's owner (which locks the row) and a claim superseding that run
happen one after the other. A unique index allows one active run per task: the
database itself refuses a second. The tables live in their own schema, ``charon_state``.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from orchestrator.errors import ConfigError, StateStoreError
from orchestrator.log import get_logger
from orchestrator.model import Asked, Backfill, BackfillState, Run, RunState
from orchestrator.stores.drivers import postgres as pg
from orchestrator.stores.drivers.pg_group import GroupCommit
from orchestrator.stores.drivers.sqlite import truncate_ms
from orchestrator.stores.state import backfills
from orchestrator.stores.state.base import (
    Change,
    StateStoreBase,
    asked_from_row,
    asked_rerun_values,
    insert_values,
    run_from_row,
    update_values,
)
from orchestrator.stores.state.claims import (
    ClaimPlan,
    ClaimRequest,
    Write,
    check_list_limit,
    fenced,
    plan_claim,
)

Clock = Callable[[], datetime]
if TYPE_CHECKING:
    # Generic only in the stubs: subscripting it at run time fails.
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

SCHEMA = "charon_state"
MIGRATIONS = "state/postgres"
POOL_MAX_SIZE = 10
# One batch of writes at a time: a run's updates then hold no lock another batch of
# this process waits for.
WRITE_LANES = 1

# Every SELECT returns the columns _run() reads; JSON comes back as text, as stored.
SELECT_RUN = (
    "SELECT id, task_id, family, partition, fingerprint, state, attempt, job_id, error,"
    " inputs::text AS inputs, outputs::text AS outputs, staged::text AS staged,"
    " lease_owner, lease_expires, created, updated, generation, failures, finished FROM runs"
)
# The task's run of these inputs, its active run and its latest succeeded run.
SELECT_FOR_CLAIM = (
    SELECT_RUN +  # noqa: S608  # constants of this module; values are bound
    " WHERE task_id = $1 AND (fingerprint = $2 OR state IN ('running', 'publishing')"
    " OR id = (SELECT id FROM runs WHERE task_id = $1 AND state = 'succeeded'"
    " ORDER BY touched DESC LIMIT 1)) FOR UPDATE"
)
SELECT_BY_KEY = SELECT_RUN + " WHERE task_id = $1 AND fingerprint = $2"
SELECT_BY_ID_FOR_UPDATE = SELECT_RUN + " WHERE id = $1 FOR UPDATE"
SELECT_LATEST = SELECT_RUN + " WHERE task_id = $1 ORDER BY touched DESC LIMIT 1"
SELECT_RUNS = (
    SELECT_RUN +
    " WHERE ($1::text IS NULL OR task_id = $1) AND ($2::text IS NULL OR state = $2)"
    " ORDER BY created DESC, seq DESC LIMIT $3"
)
READ_CLOCK = "SELECT clock_timestamp()"
INSERT_RUN = (
    "INSERT INTO runs (id, task_id, family, partition, fingerprint, state, attempt, job_id,"
    " error, inputs, outputs, staged, lease_owner, lease_expires, created, updated,"
    " generation, failures, finished, started, touched) VALUES ($1, $2, $3, $4, $5, $6, $7,"
    " $8, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13, $14, $15, $16, $17, $18, $19, $16,"
    " nextval('runs_touched'))"
)
# The WHERE on attempt re-checks the fence in SQL, besides the row lock held; started is
# stamped when a generation begins and kept otherwise (a NULL parameter).
UPDATE_RUN = (
    "UPDATE runs SET state = $1, attempt = $2, job_id = $3, error = $4, inputs = $5::jsonb,"
    " outputs = $6::jsonb, staged = $7::jsonb, lease_owner = $8, lease_expires = $9,"
    " updated = $10, generation = $11, failures = $12, finished = $13,"
    " started = COALESCE($14, started), touched = nextval('runs_touched')"
    " WHERE id = $15 AND attempt = $16"
)

# A delivery id: expired ones are deleted first, so the insert meets only a live one.
PRUNE_DELIVERIES = "DELETE FROM deliveries WHERE expires <= $1"
INSERT_DELIVERY = "INSERT INTO deliveries (id, expires) VALUES ($1, $2) ON CONFLICT DO NOTHING"
EXTEND_DELIVERY = "UPDATE deliveries SET expires = GREATEST(expires, $2) WHERE id = $1"
INSERT_ASKED = ("INSERT INTO asked (id, workflow, day, replica, rerun_task, rerun_fingerprint,"
                " rerun_generation) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING")
SELECT_ASKED = ("SELECT id, workflow, day, replica, rerun_task, rerun_fingerprint,"
                " rerun_generation FROM asked ORDER BY asked_at, id")
DELETE_ASKED = "DELETE FROM asked WHERE id = ANY($1::text[])"

# A replica's heartbeat: its row, then every replica still live on the same clock.
INSERT_REPLICA = (
    "INSERT INTO replicas (id, watched, expires) SELECT $1, watched, $3"
    " FROM unnest($2::text[]) AS watched"
)
# A heartbeat never waits on another replica's rows: one that replica's transaction
# holds (it is paused in it, say) is left for a later heartbeat to prune, and counted
# live only until its expiry all the same.
PRUNE_REPLICAS = (
    "DELETE FROM replicas WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM replicas WHERE expires <= $1 FOR UPDATE SKIP LOCKED))"
)
SELECT_REPLICAS = "SELECT id, watched FROM replicas WHERE expires > $1 ORDER BY id, watched"
DELETE_REPLICA = "DELETE FROM replicas WHERE id = $1"

# A backfill found again by its key is resumed: the same id and days.
INSERT_BACKFILL = (
    f"INSERT INTO backfills ({backfills.COLUMNS})"  # noqa: S608  # constants; values are bound
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    f" ON CONFLICT (key) DO UPDATE SET {backfills.RESUMED}"
)
SELECT_BACKFILL = f"SELECT {backfills.COLUMNS} FROM backfills"  # noqa: S608  # constants
SELECT_BACKFILL_BY_KEY = SELECT_BACKFILL + " WHERE key = $1"
SELECT_BACKFILL_BY_ID = SELECT_BACKFILL + " WHERE id = $1"
SELECT_BACKFILLS = SELECT_BACKFILL + " ORDER BY created DESC, id DESC LIMIT $1"
SELECT_RUNNING_BACKFILLS = (SELECT_BACKFILL + " WHERE state = 'running'"
                            " ORDER BY created DESC, id DESC LIMIT $1")
TAKE_BACKFILL = ("UPDATE backfills SET owner = $1, updated = $2"
                 " WHERE id = $3 AND owner = $4 AND state = 'running'")
SELECT_BACKFILL_DAYS = "SELECT day, status FROM backfill_days WHERE backfill_id = $1"
UPDATE_BACKFILL = ("UPDATE backfills SET state = COALESCE($1, state), updated = $2"
                   " WHERE id = $3 AND owner = $4 AND state = 'running'")
SELECT_BACKFILL_RUNNER = "SELECT owner, state FROM backfills WHERE id = $1"
CANCEL_BACKFILL = ("UPDATE backfills SET state = 'cancelled', updated = $1"
                   " WHERE id = $2 AND state = 'running'")
UPSERT_BACKFILL_DAY = (
    "INSERT INTO backfill_days (backfill_id, day, status, updated) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (backfill_id, day) DO UPDATE SET status = excluded.status,"
    " updated = excluded.updated"
)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _run(row: asyncpg.Record) -> Run:
    return run_from_row(tuple(row), _utc)


async def _write(connection: Connection, write: Write) -> None:
    new, old = write.new, write.old
    if old is None:
        await connection.execute(INSERT_RUN, *insert_values(new, _utc))
        return
    status = await connection.execute(UPDATE_RUN, *update_values(new, old, _utc))
    if status != "UPDATE 1":
        # The row is locked, so this never fires; if it did, writing on regardless
        # is the one mistake a state store must not make.
        raise StateStoreError(f"run {new.id} moved past attempt {old.attempt} during a write")


async def _update_backfill(connection: Connection, state: str | None, now: datetime,
                           backfill_id: str, owner: str) -> None:
    """UPDATE_BACKFILL, refused unless it changed the backfill's row."""
    if await connection.execute(UPDATE_BACKFILL, state, now, backfill_id, owner) != "UPDATE 1":
        found = await connection.fetchrow(SELECT_BACKFILL_RUNNER, backfill_id)
        raise backfills.refused(backfill_id, None if found is None else (found[0], found[1]))


async def _with_days(connection: Connection, row: asyncpg.Record) -> Backfill:
    days = await connection.fetch(SELECT_BACKFILL_DAYS, row["id"])
    return backfills.from_row(tuple(row), [tuple(day) for day in days], _utc)


class PostgresStateStore(StateStoreBase):
    """StateStore over a PostgreSQL database; build it with :meth:`open`.

    ``now`` replaces the database's clock (tests move a manual clock to expire leases
    without waiting); None, the default, is the database's.
    """

    def __init__(self, pool: pg.Pool, now: Clock | None = None) -> None:
        self._pool = pool
        self._clock = now
        self._writes = GroupCommit(pool, lanes=WRITE_LANES)
        self._log = get_logger("charon.state.postgres")

    @classmethod
    async def open(cls, dsn: str, *, now: Clock | None = None,
                   command_timeout: float = pg.COMMAND_TIMEOUT_SECONDS) -> PostgresStateStore:
        """Connect a pool to ``dsn`` and bring the schema up to date; a statement not
        answered within ``command_timeout`` seconds fails as an outage."""
        if not dsn:
            raise ConfigError('state.kind = "postgres" needs state.dsn')
        pool = await pg.open_migrated(
            dsn, error=StateStoreError, name="the PostgreSQL state store", schema=SCHEMA,
            migrations=MIGRATIONS, max_size=POOL_MAX_SIZE, command_timeout=command_timeout,
        )
        return cls(pool, now)

    async def _now(self, connection: Connection) -> datetime:
        if self._clock is not None:
            return truncate_ms(self._clock())
        return truncate_ms(await connection.fetchval(READ_CLOCK))

    async def _claim(self, request: ClaimRequest) -> ClaimPlan:
        async def claim(connection: Connection, locked_at: datetime) -> ClaimPlan:
            # Read once the task's lock is held: the time a claim decides by is never
            # earlier than the moment it may decide.
            now = truncate_ms(locked_at if self._clock is None else self._clock())
            rows = await connection.fetch(SELECT_FOR_CLAIM, request.task_id, request.fingerprint)
            plan = plan_claim([_run(row) for row in rows], request, now)
            for write in plan.writes:
                await _write(connection, write)
            return plan

        # Not through the group commit: a claim holds its task's lock and rows, and a
        # batch holding them while it waits on another replica's batch can deadlock.
        with pg.converted(StateStoreError, "cannot claim in the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                return await pg.locked_transaction(
                    connection, pg.lock_key(f"charon.run.{request.task_id}"), claim, self._log)

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        return await self._one(SELECT_BY_KEY, task_id, fingerprint)

    async def latest(self, task_id: str) -> Run | None:
        return await self._one(SELECT_LATEST, task_id)

    async def _one(self, sql: str, *args: object) -> Run | None:
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                row = await connection.fetchrow(sql, *args)
        return None if row is None else _run(row)

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        check_list_limit(limit)
        wanted = None if state is None else RunState(state).value
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                rows = await connection.fetch(SELECT_RUNS, task_id, wanted, limit)
        return [_run(row) for row in rows]

    async def _update(self, run_id: str, attempt: int, change: Change) -> Run:
        async def update(connection: Connection) -> Run:
            row = await connection.fetchrow(SELECT_BY_ID_FOR_UPDATE, run_id)
            old = fenced(None if row is None else _run(row), run_id, attempt)
            new = change(old, await self._now(connection))
            if new is not old:
                await _write(connection, Write(old, new))
            return new

        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            return await self._writes.run(update)

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        """Judged on the database's clock, like the leases. Replicas racing one id queue
        up on its primary key: the first insert wins, the others then see its row."""
        async def remember(connection: Connection) -> bool:
            await connection.execute(PRUNE_DELIVERIES, await self._now(connection))
            status = await connection.execute(INSERT_DELIVERY, delivery_id, expires)
            if status == "INSERT 0 1":
                if asked is not None:
                    await connection.execute(INSERT_ASKED, *_asked_row(asked))
                return True
            await connection.execute(EXTEND_DELIVERY, delivery_id, expires)
            return False

        # Through the group commit: each webhook (one a publish) was a transaction of
        # its own, a quarter of the push daemon's busy time at 200 publishes a second.
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            return await self._writes.run(remember)

    async def ask(self, asked: Asked) -> None:
        async def ask(connection: Connection) -> None:
            await connection.execute(INSERT_ASKED, *_asked_row(asked))

        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            await self._writes.run(ask)

    async def asked(self) -> builtins.list[Asked]:
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                rows = await connection.fetch(SELECT_ASKED)
        return [asked_from_row(tuple(row), row["day"]) for row in rows]

    async def served(self, asked_ids: Sequence[str]) -> None:
        async def served(connection: Connection) -> None:
            await connection.execute(DELETE_ASKED, list(asked_ids))

        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            await self._writes.run(served)

    async def heartbeat(
        self, replica: str, watched: Sequence[str], ttl: timedelta,
    ) -> builtins.list[tuple[str, str]]:
        """On the database's clock, like the leases. It also ends the sessions of charon
        processes paused in the middle of a statement (see pg.END_STALLED_SESSIONS)."""
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection, connection.transaction():
                await pg.end_stalled_sessions(connection, self._log)
                now = await self._now(connection)
                await connection.execute(PRUNE_REPLICAS, now)
                await connection.execute(DELETE_REPLICA, replica)
                await connection.execute(INSERT_REPLICA, replica, list(watched), now + ttl)
                return [(row["id"], row["watched"])
                        for row in await connection.fetch(SELECT_REPLICAS, now)]

    async def leave(self, replica: str) -> None:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                await connection.execute(DELETE_REPLICA, replica)

    async def open_backfill(self, backfill: Backfill) -> Backfill:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection, connection.transaction():
                await connection.execute(INSERT_BACKFILL, *backfills.values(backfill, _utc))
                row = await connection.fetchrow(SELECT_BACKFILL_BY_KEY, backfill.key)
                # Written or found in this transaction: a row is always there.
                return await _with_days(connection, row)  # type: ignore[arg-type]

    async def record_backfill_day(self, backfill_id: str, day: str, status: str, *,
                                  owner: str = "") -> None:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection, connection.transaction():
                now = await self._now(connection)
                await _update_backfill(connection, None, now, backfill_id, owner)
                await connection.execute(UPSERT_BACKFILL_DAY, backfill_id, day, status, now)

    async def finish_backfill(self, backfill_id: str, state: BackfillState, *,
                              owner: str = "") -> None:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                await _update_backfill(connection, BackfillState(state).value,
                                       await self._now(connection), backfill_id, owner)

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                row = await connection.fetchrow(SELECT_BACKFILL_BY_ID, backfill_id)
                return None if row is None else await _with_days(connection, row)

    async def cancel_backfill(self, backfill_id: str) -> bool:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                found = await connection.execute(
                    CANCEL_BACKFILL, await self._now(connection), backfill_id)
        return bool(found == "UPDATE 1")

    async def take_backfill(self, backfill_id: str, owner: str, *, from_owner: str) -> bool:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                found = await connection.execute(
                    TAKE_BACKFILL, owner, await self._now(connection), backfill_id, from_owner)
        return bool(found == "UPDATE 1")

    async def list_backfills(self, limit: int = 100, *,
                             running: bool = False) -> builtins.list[Backfill]:
        check_list_limit(limit)
        sql = SELECT_RUNNING_BACKFILLS if running else SELECT_BACKFILLS
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                rows = await connection.fetch(sql, limit)
                return [await _with_days(connection, row) for row in rows]

    async def migrations(self) -> builtins.list[tuple[int, str, datetime]]:
        """The applied migrations: (version, name, applied timestamp)."""
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                return await pg.applied_migrations(connection)

    async def aclose(self) -> None:
        await self._pool.aclose()


def _asked_row(asked: Asked) -> tuple[object, ...]:
    return asked.id, asked.workflow, asked.day, asked.replica, *asked_rerun_values(asked)
