"""What every StateStore does with backfills; mixed into StateStoreContract, whose
``state`` fixture builds the store on the ManualClock ``clock``."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from orchestrator.errors import BackfillTaken, UnknownBackfill
from orchestrator.model import Backfill, BackfillOrder, BackfillState
from orchestrator.stores.state.base import StateStore
from orchestrator.testing import ManualClock


def backfill(clock: ManualClock, key: str = "key-1", *, backfill_id: str = "bf-1",
             order: BackfillOrder = BackfillOrder.OLDEST) -> Backfill:
    return Backfill(
        id=backfill_id, key=key, task="--module m Daily", interval="2018-10", order=order,
        state=BackfillState.RUNNING, total=31, created=clock.now, updated=clock.now,
    )


class BackfillsContract:
    async def test_a_backfill_is_recorded_and_read_back(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        opened = await state.open_backfill(backfill(clock))
        assert (opened.id, opened.key, opened.task, opened.interval, opened.order,
                opened.state, opened.total, opened.days) == (
            "bf-1", "key-1", "--module m Daily", "2018-10", BackfillOrder.OLDEST,
            BackfillState.RUNNING, 31, {})
        assert opened.created == opened.updated == clock.now
        assert await state.get_backfill("bf-1") == opened
        assert await state.get_backfill("bf-2") is None

    async def test_days_keep_the_status_of_their_last_evaluation_oldest_first(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(backfill(clock))
        clock.advance(timedelta(seconds=1))
        await state.record_backfill_day("bf-1", "2018-10-02", "failed")
        await state.record_backfill_day("bf-1", "2018-10-01", "done")
        await state.record_backfill_day("bf-1", "2018-10-02", "done")
        found = await state.get_backfill("bf-1")
        assert found is not None
        assert list(found.days.items()) == [("2018-10-01", "done"), ("2018-10-02", "done")]
        assert found.updated == clock.now

    async def test_the_same_key_resumes_the_recorded_backfill_with_its_days(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        first = await state.open_backfill(backfill(clock))
        await state.record_backfill_day("bf-1", "2018-10-01", "done")
        await state.finish_backfill("bf-1", BackfillState.FAILED)
        clock.advance(timedelta(minutes=1))
        again = await state.open_backfill(
            backfill(clock, backfill_id="bf-other", order=BackfillOrder.NEWEST))
        assert (again.id, again.order, again.state, again.days) == (
            "bf-1", BackfillOrder.NEWEST, BackfillState.RUNNING, {"2018-10-01": "done"})
        assert (again.created, again.updated) == (first.created, clock.now)
        assert await state.get_backfill("bf-other") is None

    async def test_a_finished_backfill_keeps_its_final_state(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(backfill(clock))
        await state.finish_backfill("bf-1", BackfillState.SUCCEEDED)
        found = await state.get_backfill("bf-1")
        assert found is not None
        assert found.state is BackfillState.SUCCEEDED

    async def test_backfills_are_listed_newest_first(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(backfill(clock, "key-1", backfill_id="bf-1"))
        clock.advance(timedelta(seconds=1))
        await state.open_backfill(backfill(clock, "key-2", backfill_id="bf-2"))
        await state.record_backfill_day("bf-2", "2018-10-31", "done")
        listed = await state.list_backfills()
        assert [(b.id, dict(b.days)) for b in listed] == [
            ("bf-2", {"2018-10-31": "done"}), ("bf-1", {})]
        assert [b.id for b in await state.list_backfills(limit=1)] == ["bf-2"]

    async def test_an_unknown_backfill_is_refused(self, state: StateStore) -> None:
        with pytest.raises(UnknownBackfill, match="no backfill 'bf-9'"):
            await state.record_backfill_day("bf-9", "2018-10-01", "done")
        with pytest.raises(UnknownBackfill, match="no backfill 'bf-9'"):
            await state.finish_backfill("bf-9", BackfillState.SUCCEEDED)
        assert await state.list_backfills() == []

    async def test_a_daemon_s_backfill_keeps_its_runner_and_is_taken_over_once(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        daemons = dataclasses.replace(backfill(clock), workflow="daily", max_parallel=3,
                                      owner="replica-a")
        await state.open_backfill(daemons)
        opened = await state.open_backfill(dataclasses.replace(
            backfill(clock, backfill_id="bf-2"), workflow="daily", max_parallel=2,
            owner="replica-b"))  # the same key: the same backfill, another runner
        assert (opened.id, opened.workflow, opened.max_parallel, opened.owner) == (
            "bf-1", "daily", 2, "replica-b")
        assert not await state.take_backfill("bf-1", "replica-c", from_owner="replica-a")
        assert await state.take_backfill("bf-1", "replica-c", from_owner="replica-b")
        assert not await state.take_backfill("bf-1", "replica-d", from_owner="replica-b")
        taken = await state.get_backfill("bf-1")
        assert taken is not None
        assert taken.owner == "replica-c"
        await state.finish_backfill("bf-1", BackfillState.SUCCEEDED, owner="replica-c")
        assert not await state.take_backfill("bf-1", "replica-d", from_owner="replica-c")
        assert not await state.take_backfill("bf-9", "replica-d", from_owner="")

    async def test_only_its_runner_writes_a_backfill(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(dataclasses.replace(
            backfill(clock), workflow="daily", max_parallel=3, owner="replica-a"))
        await state.record_backfill_day("bf-1", "2018-10-01", "done", owner="replica-a")
        assert await state.take_backfill("bf-1", "replica-b", from_owner="replica-a")
        # replica-a, thought gone, wakes up: what it would write is refused.
        with pytest.raises(BackfillTaken, match="bf-1 is run by replica replica-b now"):
            await state.record_backfill_day("bf-1", "2018-10-02", "done", owner="replica-a")
        with pytest.raises(BackfillTaken):
            await state.finish_backfill("bf-1", BackfillState.FAILED, owner="replica-a")
        await state.open_backfill(backfill(clock))  # resumed by its command
        with pytest.raises(BackfillTaken, match="bf-1 is run by its command now"):
            await state.record_backfill_day("bf-1", "2018-10-02", "done", owner="replica-b")
        await state.record_backfill_day("bf-1", "2018-10-02", "failed")
        taken = await state.get_backfill("bf-1")
        assert taken is not None
        assert (taken.state, taken.days) == (
            BackfillState.RUNNING, {"2018-10-01": "done", "2018-10-02": "failed"})

    async def test_a_cancelled_backfill_is_nobody_s_to_run(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(dataclasses.replace(
            backfill(clock), workflow="daily", max_parallel=3, owner="replica-a"))
        assert not await state.cancel_backfill("bf-9")
        assert await state.cancel_backfill("bf-1")
        assert not await state.cancel_backfill("bf-1")
        with pytest.raises(BackfillTaken, match="bf-1 is cancelled now"):
            await state.record_backfill_day("bf-1", "2018-10-01", "done", owner="replica-a")
        with pytest.raises(BackfillTaken):
            await state.finish_backfill("bf-1", BackfillState.SUCCEEDED, owner="replica-a")
        assert not await state.take_backfill("bf-1", "replica-b", from_owner="replica-a")
        assert await state.list_backfills(running=True) == []
        cancelled = await state.get_backfill("bf-1")
        assert cancelled is not None
        assert (cancelled.state, cancelled.days) == (BackfillState.CANCELLED, {})

    async def test_the_running_backfills_are_listed_apart(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.open_backfill(backfill(clock))
        clock.advance(timedelta(seconds=1))
        await state.open_backfill(backfill(clock, "key-2", backfill_id="bf-2"))
        await state.finish_backfill("bf-2", BackfillState.FAILED)
        assert [b.id for b in await state.list_backfills()] == ["bf-2", "bf-1"]
        [running] = await state.list_backfills(running=True)
        assert (running.id, running.workflow, running.owner) == ("bf-1", "", "")
