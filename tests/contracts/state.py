"""What every StateStore must do; subclass and provide the ``state`` fixture.

The ``state`` fixture must build its store with ``now=clock`` (the ManualClock
fixture below) so lease expiry is tested without sleeping.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import anyio
import pytest

from orchestrator.errors import RunConflict, StateStoreError, UsageError
from orchestrator.model import InputRevision, Run, RunState
from orchestrator.ports import StateStore
from orchestrator.testing import ManualClock

LEASE = timedelta(minutes=10)
INPUTS = (
    InputRevision("plays", "gs://bucket/plays/2018-10-31/*", "rev-1"),
    InputRevision("users", "proj-123:ds.users", "proj-123:ds.users@2018-10-31T00:00:00+00:00"),
)


async def claim(
    state: StateStore,
    owner: str = "worker-a",
    fingerprint: str = "fp-1",
    task_id: str = "TopArtists(date=2018-10-31)",
    rerun_succeeded: bool = False,
) -> Run:
    return await state.claim(
        task_id=task_id, family="TopArtists", partition="2018-10-31", fingerprint=fingerprint,
        inputs=INPUTS, owner=owner, lease=LEASE, rerun_succeeded=rerun_succeeded,
    )  # fmt: skip


class StateStoreContract:
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

    async def test_a_publishing_run_taken_over_stays_publishing(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        await state.set_staged(run.id, 1, {"bqOutput": "p:_incoming_EU._t_1"})
        await state.set_state(run.id, 1, RunState.PUBLISHING)
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
        await state.set_state(run.id, 1, RunState.PUBLISHING)
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
        rerun = await claim(state, owner="worker-b", rerun_succeeded=True)
        assert (rerun.attempt, rerun.state, rerun.lease_owner) == (2, RunState.RUNNING, "worker-b")
        assert dict(rerun.outputs) == {}

    async def test_writes_with_current_attempt_apply(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        run = await claim(state)
        clock.advance(timedelta(seconds=5))
        with_job = await state.set_job_id(run.id, 1, "job-42")
        assert with_job.job_id == "job-42"
        assert with_job.updated == clock.now
        publishing = await state.set_state(run.id, 1, RunState.PUBLISHING)
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
            state.set_state(stale.id, 1, RunState.PUBLISHING),
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
        new = await claim(state, fingerprint="fp-2")
        assert await state.latest(old.task_id) == new
        touched = await state.fail(old.id, 1, "late news")
        assert await state.latest(old.task_id) == touched

    async def test_list_runs_newest_first_with_filters(
        self, state: StateStore, clock: ManualClock
    ) -> None:
        runs = []
        for n in range(3):
            clock.advance(timedelta(seconds=1))
            runs.append(await claim(state, fingerprint=f"fp-{n}"))
        other = await claim(state, task_id="Other()", fingerprint="fp-x")
        failed = await state.fail(runs[0].id, 1, "boom")
        listed = await state.list_runs()
        assert [r.id for r in listed] == [other.id, runs[2].id, runs[1].id, runs[0].id]
        mine = await state.list_runs(task_id=runs[0].task_id, limit=2)
        assert [r.id for r in mine] == [runs[2].id, runs[1].id]
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
