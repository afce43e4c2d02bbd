"""The embedded state store: runs in a SQLite file, under the port's rules (``base.py``).

Every claim and write is one IMMEDIATE transaction, so processes sharing the file
queue up on SQLite's write lock and each sees the other's committed rows. Leases are
judged by this machine's clock: a SQLite file is shared by the processes of one
machine only, which read the same clock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.errors import StateStoreError
from orchestrator.model import Asked, Backfill, BackfillState, Run, RunState
from orchestrator.stores.drivers.sqlite import (
    SqliteDatabase,
    iso_ms,
    parse_iso,
    transaction,
    truncate_ms,
)
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

# Every SELECT returns the columns _run() unpacks, in this order.
SELECT_RUN = (
    "SELECT id, task_id, family, partition, fingerprint, state, attempt, job_id, error,"
    " inputs, outputs, staged, lease_owner, lease_expires, created, updated, generation,"
    " failures, finished FROM runs"
)
# The rows a claim decides on: the task's run of these inputs, its active run and its
# latest succeeded run (see claims.plan_claim).
SELECT_FOR_CLAIM = (
    SELECT_RUN +  # noqa: S608  # constants of this module; values are bound
    " WHERE task_id = :task_id AND (fingerprint = :fingerprint"
    " OR state IN ('running', 'publishing') OR id = (SELECT id FROM runs"
    " WHERE task_id = :task_id AND state = 'succeeded' ORDER BY touched DESC LIMIT 1))"
)
SELECT_BY_KEY = SELECT_RUN + " WHERE task_id = ? AND fingerprint = ?"
SELECT_BY_ID = SELECT_RUN + " WHERE id = ?"
SELECT_LATEST = SELECT_RUN + " WHERE task_id = ? ORDER BY touched DESC LIMIT 1"
SELECT_RUNS = (
    SELECT_RUN +
    " WHERE (:task_id IS NULL OR task_id = :task_id) AND (:state IS NULL OR state = :state)"
    " ORDER BY created DESC, rowid DESC LIMIT :limit"
)
# touched counts writes across the table, so latest() needs no distinct clock readings.
INSERT_RUN = (
    "INSERT INTO runs (id, task_id, family, partition, fingerprint, state, attempt, job_id,"
    " error, inputs, outputs, staged, lease_owner, lease_expires, created, updated,"
    " generation, failures, finished, started, touched)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " (SELECT COALESCE(MAX(touched), 0) + 1 FROM runs))"
)
# The WHERE on attempt re-checks the fence in SQL: a row changed under us matches nothing.
# started is stamped when a generation begins, and kept otherwise (a NULL parameter).
UPDATE_RUN = (
    "UPDATE runs SET state = ?, attempt = ?, job_id = ?, error = ?, inputs = ?, outputs = ?,"
    " staged = ?, lease_owner = ?, lease_expires = ?, updated = ?, generation = ?,"
    " failures = ?, finished = ?, started = COALESCE(?, started),"
    " touched = (SELECT COALESCE(MAX(touched), 0) + 1 FROM runs)"
    " WHERE id = ? AND attempt = ?"
)

# A delivery id: expired ones are deleted first, so the insert meets only a live one.
PRUNE_DELIVERIES = "DELETE FROM deliveries WHERE expires <= ?"
INSERT_DELIVERY = "INSERT INTO deliveries (id, expires) VALUES (?, ?) ON CONFLICT DO NOTHING"
EXTEND_DELIVERY = "UPDATE deliveries SET expires = MAX(expires, ?) WHERE id = ?"
INSERT_ASKED = ("INSERT INTO asked (id, workflow, day, replica, rerun_task, rerun_fingerprint,"
                " rerun_generation) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")
SELECT_ASKED = ("SELECT id, workflow, day, replica, rerun_task, rerun_fingerprint,"
                " rerun_generation FROM asked ORDER BY rowid")
DELETE_ASKED = "DELETE FROM asked WHERE id = ?"

# A replica's heartbeat: its row, then every replica still live on the same clock.
INSERT_REPLICA = "INSERT INTO replicas (id, watched, expires) VALUES (?, ?, ?)"
PRUNE_REPLICAS = "DELETE FROM replicas WHERE expires <= ?"
SELECT_REPLICAS = "SELECT id, watched FROM replicas ORDER BY id, watched"
DELETE_REPLICA = "DELETE FROM replicas WHERE id = ?"

# A backfill found again by its key is resumed: the same id and days.
INSERT_BACKFILL = (
    f"INSERT INTO backfills ({backfills.COLUMNS})"  # noqa: S608  # constants; values are bound
    f" VALUES ({', '.join('?' * len(backfills.COLUMNS.split(',')))})"
    f" ON CONFLICT (key) DO UPDATE SET {backfills.RESUMED}"
)
SELECT_BACKFILL = f"SELECT {backfills.COLUMNS} FROM backfills"  # noqa: S608  # constants
SELECT_BACKFILL_BY_KEY = SELECT_BACKFILL + " WHERE key = ?"
SELECT_BACKFILL_BY_ID = SELECT_BACKFILL + " WHERE id = ?"
SELECT_BACKFILLS = SELECT_BACKFILL + " ORDER BY created DESC, rowid DESC LIMIT ?"
SELECT_RUNNING_BACKFILLS = (SELECT_BACKFILL + " WHERE state = 'running'"
                            " ORDER BY created DESC, rowid DESC LIMIT ?")
TAKE_BACKFILL = ("UPDATE backfills SET owner = ?, updated = ?"
                 " WHERE id = ? AND owner = ? AND state = 'running'")
SELECT_BACKFILL_DAYS = "SELECT day, status FROM backfill_days WHERE backfill_id = ?"
UPDATE_BACKFILL = ("UPDATE backfills SET state = COALESCE(?, state), updated = ?"
                   " WHERE id = ? AND owner = ? AND state = 'running'")
SELECT_BACKFILL_RUNNER = "SELECT owner, state FROM backfills WHERE id = ?"
CANCEL_BACKFILL = ("UPDATE backfills SET state = 'cancelled', updated = ?"
                   " WHERE id = ? AND state = 'running'")
UPSERT_BACKFILL_DAY = (
    "INSERT INTO backfill_days (backfill_id, day, status, updated) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (backfill_id, day) DO UPDATE SET status = excluded.status,"
    " updated = excluded.updated"
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def _run(row: tuple[Any, ...]) -> Run:
    return run_from_row(row, parse_iso)


def _one(connection: sqlite3.Connection, sql: str, params: Sequence[object]) -> Run | None:
    row = connection.execute(sql, params).fetchone()
    return None if row is None else _run(row)


def _backfill(connection: sqlite3.Connection, sql: str, key: str) -> Backfill | None:
    row = connection.execute(sql, (key,)).fetchone()
    return None if row is None else _with_days(connection, row)


def _update_backfill(connection: sqlite3.Connection, params: tuple[object, ...]) -> None:
    """UPDATE_BACKFILL with ``params``, refused unless it changed the backfill's row."""
    if connection.execute(UPDATE_BACKFILL, params).rowcount != 1:
        backfill_id = params[2]
        found = connection.execute(SELECT_BACKFILL_RUNNER, (backfill_id,)).fetchone()
        raise backfills.refused(str(backfill_id), None if found is None else tuple(found))


def _with_days(connection: sqlite3.Connection, row: Sequence[Any]) -> Backfill:
    days = connection.execute(SELECT_BACKFILL_DAYS, (row[0],)).fetchall()
    return backfills.from_row(row, days, parse_iso)


def _write(connection: sqlite3.Connection, write: Write) -> None:
    new, old = write.new, write.old
    if old is None:
        connection.execute(INSERT_RUN, (*insert_values(new, iso_ms), iso_ms(new.updated)))
        return
    cursor = connection.execute(UPDATE_RUN, update_values(new, old, iso_ms))
    if cursor.rowcount != 1:
        # The transaction holds SQLite's write lock, so this never fires; if it did,
        # writing on regardless is the one mistake a state store must not make.
        raise StateStoreError(f"run {new.id} moved past attempt {old.attempt} during a write")


class SqliteStateStore(StateStoreBase):
    """StateStore over one SQLite file; build it with :meth:`open`."""

    def __init__(self, database: SqliteDatabase, now: Clock = utc_now) -> None:
        self._db = database
        self._clock = now

    @classmethod
    async def open(cls, path: Path, *, now: Clock = utc_now) -> SqliteStateStore:
        database = await SqliteDatabase.open(path, migrations="state/sqlite", error=StateStoreError)
        return cls(database, now)

    def _now(self) -> datetime:
        return truncate_ms(self._clock())

    async def _claim(self, request: ClaimRequest) -> ClaimPlan:
        def claim(connection: sqlite3.Connection) -> ClaimPlan:
            with transaction(connection):
                rows = connection.execute(SELECT_FOR_CLAIM, {
                    "task_id": request.task_id, "fingerprint": request.fingerprint,
                }).fetchall()
                plan = plan_claim([_run(row) for row in rows], request, self._now())
                for write in plan.writes:
                    _write(connection, write)
                return plan

        return await self._db.run(claim)

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        return await self._db.run(lambda c: _one(c, SELECT_BY_KEY, (task_id, fingerprint)))

    async def latest(self, task_id: str) -> Run | None:
        return await self._db.run(lambda c: _one(c, SELECT_LATEST, (task_id,)))

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        check_list_limit(limit)
        params = {
            "task_id": task_id,
            "state": None if state is None else RunState(state).value,
            "limit": limit,
        }

        def select(connection: sqlite3.Connection) -> list[Run]:
            return [_run(row) for row in connection.execute(SELECT_RUNS, params)]

        return await self._db.run(select)

    async def _update(self, run_id: str, attempt: int, change: Change) -> Run:
        def update(connection: sqlite3.Connection) -> Run:
            with transaction(connection):
                old = fenced(_one(connection, SELECT_BY_ID, (run_id,)), run_id, attempt)
                new = change(old, self._now())
                if new is not old:
                    _write(connection, Write(old, new))
                return new

        return await self._db.run(update)

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        until = iso_ms(expires)

        def remember(connection: sqlite3.Connection) -> bool:
            with transaction(connection):
                connection.execute(PRUNE_DELIVERIES, (iso_ms(self._now()),))
                if connection.execute(INSERT_DELIVERY, (delivery_id, until)).rowcount:
                    if asked is not None:
                        connection.execute(INSERT_ASKED, _asked_row(asked))
                    return True
                connection.execute(EXTEND_DELIVERY, (until, delivery_id))
                return False

        return await self._db.run(remember)

    async def ask(self, asked: Asked) -> None:
        def ask(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute(INSERT_ASKED, _asked_row(asked))

        await self._db.run(ask)

    async def asked(self) -> list[Asked]:
        def asked(connection: sqlite3.Connection) -> list[Asked]:
            return [asked_from_row(row, date.fromisoformat(row[2]))
                    for row in connection.execute(SELECT_ASKED)]

        return await self._db.run(asked)

    async def served(self, asked_ids: Sequence[str]) -> None:
        def served(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.executemany(DELETE_ASKED, [(asked_id,) for asked_id in asked_ids])

        await self._db.run(served)

    async def heartbeat(
        self, replica: str, watched: Sequence[str], ttl: timedelta,
    ) -> list[tuple[str, str]]:
        now = self._now()
        until = iso_ms(now + ttl)

        def beat(connection: sqlite3.Connection) -> list[tuple[str, str]]:
            with transaction(connection):
                connection.execute(PRUNE_REPLICAS, (iso_ms(now),))
                connection.execute(DELETE_REPLICA, (replica,))
                connection.executemany(INSERT_REPLICA, [(replica, w, until) for w in watched])
                return [(row[0], row[1]) for row in connection.execute(SELECT_REPLICAS)]

        return await self._db.run(beat)

    async def leave(self, replica: str) -> None:
        def leave(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute(DELETE_REPLICA, (replica,))

        await self._db.run(leave)

    async def open_backfill(self, backfill: Backfill) -> Backfill:
        def open_(connection: sqlite3.Connection) -> Backfill:
            with transaction(connection):
                connection.execute(INSERT_BACKFILL, backfills.values(backfill, iso_ms))
                row = connection.execute(SELECT_BACKFILL_BY_KEY, (backfill.key,)).fetchone()
                return _with_days(connection, row)

        return await self._db.run(open_)

    async def record_backfill_day(self, backfill_id: str, day: str, status: str, *,
                                  owner: str = "") -> None:
        def record(connection: sqlite3.Connection) -> None:
            now = iso_ms(self._now())
            with transaction(connection):
                _update_backfill(connection, (None, now, backfill_id, owner))
                connection.execute(UPSERT_BACKFILL_DAY, (backfill_id, day, status, now))

        await self._db.run(record)

    async def finish_backfill(self, backfill_id: str, state: BackfillState, *,
                              owner: str = "") -> None:
        def finish(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                _update_backfill(connection, (
                    BackfillState(state).value, iso_ms(self._now()), backfill_id, owner))

        await self._db.run(finish)

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        return await self._db.run(lambda c: _backfill(c, SELECT_BACKFILL_BY_ID, backfill_id))

    async def cancel_backfill(self, backfill_id: str) -> bool:
        def cancel(connection: sqlite3.Connection) -> bool:
            with transaction(connection):
                return connection.execute(CANCEL_BACKFILL, (
                    iso_ms(self._now()), backfill_id)).rowcount == 1

        return await self._db.run(cancel)

    async def take_backfill(self, backfill_id: str, owner: str, *, from_owner: str) -> bool:
        def take(connection: sqlite3.Connection) -> bool:
            with transaction(connection):
                return connection.execute(TAKE_BACKFILL, (
                    owner, iso_ms(self._now()), backfill_id, from_owner)).rowcount == 1

        return await self._db.run(take)

    async def list_backfills(self, limit: int = 100, *, running: bool = False) -> list[Backfill]:
        check_list_limit(limit)
        sql = SELECT_RUNNING_BACKFILLS if running else SELECT_BACKFILLS

        def select(connection: sqlite3.Connection) -> list[Backfill]:
            rows = connection.execute(sql, (limit,)).fetchall()
            return [_with_days(connection, row) for row in rows]

        return await self._db.run(select)

    async def migrations(self) -> list[tuple[int, str, str]]:
        return await self._db.migrations()

    async def aclose(self) -> None:
        await self._db.aclose()


def _asked_row(asked: Asked) -> tuple[object, ...]:
    return (asked.id, asked.workflow, asked.day.isoformat(), asked.replica,
            *asked_rerun_values(asked))
