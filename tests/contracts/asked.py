"""What every StateStore does with the days asked of the daemon; mixed into
StateStoreContract, whose ``state`` fixture builds the store on the ManualClock ``clock``."""

from __future__ import annotations

from datetime import date, timedelta

from orchestrator.model import Asked, Rerun
from orchestrator.stores.state.base import StateStore
from orchestrator.testing import ManualClock

TEN_MINUTES = timedelta(minutes=10)
FIRST = Asked("asked-1", "daily", date(2019, 6, 1), "replica-a")
SECOND = Asked("asked-2", "weekly", date(2019, 6, 2), "replica-b")


class AskedContract:
    async def test_days_asked_are_kept_in_order_until_served(self, state: StateStore) -> None:
        assert await state.asked() == []
        await state.ask(FIRST)
        await state.ask(SECOND)
        assert await state.asked() == [FIRST, SECOND]
        await state.served([FIRST.id, "never-asked"])
        assert await state.asked() == [SECOND]
        await state.served([SECOND.id])
        assert await state.asked() == []

    async def test_asking_again_under_a_kept_id_changes_nothing(self, state: StateStore) -> None:
        await state.ask(FIRST)
        await state.ask(Asked(FIRST.id, "other", date(2020, 1, 1), "replica-c"))
        assert await state.asked() == [FIRST]

    async def test_a_delivery_records_its_day_only_the_first_time(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        until = clock.now + TEN_MINUTES
        assert await state.remember_delivery("delivery-1", until, FIRST)
        await state.served([FIRST.id])
        # A replay is refused as a duplicate, and asks for nothing again.
        assert not await state.remember_delivery("delivery-1", until, FIRST)
        assert await state.asked() == []
        assert await state.remember_delivery("delivery-2", until)
        assert await state.asked() == []

    async def test_a_rerun_asked_is_kept_with_its_run(self, state: StateStore) -> None:
        rerun = Asked("asked-3", "daily", date(2019, 6, 3), "replica-a",
                      Rerun("Daily(date=2019-06-03)", "fp-1", 2))
        await state.ask(rerun)
        await state.ask(FIRST)
        assert await state.asked() == [rerun, FIRST]
