"""The in-memory registry and state store."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import Sequence
from datetime import datetime, timedelta

import anyio.lowlevel

from orchestrator.errors import (
    UnknownRevision,
)
from orchestrator.model import Asked, Backfill, BackfillState, Revision, Run, RunState
from orchestrator.stores.drivers.sqlite import truncate_ms
from orchestrator.stores.registry.base import (
    Publication,
    StoringRegistry,
    check_limit,
    check_since,
    partitions_to_look_up,
    replay,
)
from orchestrator.stores.state.backfills import refused
from orchestrator.stores.state.base import Change, StateStoreBase
from orchestrator.stores.state.claims import (
    ClaimPlan,
    ClaimRequest,
    check_list_limit,
    fenced,
    plan_claim,
)
from orchestrator.testing.clock import Clock, utc_now


class InMemoryRegistry(StoringRegistry):
    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self._revisions: list[Revision] = []  # in seq order; seq = index + 1
        self._by_key: dict[str, Revision] = {}

    async def _insert(self, new: Revision, idempotency_key: str | None) -> Publication:
        await anyio.lowlevel.checkpoint()
        # No await from the lookup to the insert: two tasks with one key cannot interleave.
        if idempotency_key is not None and idempotency_key in self._by_key:
            return replay(self._by_key[idempotency_key], new, idempotency_key)
        # Never earlier than the newest revision, as in every registry.
        created = max(new.created, self._revisions[-1].created) if self._revisions else new.created
        revision = dataclasses.replace(new, seq=len(self._revisions) + 1, created=created)
        self._revisions.append(revision)
        if idempotency_key is not None:
            self._by_key[idempotency_key] = revision
        return Publication(revision, replayed=False)

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        revisions = await self.list(endpoint, partition)
        return revisions[0] if revisions else None

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        wanted = set(partitions_to_look_up(endpoint, partitions))
        await anyio.lowlevel.checkpoint()
        # In seq order: a partition's newest revision is the last one kept.
        return {r.partition: r for r in self._revisions
                if r.endpoint == endpoint and r.partition in wanted}

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        await anyio.lowlevel.checkpoint()
        key = (endpoint, partition)
        return [r for r in reversed(self._revisions) if (r.endpoint, r.partition) == key]

    async def get(self, revision_id: str) -> Revision:
        await anyio.lowlevel.checkpoint()
        for revision in self._revisions:
            if revision.id == revision_id:
                return revision
        raise UnknownRevision(f"no revision {revision_id!r}")

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        check_since(since_seq)
        check_limit(limit)
        await anyio.lowlevel.checkpoint()
        return [r for r in self._revisions if r.seq > since_seq][:limit]

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryStateStore(StateStoreBase):
    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self._runs: dict[str, Run] = {}  # by id, in creation order
        self._touched: dict[str, int] = {}  # run id -> write counter, for latest()
        self._writes = 0
        self._deliveries: dict[str, datetime] = {}  # delivery id -> expiry
        self._asked: dict[str, Asked] = {}  # by id, in the order asked
        # (replica id, what it watches) -> heartbeat expiry
        self._replicas: dict[tuple[str, str], datetime] = {}
        self._backfills: dict[str, Backfill] = {}  # by id, in creation order

    def _store(self, run: Run) -> Run:
        self._writes += 1
        self._runs[run.id] = run
        self._touched[run.id] = self._writes
        return run

    async def _claim(self, request: ClaimRequest) -> ClaimPlan:
        await anyio.lowlevel.checkpoint()
        mine = [r for r in self._runs.values() if r.task_id == request.task_id]
        succeeded = [r for r in mine if r.state is RunState.SUCCEEDED]
        latest = max(succeeded, key=lambda r: self._touched[r.id], default=None)
        rows = [r for r in mine if r.fingerprint == request.fingerprint or r.state.active
                or r is latest]
        plan = plan_claim(rows, request, truncate_ms(self._now()))
        for write in plan.writes:
            self._store(write.new)
        return plan

    def _find(self, task_id: str, fingerprint: str) -> Run | None:
        for run in self._runs.values():
            if (run.task_id, run.fingerprint) == (task_id, fingerprint):
                return run
        return None

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        await anyio.lowlevel.checkpoint()
        return self._find(task_id, fingerprint)

    async def latest(self, task_id: str) -> Run | None:
        await anyio.lowlevel.checkpoint()
        runs = [r for r in self._runs.values() if r.task_id == task_id]
        return max(runs, key=lambda r: self._touched[r.id], default=None)

    async def list_runs(
        self, *, task_id: str | None = None, state: RunState | None = None, limit: int = 100
    ) -> list[Run]:
        check_list_limit(limit)
        await anyio.lowlevel.checkpoint()
        runs = [
            r for r in reversed(self._runs.values())
            if task_id in (None, r.task_id) and state in (None, r.state)
        ]
        # Stable sort: equal creation times keep newest-inserted first.
        return sorted(runs, key=lambda r: r.created, reverse=True)[:limit]

    async def _update(self, run_id: str, attempt: int, change: Change) -> Run:
        await anyio.lowlevel.checkpoint()
        run = fenced(self._runs.get(run_id), run_id, attempt)
        new = change(run, truncate_ms(self._now()))
        return run if new is run else self._store(new)

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        await anyio.lowlevel.checkpoint()
        now = self._now()
        self._deliveries = {k: v for k, v in self._deliveries.items() if v > now}
        known = self._deliveries.get(delivery_id)
        self._deliveries[delivery_id] = expires if known is None else max(known, expires)
        if known is None and asked is not None:
            self._asked.setdefault(asked.id, asked)
        return known is None

    async def ask(self, asked: Asked) -> None:
        await anyio.lowlevel.checkpoint()
        self._asked.setdefault(asked.id, asked)

    async def asked(self) -> builtins.list[Asked]:
        await anyio.lowlevel.checkpoint()
        return list(self._asked.values())

    async def served(self, asked_ids: Sequence[str]) -> None:
        await anyio.lowlevel.checkpoint()
        for asked_id in asked_ids:
            self._asked.pop(asked_id, None)

    async def heartbeat(
        self, replica: str, watched: Sequence[str], ttl: timedelta,
    ) -> builtins.list[tuple[str, str]]:
        await anyio.lowlevel.checkpoint()
        now = self._now()
        self._replicas = {k: v for k, v in self._replicas.items()
                          if v > now and k[0] != replica}
        self._replicas.update({(replica, w): now + ttl for w in watched})
        return sorted(self._replicas)

    async def leave(self, replica: str) -> None:
        await anyio.lowlevel.checkpoint()
        self._replicas = {k: v for k, v in self._replicas.items() if k[0] != replica}

    async def open_backfill(self, backfill: Backfill) -> Backfill:
        await anyio.lowlevel.checkpoint()
        now = truncate_ms(self._now())
        known = next((b for b in self._backfills.values() if b.key == backfill.key), None)
        stored = dataclasses.replace(backfill, created=now, updated=now, days={}) \
            if known is None else dataclasses.replace(
                known, order=backfill.order, state=backfill.state, updated=now,
                workflow=backfill.workflow, max_parallel=backfill.max_parallel,
                owner=backfill.owner)
        self._backfills[stored.id] = stored
        return stored

    async def record_backfill_day(self, backfill_id: str, day: str, status: str, *,
                                  owner: str = "") -> None:
        known = await self._known_backfill(backfill_id, owner)
        self._backfills[backfill_id] = dataclasses.replace(
            known, updated=truncate_ms(self._now()),
            days=dict(sorted({**known.days, day: status}.items())))

    async def finish_backfill(self, backfill_id: str, state: BackfillState, *,
                              owner: str = "") -> None:
        known = await self._known_backfill(backfill_id, owner)
        self._backfills[backfill_id] = dataclasses.replace(
            known, state=BackfillState(state), updated=truncate_ms(self._now()))

    async def _known_backfill(self, backfill_id: str, owner: str) -> Backfill:
        await anyio.lowlevel.checkpoint()
        known = self._backfills.get(backfill_id)
        if known is None or known.owner != owner or known.state is not BackfillState.RUNNING:
            raise refused(backfill_id, None if known is None else (known.owner, known.state))
        return known

    async def cancel_backfill(self, backfill_id: str) -> bool:
        await anyio.lowlevel.checkpoint()
        known = self._backfills.get(backfill_id)
        if known is None or known.state is not BackfillState.RUNNING:
            return False
        self._backfills[backfill_id] = dataclasses.replace(
            known, state=BackfillState.CANCELLED, updated=truncate_ms(self._now()))
        return True

    async def get_backfill(self, backfill_id: str) -> Backfill | None:
        await anyio.lowlevel.checkpoint()
        return self._backfills.get(backfill_id)

    async def take_backfill(self, backfill_id: str, owner: str, *, from_owner: str) -> bool:
        await anyio.lowlevel.checkpoint()
        known = self._backfills.get(backfill_id)
        if known is None or known.owner != from_owner or known.state is not BackfillState.RUNNING:
            return False
        self._backfills[backfill_id] = dataclasses.replace(
            known, owner=owner, updated=truncate_ms(self._now()))
        return True

    async def list_backfills(self, limit: int = 100, *,
                             running: bool = False) -> builtins.list[Backfill]:
        check_list_limit(limit)
        await anyio.lowlevel.checkpoint()
        newest = sorted(reversed(self._backfills.values()), key=lambda b: b.created,
                        reverse=True)
        return [b for b in newest if not running or b.state is BackfillState.RUNNING][:limit]

    async def aclose(self) -> None:
        """Nothing to release."""
