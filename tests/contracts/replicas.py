"""What every StateStore does with daemon replicas' heartbeats; mixed into
StateStoreContract, whose ``state`` fixture builds the store on the ManualClock ``clock``."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.stores.state.base import StateStore
from orchestrator.testing import ManualClock

TTL = timedelta(seconds=10)


class ReplicasContract:
    async def test_a_heartbeat_answers_every_live_replica_sorted(self, state: StateStore) -> None:
        assert await state.heartbeat("replica-b", TTL) == ("replica-b",)
        assert await state.heartbeat("replica-a", TTL) == ("replica-a", "replica-b")
        assert await state.heartbeat("replica-b", TTL) == ("replica-a", "replica-b")

    async def test_a_replica_is_live_until_its_heartbeat_runs_out_on_the_store_clock(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.heartbeat("quiet", TTL)
        clock.advance(TTL - timedelta(milliseconds=1))
        assert await state.heartbeat("beating", TTL) == ("beating", "quiet")
        clock.advance(timedelta(milliseconds=1))
        assert await state.heartbeat("beating", TTL) == ("beating",)

    async def test_a_heartbeat_extends_its_replica(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.heartbeat("replica-a", TTL)
        clock.advance(TTL / 2)
        await state.heartbeat("replica-a", TTL)
        clock.advance(TTL * 3 / 4)
        assert await state.heartbeat("replica-b", TTL) == ("replica-a", "replica-b")

    async def test_a_replica_that_leaves_is_gone_at_once(self, state: StateStore) -> None:
        await state.heartbeat("replica-a", TTL)
        await state.heartbeat("replica-b", TTL)
        await state.leave("replica-a")
        await state.leave("never-seen")
        assert await state.heartbeat("replica-b", TTL) == ("replica-b",)
