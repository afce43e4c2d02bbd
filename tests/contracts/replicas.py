"""What every StateStore does with daemon replicas' heartbeats; mixed into
StateStoreContract, whose ``state`` fixture builds the store on the ManualClock ``clock``."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.stores.state.base import StateStore
from orchestrator.testing import ManualClock

TTL = timedelta(seconds=10)
DAILY = ["daily:1a2b"]


class ReplicasContract:
    async def test_a_heartbeat_answers_every_live_replica_and_what_it_watches(
        self, state: StateStore
    ) -> None:
        assert await state.heartbeat("replica-b", DAILY, TTL) == [("replica-b", "daily:1a2b")]
        assert await state.heartbeat("replica-a", ["daily:1a2b", "weekly:3c"], TTL) == [
            ("replica-a", "daily:1a2b"), ("replica-a", "weekly:3c"),
            ("replica-b", "daily:1a2b")]

    async def test_a_heartbeat_replaces_what_its_replica_watched(self, state: StateStore) -> None:
        await state.heartbeat("replica-a", ["daily:1a2b", "weekly:3c"], TTL)
        assert await state.heartbeat("replica-a", ["daily:4d5e"], TTL) == [
            ("replica-a", "daily:4d5e")]
        assert await state.heartbeat("replica-a", [], TTL) == []

    async def test_a_replica_is_live_until_its_heartbeat_runs_out_on_the_store_clock(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.heartbeat("quiet", DAILY, TTL)
        clock.advance(TTL - timedelta(milliseconds=1))
        assert [r for r, _ in await state.heartbeat("beating", DAILY, TTL)] == [
            "beating", "quiet"]
        clock.advance(timedelta(milliseconds=1))
        assert [r for r, _ in await state.heartbeat("beating", DAILY, TTL)] == ["beating"]

    async def test_a_heartbeat_extends_its_replica(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        await state.heartbeat("replica-a", DAILY, TTL)
        clock.advance(TTL / 2)
        await state.heartbeat("replica-a", DAILY, TTL)
        clock.advance(TTL * 3 / 4)
        assert [r for r, _ in await state.heartbeat("replica-b", DAILY, TTL)] == [
            "replica-a", "replica-b"]

    async def test_a_replica_that_leaves_is_gone_at_once(self, state: StateStore) -> None:
        await state.heartbeat("replica-a", DAILY, TTL)
        await state.heartbeat("replica-b", DAILY, TTL)
        await state.leave("replica-a")
        await state.leave("never-seen")
        assert await state.heartbeat("replica-b", DAILY, TTL) == [("replica-b", "daily:1a2b")]
