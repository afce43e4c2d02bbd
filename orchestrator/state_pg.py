"""The state store on PostgreSQL (asyncpg): what daemon replicas on several machines share.

Same rules as the embedded :class:`SqliteStateStore`: the claim plan, the fence and
the writes are the same pure functions, so the same contract suite passes against
both. A claim reads its row ``FOR UPDATE`` inside one transaction, so two replicas
claiming the same run queue up on the row and the second sees the first's lease;
when neither finds a row, the unique (task, fingerprint) key lets one insert win and
the other looks again. The tables live in their own schema, ``charon_state``.
"""

from __future__ import annotations

import builtins
from datetime import UTC, datetime

import asyncpg

from orchestrator import pg
from orchestrator.errors import ConfigError, RunConflict, StateStoreError
from orchestrator.model import Run, RunState
from orchestrator.sqlite import truncate_ms
from orchestrator.state_sqlite import (
    Change,
    ClaimRequest,
    Clock,
    StateStoreBase,
    check_list_limit,
    fenced,
    inputs_json,
    load_inputs,
    load_mapping,
    mapping_json,
    plan_claim,
    utc_now,
)

SCHEMA = "charon_state"
MIGRATIONS = "state_pg"
POOL_MAX_SIZE = 10

# Every SELECT returns the columns _run() reads; JSON comes back as text, as stored.
SELECT_RUN = (
    "SELECT id, task_id, family, partition, fingerprint, state, attempt, job_id, error,"
    " inputs::text AS inputs, outputs::text AS outputs, staged::text AS staged,"
    " lease_owner, lease_expires, created, updated FROM runs"
)
SELECT_BY_KEY = SELECT_RUN + " WHERE task_id = $1 AND fingerprint = $2"
SELECT_BY_KEY_FOR_UPDATE = SELECT_BY_KEY + " FOR UPDATE"
SELECT_BY_ID_FOR_UPDATE = SELECT_RUN + " WHERE id = $1 FOR UPDATE"
SELECT_LATEST = SELECT_RUN + " WHERE task_id = $1 ORDER BY touched DESC LIMIT 1"
SELECT_RUNS = (
    SELECT_RUN +
    " WHERE ($1::text IS NULL OR task_id = $1) AND ($2::text IS NULL OR state = $2)"
    " ORDER BY created DESC, seq DESC LIMIT $3"
)
INSERT_RUN = (
    "INSERT INTO runs (id, task_id, family, partition, fingerprint, state, attempt, job_id,"
    " error, inputs, outputs, staged, lease_owner, lease_expires, created, updated, started,"
    " touched) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::jsonb, $11::jsonb,"
    " $12::jsonb, $13, $14, $15, $16, $17, nextval('runs_touched'))"
)
# The WHERE on attempt re-checks the fence in SQL, besides the row lock held.
RESTART_RUN = (
    "UPDATE runs SET state = $1, attempt = $2, job_id = $3, error = $4, inputs = $5::jsonb,"
    " outputs = $6::jsonb, staged = $7::jsonb, lease_owner = $8, lease_expires = $9,"
    " updated = $10, started = $11, finished = NULL, touched = nextval('runs_touched')"
    " WHERE id = $12 AND attempt = $13"
)
UPDATE_RUN = (
    "UPDATE runs SET state = $1, job_id = $2, error = $3, outputs = $4::jsonb,"
    " staged = $5::jsonb, lease_owner = $6, lease_expires = $7, updated = $8,"
    " finished = COALESCE($9, finished), touched = nextval('runs_touched')"
    " WHERE id = $10 AND attempt = $11"
)


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _run(row: asyncpg.Record) -> Run:
    return Run(
        id=row["id"], task_id=row["task_id"], family=row["family"],
        partition=row["partition"], fingerprint=row["fingerprint"],
        state=RunState(row["state"]), attempt=row["attempt"],
        created=row["created"].astimezone(UTC), updated=row["updated"].astimezone(UTC),
        inputs=load_inputs(row["inputs"]), outputs=load_mapping(row["outputs"]),
        staged=load_mapping(row["staged"]), job_id=row["job_id"], error=row["error"],
        lease_owner=row["lease_owner"], lease_expires=_utc(row["lease_expires"]),
    )


def _check_fence(status: str, run_id: str, attempt: int) -> None:
    """The row is locked, so this never fires; if it did, claiming silently would be
    the one mistake a state store must not make."""
    if status != "UPDATE 1":
        raise RunConflict(f"run {run_id} moved past attempt {attempt} during the write")


class PostgresStateStore(StateStoreBase):
    """StateStore over a PostgreSQL database; build it with :meth:`open`."""

    def __init__(self, pool: pg.Pool, now: Clock = utc_now) -> None:
        self._pool = pool
        self._clock = now

    @classmethod
    async def open(cls, dsn: str, *, now: Clock = utc_now) -> PostgresStateStore:
        """Connect a pool to ``dsn`` and bring the schema up to date."""
        if not dsn:
            raise ConfigError('state.kind = "postgres" needs state.dsn')
        pool = await pg.open_migrated(
            dsn, error=StateStoreError, name="the PostgreSQL state store", schema=SCHEMA,
            migrations=MIGRATIONS, max_size=POOL_MAX_SIZE,
        )
        return cls(pool, now)

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    async def _claim(self, request: ClaimRequest) -> Run:
        with pg.converted(StateStoreError, "cannot claim in the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                try:
                    return await self._claim_on(connection, request)
                except asyncpg.UniqueViolationError:
                    # Another claimer inserted the row first: its lease now decides.
                    return await self._claim_on(connection, request)

    async def _claim_on(
        self, connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record],
        request: ClaimRequest,
    ) -> Run:
        async with connection.transaction():
            now = self._now()
            row = await connection.fetchrow(
                SELECT_BY_KEY_FOR_UPDATE, request.task_id, request.fingerprint
            )
            old = None if row is None else _run(row)
            new = plan_claim(old, request, now)
            if new is old:
                return new
            if old is None:
                await connection.execute(
                    INSERT_RUN, new.id, new.task_id, new.family, new.partition,
                    new.fingerprint, new.state.value, new.attempt, new.job_id, new.error,
                    inputs_json(new.inputs), mapping_json(new.outputs),
                    mapping_json(new.staged), new.lease_owner, new.lease_expires,
                    new.created, new.updated, now,
                )
            else:
                _check_fence(await connection.execute(
                    RESTART_RUN, new.state.value, new.attempt, new.job_id, new.error,
                    inputs_json(new.inputs), mapping_json(new.outputs),
                    mapping_json(new.staged), new.lease_owner, new.lease_expires,
                    new.updated, now, new.id, old.attempt,
                ), new.id, old.attempt)
            return new

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

    async def _update(self, run_id: str, attempt: int, change: Change, *, finish: bool) -> Run:
        with pg.converted(StateStoreError, "cannot write to the PostgreSQL state store"):
            async with self._pool.acquire() as connection, connection.transaction():
                now = self._now()
                row = await connection.fetchrow(SELECT_BY_ID_FOR_UPDATE, run_id)
                new = change(fenced(None if row is None else _run(row), run_id, attempt), now)
                _check_fence(await connection.execute(
                    UPDATE_RUN, new.state.value, new.job_id, new.error,
                    mapping_json(new.outputs), mapping_json(new.staged), new.lease_owner,
                    new.lease_expires, now, now if finish else None, run_id, attempt,
                ), run_id, attempt)
                return new

    async def migrations(self) -> builtins.list[tuple[int, str, datetime]]:
        """The applied migrations: (version, name, applied timestamp)."""
        with pg.converted(StateStoreError, "cannot read the PostgreSQL state store"):
            async with self._pool.acquire() as connection:
                return await pg.applied_migrations(connection)

    async def aclose(self) -> None:
        await self._pool.aclose()
