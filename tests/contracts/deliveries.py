"""What every StateStore does with webhook delivery ids; mixed into StateStoreContract,
whose ``state`` fixture builds the store on the ManualClock ``clock``."""

from __future__ import annotations

from datetime import timedelta

import anyio

from orchestrator.stores.state.base import StateStore
from orchestrator.testing import ManualClock

TEN_MINUTES = timedelta(minutes=10)


class DeliveriesContract:
    async def test_a_delivery_id_is_new_once(self, state: StateStore, clock: ManualClock) -> None:
        until = clock.now + TEN_MINUTES
        assert await state.remember_delivery("delivery-1", until)
        assert not await state.remember_delivery("delivery-1", until)
        assert await state.remember_delivery("delivery-2", until)

    async def test_a_delivery_id_is_remembered_until_it_expires_on_the_store_clock(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        assert await state.remember_delivery("delivery-1", clock.now + TEN_MINUTES)
        clock.advance(TEN_MINUTES - timedelta(milliseconds=1))
        assert not await state.remember_delivery("delivery-1", clock.now + TEN_MINUTES)
        # The refused one set its own, later expiry: the id is kept until then.
        clock.advance(TEN_MINUTES - timedelta(milliseconds=1))
        assert not await state.remember_delivery("delivery-1", clock.now)
        clock.advance(timedelta(milliseconds=1))
        assert await state.remember_delivery("delivery-1", clock.now + TEN_MINUTES)

    async def test_an_earlier_expiry_never_shortens_the_memory(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        assert await state.remember_delivery("delivery-1", clock.now + 2 * TEN_MINUTES)
        assert not await state.remember_delivery("delivery-1", clock.now + TEN_MINUTES)
        clock.advance(TEN_MINUTES)
        assert not await state.remember_delivery("delivery-1", clock.now)

    async def test_expired_ids_are_forgotten_whatever_id_comes_next(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        for n in range(5):
            assert await state.remember_delivery(f"old-{n}", clock.now + TEN_MINUTES)
        clock.advance(TEN_MINUTES)
        assert await state.remember_delivery("new", clock.now + TEN_MINUTES)
        assert all([await state.remember_delivery(f"old-{n}", clock.now + TEN_MINUTES)
                    for n in range(5)])

    async def test_one_id_remembered_at_once_by_many_is_new_for_exactly_one(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        answers: list[bool] = []

        async def remember() -> None:
            answers.append(await state.remember_delivery("delivery-1", clock.now + TEN_MINUTES))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(remember)
        assert sorted(answers) == [False] * 9 + [True]
