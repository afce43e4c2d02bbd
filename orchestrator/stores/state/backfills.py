"""What every state store does the same way with backfills: their rows and columns.

A backfill is found by its key, so running the same ``charon backfill`` again resumes
the one recorded (its days stay, its order and state are the new invocation's); each
day's row keeps the status its last evaluation ended in.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from orchestrator.errors import BackfillTaken, UnknownBackfill
from orchestrator.model import Backfill, BackfillOrder, BackfillState
from orchestrator.stores.state.base import Moment

# Every store's SELECT of a backfill returns these columns, in this order.
COLUMNS = ("id, key, task, date_interval, run_order, state, total, created, updated,"
           " workflow, max_parallel, owner")
# Resumed by its key, a backfill takes the new invocation's order, state and runner.
RESUMED = ("run_order = excluded.run_order, state = excluded.state, updated = excluded.updated,"
           " workflow = excluded.workflow, max_parallel = excluded.max_parallel,"
           " owner = excluded.owner")


def values(backfill: Backfill, moment: Moment) -> tuple[object, ...]:
    """A backfill's values in COLUMNS order."""
    return (backfill.id, backfill.key, backfill.task, backfill.interval,
            backfill.order.value, backfill.state.value, backfill.total,
            moment(backfill.created), moment(backfill.updated), backfill.workflow,
            backfill.max_parallel, backfill.owner)


def from_row(row: Sequence[Any], days: Iterable[Sequence[Any]], moment: Moment) -> Backfill:
    """A backfill from its COLUMNS and its days' (day, status) rows."""
    (bid, key, task, interval, order, state, total, created, updated, workflow,
     max_parallel, owner) = row
    return Backfill(
        id=bid, key=key, task=task, interval=interval, order=BackfillOrder(order),
        state=BackfillState(state), total=total, created=moment(created),
        updated=moment(updated), days=dict(sorted((day, status) for day, status in days)),
        workflow=workflow, max_parallel=max_parallel, owner=owner,
    )


def unknown(backfill_id: str) -> UnknownBackfill:
    return UnknownBackfill(f"no backfill {backfill_id!r}")


def refused(backfill_id: str, found: tuple[str, str] | None) -> UnknownBackfill | BackfillTaken:
    """Why a write of the running backfill by its runner changed nothing: ``found`` is
    its (owner, state) now, None when it is not recorded."""
    if found is None:
        return unknown(backfill_id)
    owner, state = found
    if state != BackfillState.RUNNING:
        return BackfillTaken(f"backfill {backfill_id} is {state} now")
    return BackfillTaken(f"backfill {backfill_id} is run by "
                         f"{f'replica {owner}' if owner else 'its command'} now")
