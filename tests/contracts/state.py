"""What every StateStore must do; subclass and provide the ``state`` fixture.

The ``state`` fixture must build its store with ``now=clock`` (the ManualClock
fixture below) so lease expiry is tested without sleeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest

from orchestrator.errors import (
    LeaseLost,
    RetriesExhausted,
    RunConflict,
    StaleInputs,
    StateStoreError,
    UsageError,
)
from orchestrator.model import RETRY_AT_ONCE, InputRevision, Run, RunRetryPolicy, RunState
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.claims import NEIGHBOUR_RECHECK
from orchestrator.testing import ManualClock
from tests.contracts.asked import AskedContract
from tests.contracts.backfills import BackfillsContract
from tests.contracts.deliveries import DeliveriesContract
from tests.contracts.replicas import ReplicasContract
from tests.support.owners import ended_owner, paused_owner

LEASE = timedelta(minutes=10)
INPUTS = (
    InputRevision("plays", "gs://bucket/plays/2018-10-31/*", "rev-1"),
    InputRevision("users", "proj-123:ds.users", "proj-123:ds.users@2018-10-31T00:00:00+00:00"),
)


async def claim(
    state: StateStore,
    *,
    owner: str = "worker-a",
    fingerprint: str = "fp-1",
    task_id: str = "TopArtists(date=2018-10-31)",
    rerun_generation: int | None = None,
    retry: RunRetryPolicy = RETRY_AT_ONCE,
) -> Run:
    return await state.claim(
        task_id=task_id, family="TopArtists", partition="2018-10-31", fingerprint=fingerprint,
        inputs=INPUTS, owner=owner, lease=LEASE, rerun_generation=rerun_generation,
        retry=retry,
    )  # fmt: skip


class StateStoreContract(AskedContract, BackfillsContract, DeliveriesContract,
                         ReplicasContract):
    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def state(self, clock: ManualClock) -> AsyncIterator[StateStore]:
        raise NotImplementedError("subclasses provide the store under test, with now=clock")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    async def test_first_claim_starts_attempt_one(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        assert (run.state, run.attempt, run.lease_owner) == (RunState.RUNNING, 1, "worker-a")
        assert run.lease_expires == clock.now + LEASE
        assert run.created == run.updated == clock.now
        assert run.inputs == INPUTS
        assert (run.family, run.partition, run.fingerprint) == ("TopArtists", "2018-10-31", "fp-1")
        assert await state.get(run.task_id, "fp-1") == run

    async def test_get_missing_is_none(self, state: StateStore) -> None:
        assert await state.get("nope", "fp") is None
        assert await state.latest("nope") is None

    @pytest.mark.parametrize("owner", ["worker-a", "worker-b"])
    async def test_live_lease_blocks_every_claim(self, state: StateStore, owner: str) -> None:
        first = await claim(state, owner="worker-a")
        with pytest.raises(RunConflict):
            await claim(state, owner=owner)
        assert await state.get(first.task_id, "fp-1") == first

    async def test_expired_lease_is_taken_over(self, state: StateStore, clock: ManualClock) -> None:
        first = await claim(state, owner="worker-a")
        await state.set_staged(first.id, 1, {"textOutput": "/out/x"})
        await state.set_job_id(first.id, 1, "job-1")
        clock.advance(LEASE + timedelta(seconds=1))
        second = await claim(state, owner="worker-b")
        assert (second.id, second.attempt, second.state) == (first.id, 2, RunState.RUNNING)
        assert second.lease_owner == "worker-b"
        assert second.lease_expires == clock.now + LEASE
        # The new owner inherits what it needs to reattach to the job.
        assert (second.job_id, dict(second.staged)) == ("job-1", {"textOutput": "/out/x"})
        with pytest.raises(RunConflict):
            await state.set_job_id(first.id, 1, "late write of the dead owner")

    @pytest.fixture
    def ended_owner(self) -> str:
        return ended_owner()

    async def test_a_run_whose_owner_ended_on_this_machine_is_taken_over_at_once(
        self, state: StateStore, clock: ManualClock, ended_owner: str
    ) -> None:
        first = await claim(state, owner=ended_owner)
        await state.set_staged(first.id, 1, {"textOutput": "/out/x"})
        await state.set_job_id(first.id, 1, "job-1")
        second = await claim(state, owner="worker-b")  # its lease has not run out
        assert (second.id, second.attempt, second.state) == (first.id, 2, RunState.RUNNING)
        assert (second.lease_owner, second.lease_expires) == ("worker-b", clock.now + LEASE)
        assert (second.job_id, dict(second.staged)) == ("job-1", {"textOutput": "/out/x"})

    async def test_a_publication_whose_owner_ended_here_is_finished_before_newer_inputs(
        self, state: StateStore, ended_owner: str
    ) -> None:
        older = await claim(state, owner=ended_owner, fingerprint="fp-1")
        await state.begin_publishing(older.id, 1)
        handed = await claim(state, owner="worker-b", fingerprint="fp-2")
        assert (handed.id, handed.state, handed.attempt) == (older.id, RunState.PUBLISHING, 2)

    async def test_an_owner_paused_alive_keeps_its_lease_and_is_looked_at_again_soon(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        with paused_owner() as paused:
            first = await claim(state, owner=paused)
            with pytest.raises(RunConflict) as held:
                await claim(state, owner="worker-b")
        assert await state.get(first.task_id, "fp-1") == first
        # Its death would be seen at once: the claimer asks again well before the lease ends.
        assert held.value.held_until == clock.now + NEIGHBOUR_RECHECK
        assert first.lease_expires == clock.now + LEASE > clock.now + NEIGHBOUR_RECHECK

    async def test_a_publishing_run_taken_over_stays_publishing(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        await state.set_staged(run.id, 1, {"bqOutput": "p:_incoming_EU._t_1"})
        await state.begin_publishing(run.id, 1)
        clock.advance(LEASE * 2)
        taken = await claim(state, owner="worker-b")
        assert (taken.state, taken.attempt) == (RunState.PUBLISHING, 2)
        assert dict(taken.staged) == {"bqOutput": "p:_incoming_EU._t_1"}

    async def test_a_failed_run_restarts_from_scratch(self, state: StateStore) -> None:
        run = await claim(state)
        await state.set_staged(run.id, 1, {"textOutput": "/out/x"})
        await state.set_job_id(run.id, 1, "job-1")
        await state.fail(run.id, 1, "boom")
        again = await claim(state)
        assert (again.attempt, again.job_id, dict(again.staged)) == (2, None, {})

    async def test_renew_extends_the_lease_of_the_current_attempt_only(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state, owner="worker-a")
        clock.advance(LEASE / 2)
        renewed = await state.renew(run.id, 1, LEASE)
        assert renewed.lease_expires == clock.now + LEASE
        clock.advance(LEASE * 3 / 4)
        with pytest.raises(RunConflict):
            await claim(state, owner="worker-b")
        await state.succeed(run.id, 1, {})
        with pytest.raises(RunConflict):
            await state.renew(run.id, 1, LEASE)

    async def test_publishing_run_is_active_too(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        await state.begin_publishing(run.id, 1)
        with pytest.raises(RunConflict):
            await claim(state, owner="worker-b")
        clock.advance(LEASE * 2)
        assert (await claim(state, owner="worker-b")).attempt == 2

    async def test_failed_run_is_retried_with_next_attempt(self, state: StateStore) -> None:
        run = await claim(state)
        await state.set_job_id(run.id, 1, "job-1")
        failed = await state.fail(run.id, 1, "boom")
        assert (failed.state, failed.error, failed.lease_owner) == (RunState.FAILED, "boom", None)
        assert failed.lease_expires is None
        retry = await claim(state, owner="worker-b")
        assert (retry.attempt, retry.state, retry.error, retry.job_id) == (
            2, RunState.RUNNING, None, None,
        )  # fmt: skip

    async def test_succeeded_run_is_returned_unchanged(self, state: StateStore) -> None:
        run = await claim(state)
        done = await state.succeed(run.id, 1, {"out": "gs://bucket/out/"})
        assert done.state is RunState.SUCCEEDED
        assert dict(done.outputs) == {"out": "gs://bucket/out/"}
        assert (done.lease_owner, done.lease_expires) == (None, None)
        assert await claim(state, owner="worker-b") == done

    async def test_rerun_succeeded_starts_next_attempt(self, state: StateStore) -> None:
        run = await claim(state)
        await state.succeed(run.id, 1, {"out": "/data/out"})
        rerun = await claim(state, owner="worker-b", rerun_generation=1)
        assert (rerun.attempt, rerun.state, rerun.lease_owner) == (2, RunState.RUNNING, "worker-b")
        assert (rerun.generation, dict(rerun.outputs)) == (2, {})

    async def test_a_rerun_of_a_generation_already_run_again_changes_nothing(
        self, state: StateStore
    ) -> None:
        """Compare-and-set on the generation: two processes serving one re-run (or one
        serving it twice) start one next generation between them."""
        run = await claim(state)
        await state.succeed(run.id, 1, {"out": "/data/out"})
        first = await claim(state, owner="worker-b", rerun_generation=1)
        assert (first.generation, first.state) == (2, RunState.RUNNING)
        with pytest.raises(RunConflict):  # the re-run holds it
            await claim(state, owner="worker-c", rerun_generation=1)
        done = await state.succeed(first.id, first.attempt, {"out": "/data/out2"})
        assert await claim(state, owner="worker-c", rerun_generation=1) == done

    async def test_writes_with_current_attempt_apply(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        clock.advance(timedelta(seconds=5))
        with_job = await state.set_job_id(run.id, 1, "job-42")
        assert with_job.job_id == "job-42"
        assert with_job.updated == clock.now
        publishing = await state.begin_publishing(run.id, 1)
        assert (publishing.state, publishing.job_id) == (RunState.PUBLISHING, "job-42")
        assert await state.get(run.task_id, run.fingerprint) == publishing

    async def test_superseded_attempt_is_fenced_off(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        stale = await claim(state, owner="worker-a")
        clock.advance(LEASE * 2)
        current = await claim(state, owner="worker-b")
        for write in (
            state.set_job_id(stale.id, 1, "late"),
            state.begin_publishing(stale.id, 1),
            state.succeed(stale.id, 1, {"out": "/late"}),
            state.fail(stale.id, 1, "late"),
        ):
            with pytest.raises(RunConflict):
                await write
        assert await state.get(stale.task_id, stale.fingerprint) == current
        with pytest.raises(RunConflict):
            await state.succeed(current.id, 3, {})

    async def test_write_to_unknown_run_raises(self, state: StateStore) -> None:
        with pytest.raises(StateStoreError):
            await state.set_job_id("no-such-run", 1, "job")

    async def test_unique_per_task_and_fingerprint(self, state: StateStore) -> None:
        one = await claim(state, fingerprint="fp-1")
        other_fp = await claim(state, fingerprint="fp-2")
        other_task = await claim(state, task_id="Other()", fingerprint="fp-1")
        assert len({one.id, other_fp.id, other_task.id}) == 3
        assert len(await state.list_runs(limit=10)) == 3

    async def test_latest_is_most_recently_updated(self, state: StateStore) -> None:
        old = await claim(state, fingerprint="fp-1")
        await state.fail(old.id, 1, "boom")
        new = await claim(state, fingerprint="fp-2")
        assert await state.latest(old.task_id) == new
        retried = await claim(state, fingerprint="fp-1")  # fp-2 is superseded by it
        assert await state.latest(old.task_id) == retried

    async def test_list_runs_newest_first_with_filters(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        runs = []
        for n in range(3):
            clock.advance(timedelta(seconds=1))
            runs.append(await claim(state, task_id=f"T(n={n})"))
        other = await claim(state, task_id="Other()", fingerprint="fp-x")
        failed = await state.fail(runs[0].id, 1, "boom")
        listed = await state.list_runs()
        assert [r.id for r in listed] == [other.id, runs[2].id, runs[1].id, runs[0].id]
        assert [r.id for r in await state.list_runs(limit=2)] == [other.id, runs[2].id]
        mine = await state.list_runs(task_id=runs[1].task_id)
        assert [r.id for r in mine] == [runs[1].id]
        assert await state.list_runs(state=RunState.FAILED) == [failed]
        assert await state.list_runs(task_id="Other()", state=RunState.FAILED) == []

    @pytest.mark.parametrize("limit", [0, -5, 10_001])
    async def test_list_runs_limit_out_of_range(self, state: StateStore, limit: int) -> None:
        with pytest.raises(UsageError):
            await state.list_runs(limit=limit)

    async def test_lease_must_be_positive(self, state: StateStore) -> None:
        with pytest.raises(UsageError):
            await state.claim(
                task_id="T()", family="T", partition="2018-10-31", fingerprint="fp",
                inputs=(), owner="w", lease=timedelta(0),
            )  # fmt: skip
        assert await state.get("T()", "fp") is None

    async def test_concurrent_claims_exactly_one_wins(self, state: StateStore) -> None:
        winners: list[Run] = []
        conflicts: list[str] = []

        async def contend(owner: str) -> None:
            try:
                winners.append(await claim(state, owner=owner))
            except RunConflict:
                conflicts.append(owner)

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(contend, f"worker-{n}")
        assert len(winners) == 1
        assert len(conflicts) == 7
        assert winners[0].attempt == 1

    # One active run per task, whatever its inputs.

    async def test_newer_inputs_supersede_a_run_that_has_not_begun_publishing(
        self, state: StateStore
    ) -> None:
        older = await claim(state, owner="worker-a", fingerprint="fp-1")
        await state.set_staged(older.id, 1, {"textOutput": "/out/old"})
        newer = await claim(state, owner="worker-b", fingerprint="fp-2")
        assert (newer.state, newer.attempt, newer.lease_owner) == (
            RunState.RUNNING, 1, "worker-b",
        )  # fmt: skip
        superseded = await state.get(older.task_id, "fp-1")
        assert superseded is not None
        assert superseded.state is RunState.SUPERSEDED
        assert "fp-2" in (superseded.error or "")
        assert (superseded.lease_owner, superseded.lease_expires) == (None, None)
        assert superseded.finished is not None
        assert dict(superseded.staged) == {"textOutput": "/out/old"}  # for its cleanup
        for write in (
            state.renew(older.id, 1, LEASE),
            state.begin_publishing(older.id, 1),
            state.check_fence(older.id, 1),
            state.succeed(older.id, 1, {}),
        ):
            with pytest.raises(LeaseLost):
                await write

    async def test_newer_inputs_wait_for_a_run_that_is_publishing(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        older = await claim(state, owner="worker-a", fingerprint="fp-1")
        await state.begin_publishing(older.id, 1)
        with pytest.raises(RunConflict) as waiting:
            await claim(state, owner="worker-b", fingerprint="fp-2")
        assert waiting.value.held_until == older.lease_expires
        assert await state.get(older.task_id, "fp-2") is None
        done = await state.succeed(older.id, 1, {"textOutput": "rev-1"})
        newer = await claim(state, owner="worker-b", fingerprint="fp-2")
        assert newer.state is RunState.RUNNING
        assert await state.get(older.task_id, "fp-1") == done

    async def test_a_publishing_run_whose_owner_died_is_handed_to_the_next_claimer(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        older = await claim(state, owner="worker-a", fingerprint="fp-1")
        await state.set_staged(older.id, 1, {"textOutput": "/out/old"})
        await state.begin_publishing(older.id, 1)
        clock.advance(LEASE + timedelta(seconds=1))
        handed = await claim(state, owner="worker-b", fingerprint="fp-2")
        assert (handed.id, handed.fingerprint, handed.state, handed.attempt) == (
            older.id, "fp-1", RunState.PUBLISHING, 2,
        )  # fmt: skip
        assert dict(handed.staged) == {"textOutput": "/out/old"}
        assert handed.lease_owner == "worker-b"
        assert await state.get(older.task_id, "fp-2") is None
        await state.succeed(handed.id, 2, {"textOutput": "rev-1"})
        assert (await claim(state, owner="worker-b", fingerprint="fp-2")).attempt == 1

    async def test_claims_for_many_inputs_at_once_leave_one_active_run(
        self, state: StateStore
    ) -> None:
        async def contend(n: int) -> None:
            # A claim may lose the race (RunConflict); it must never leave two active.
            with contextlib.suppress(RunConflict):
                await claim(state, owner=f"worker-{n}", fingerprint=f"fp-{n}")

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(contend, n)
        runs = await state.list_runs()
        assert len([r for r in runs if r.state.active]) == 1
        assert {r.state for r in runs} <= {RunState.RUNNING, RunState.SUPERSEDED}

    # Leases are judged by the store's clock, at the moment of each write.

    async def test_a_lease_that_ran_out_is_lost_even_if_nobody_took_over(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        clock.advance(LEASE)
        for write in (
            state.renew(run.id, 1, LEASE),
            state.check_fence(run.id, 1),
            state.set_staged(run.id, 1, {"out": "/late"}),
            state.set_job_id(run.id, 1, "late"),
            state.begin_publishing(run.id, 1),
        ):
            with pytest.raises(LeaseLost):
                await write
        # What ends the attempt is still recorded: it is the truth, and fenced.
        failed = await state.fail(run.id, 1, "job failed")
        assert (failed.state, failed.failures) == (RunState.FAILED, 1)

    async def test_check_fence_confirms_a_live_lease_and_writes_nothing(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        clock.advance(LEASE / 2)
        assert await state.check_fence(run.id, 1) == run
        assert await state.get(run.task_id, run.fingerprint) == run

    async def test_begin_publishing_only_from_running(self, state: StateStore) -> None:
        run = await claim(state)
        await state.begin_publishing(run.id, 1)
        with pytest.raises(LeaseLost):
            await state.begin_publishing(run.id, 1)
        with pytest.raises(LeaseLost):
            await state.supersede(run.id, 1, "too late: it is publishing")

    async def test_a_released_run_is_taken_over_at_once_where_it_stands(
        self, state: StateStore
    ) -> None:
        run = await claim(state, owner="worker-a")
        await state.set_staged(run.id, 1, {"bqOutput": "p:_incoming_EU._t_1"})
        await state.set_job_id(run.id, 1, "job-1")
        await state.begin_publishing(run.id, 1)
        released = await state.release(run.id, 1, "shutting down")
        assert (released.state, released.lease_owner) == (RunState.PUBLISHING, None)
        taken = await claim(state, owner="worker-b")
        assert (taken.attempt, taken.state, taken.job_id, taken.generation) == (
            2, RunState.PUBLISHING, "job-1", 1,
        )  # fmt: skip
        assert dict(taken.staged) == {"bqOutput": "p:_incoming_EU._t_1"}
        with pytest.raises(LeaseLost):
            await state.release(run.id, 1, "twice")

    async def test_a_superseded_run_starts_afresh_when_its_inputs_are_current_again(
        self, state: StateStore
    ) -> None:
        run = await claim(state, fingerprint="fp-1")
        superseded = await state.supersede(run.id, 1, "inputs changed")
        assert (superseded.state, superseded.error) == (RunState.SUPERSEDED, "inputs changed")
        again = await claim(state, fingerprint="fp-1")
        assert (again.attempt, again.generation, again.state) == (2, 2, RunState.RUNNING)

    # Generations: a takeover continues one; a fresh start begins the next.

    async def test_generations_count_fresh_starts_not_takeovers(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        first = await claim(state, owner="worker-a")
        clock.advance(LEASE)
        taken = await claim(state, owner="worker-b")
        assert (taken.attempt, taken.generation) == (2, 1)
        await state.fail(taken.id, 2, "boom")
        retried = await claim(state, owner="worker-c")
        assert (retried.attempt, retried.generation, retried.failures) == (3, 2, 1)
        await state.succeed(retried.id, 3, {})
        rerun = await claim(state, owner="worker-d", rerun_generation=2)
        assert (rerun.attempt, rerun.generation, rerun.failures) == (4, 3, 0)
        assert first.generation == 1

    # Retries of failed runs: backoff and a limit.

    async def test_failed_runs_retry_with_backoff_up_to_the_limit(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        policy = RunRetryPolicy(attempts=3, delay=timedelta(minutes=1))
        run = await claim(state, retry=policy)
        failed = await state.fail(run.id, 1, "boom")
        assert failed.finished == clock.now
        with pytest.raises(RunConflict) as early:
            await claim(state, retry=policy)
        assert early.value.held_until == clock.now + timedelta(minutes=1)
        assert "boom" in str(early.value)
        clock.advance(timedelta(minutes=1))
        second = await claim(state, retry=policy)
        assert (second.attempt, second.failures) == (2, 1)
        await state.fail(second.id, 2, "boom again")
        with pytest.raises(RunConflict) as doubled:
            await claim(state, retry=policy)
        assert doubled.value.held_until == clock.now + timedelta(minutes=2)
        clock.advance(timedelta(minutes=2))
        third = await claim(state, retry=policy)
        await state.fail(third.id, 3, "boom a third time")
        clock.advance(timedelta(days=2))
        with pytest.raises(RetriesExhausted, match="boom a third time"):
            await claim(state, retry=policy)
        # Without a limit (a user's own `charon run`), it runs again at once.
        assert (await claim(state)).attempt == 4

    async def test_a_run_that_must_wait_for_its_retry_still_supersedes_older_inputs(
        self, state: StateStore
    ) -> None:
        policy = RunRetryPolicy(attempts=3, delay=timedelta(minutes=1))
        failed = await claim(state, fingerprint="fp-2", retry=policy)
        await state.fail(failed.id, 1, "boom")
        older = await claim(state, fingerprint="fp-1")
        with pytest.raises(RunConflict):
            await claim(state, fingerprint="fp-2", retry=policy)
        stale = await state.get(older.task_id, "fp-1")
        assert stale is not None
        assert stale.state is RunState.SUPERSEDED

    # A claim with inputs older than a run of the task consumed is stale.

    async def test_a_claim_with_older_inputs_than_the_active_run_is_refused(
        self, state: StateStore
    ) -> None:
        newer = await state.claim(
            task_id="T()", family="T", partition="", fingerprint="fp-new", owner="fresh",
            inputs=[InputRevision("plays", "/p/2", "rev-2", order=2)], lease=LEASE,
        )
        with pytest.raises(StaleInputs):
            await state.claim(
                task_id="T()", family="T", partition="", fingerprint="fp-old", owner="late",
                inputs=[InputRevision("plays", "/p/1", "rev-1", order=1)], lease=LEASE,
            )
        assert await state.get("T()", "fp-new") == newer  # not superseded
        assert await state.get("T()", "fp-old") is None  # nothing written

    async def test_a_claim_with_older_inputs_than_the_latest_success_is_refused(
        self, state: StateStore
    ) -> None:
        old = [InputRevision("plays", "/p/1", "rev-1", order=1)]
        first = await state.claim(task_id="T()", family="T", partition="",
                                  fingerprint="fp-old", owner="a", inputs=old, lease=LEASE)
        await state.fail(first.id, 1, "boom")
        newer = await state.claim(
            task_id="T()", family="T", partition="", fingerprint="fp-new", owner="b",
            inputs=[InputRevision("plays", "/p/2", "rev-2", order=2)], lease=LEASE,
        )
        await state.succeed(newer.id, 1, {})
        with pytest.raises(StaleInputs):
            await state.claim(task_id="T()", family="T", partition="",
                              fingerprint="fp-old", owner="c", inputs=old, lease=LEASE)
        failed = await state.get("T()", "fp-old")
        assert failed is not None
        assert failed.state is RunState.FAILED  # not started again

    async def test_inputs_without_an_order_are_not_judged(self, state: StateStore) -> None:
        await claim(state, fingerprint="fp-1")  # INPUTS carry no order, as old rows
        later = await claim(state, fingerprint="fp-2")
        assert later.state is RunState.RUNNING
