"""The daemon's actions over real HTTP: trigger a day, re-run, cancel, backfill. Each
works with the API token; each is refused, changing nothing, without it, with a wrong
one, from another origin, with another media type, with bad input, or with actions
off."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

import aiohttp
import anyio
import pytest

from orchestrator.errors import StateStoreError
from orchestrator.model import Asked, Backfill, RunState
from orchestrator.testing.stores import InMemoryStateStore
from orchestrator.testing.world import DaemonWorld
from sensors.facts import Root
from tests.support.browser import served_ui
from tests.support.worlds import DAY, make_world, publish_day

TOKEN = "api-token"
AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
OUTSIDE = "2018-10-01"  # a day outside the daemon's window


@dataclass
class Api:
    world: DaemonWorld
    session: aiohttp.ClientSession
    url: str

    async def call(self, method: str, path: str, body: object = None,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        data = b"" if body is None else json.dumps(body).encode()
        async with self.session.request(method, self.url + path, data=data,
                                        headers=AUTH if headers is None else headers) as answer:
            return answer.status, await answer.json()

    async def run_of(self, day: str) -> str:
        """The id of the day's run, once it has one."""
        with anyio.fail_after(5):
            while not (runs := [r for r in await self.world.state.list_runs()
                                if r.partition == day]):
                await anyio.sleep(0.01)
        return runs[0].id


@asynccontextmanager
async def serving(state: type[InMemoryStateStore] = InMemoryStateStore) -> AsyncIterator[Api]:
    """Not a fixture: the daemon's task group must be left in the task it was entered in."""
    world = make_world(state=state)
    async with served_ui(world, TOKEN) as url, aiohttp.ClientSession() as session:
        yield Api(world, session, url)


async def test_a_day_is_triggered_even_outside_the_window() -> None:
    async with serving() as api:
        await publish_day(api.world, OUTSIDE)
        await anyio.sleep(0.2)
        assert not api.world.runner.calls  # nobody watches that day
        status, answer = await api.call("POST", f"/api/partitions/top_artists/{OUTSIDE}/trigger")
        assert (status, answer) == (202, {"status": "accepted", "workflow": "top_artists",
                                          "date": OUTSIDE})
        await api.run_of(OUTSIDE)
        await api.world.wait_for(lambda: len(api.world.runner.calls) == 1)
        with anyio.fail_after(5):  # kept until evaluated, in case the daemon died first
            while await api.world.state.asked():
                await anyio.sleep(0.01)


class UnreachableStateStore(InMemoryStateStore):
    async def ask(self, asked: Asked) -> None:
        raise StateStoreError("the state store is restarting")


async def test_a_trigger_the_state_store_cannot_keep_is_refused_and_runs_nothing() -> None:
    async with serving(UnreachableStateStore) as api:
        await publish_day(api.world, OUTSIDE)
        status, answer = await api.call("POST", f"/api/partitions/top_artists/{OUTSIDE}/trigger")
        assert (status, answer["code"]) == (503, "unavailable")
        await anyio.sleep(0.2)
        assert not api.world.runner.calls


async def test_a_succeeded_run_is_run_again() -> None:
    async with serving() as api:
        await publish_day(api.world)
        run_id = await api.run_of(DAY)
        root = api.world.daemon.roots[Root("top_artists", date(2018, 10, 31))]
        await api.world.wait_for(lambda: root.verdict is not None and not root.evaluating)
        [first] = await api.world.state.list_runs()
        assert first.state is RunState.SUCCEEDED
        status, answer = await api.call("POST", f"/api/runs/{run_id}/rerun", {})
        assert (status, answer["run"]) == (202, run_id)
        await api.world.wait_for(lambda: len(api.world.runner.calls) == 2)
        with anyio.fail_after(5):
            while (again := (await api.world.state.list_runs())[0]).state is not \
                    RunState.SUCCEEDED or again.attempt == first.attempt:
                await anyio.sleep(0.01)
        await anyio.sleep(0.2)
        assert len(api.world.runner.calls) == 2  # once: the next evaluations do not re-run


async def test_a_running_run_is_cancelled_with_its_job() -> None:
    async with serving() as api:
        api.world.runner.gate = anyio.Event()
        await publish_day(api.world)
        run_id = await api.run_of(DAY)
        await api.world.wait_for(lambda: api.world.runner.running == 1)
        status, answer = await api.call("POST", f"/api/runs/{run_id}/rerun")
        assert (status, answer["code"]) == (409, "conflict")  # one active run per task
        status, answer = await api.call("POST", f"/api/runs/{run_id}/cancel")
        assert (status, answer.get("status")) == (200, "cancelled"), answer
        assert set(api.world.runner.cancelled) == {"fake-1"}
        [run] = await api.world.state.list_runs()
        assert (run.state, run.error) == (RunState.FAILED, "cancelled by the user")
        status, answer = await api.call("POST", f"/api/runs/{run_id}/cancel")
        assert (status, answer["code"]) == (409, "conflict")


async def test_a_backfill_runs_each_day_once_and_reports_progress() -> None:
    async with serving() as api:
        days = ["2018-10-01", "2018-10-02", "2018-10-03"]
        for day in days:
            await publish_day(api.world, day)
        body = {"workflow": "top_artists", "interval": "2018-10-01-2018-10-04", "max_parallel": 2}
        status, started = await api.call("POST", "/api/backfills", body)
        assert (status, started["total"], started["state"]) == (202, 3, "running")
        with anyio.fail_after(10):
            while (progress := (await api.call("GET", f"/api/backfills/{started['id']}"))[1]
                   )["state"] == "running":
                await anyio.sleep(0.02)
        assert {k: progress[k] for k in ("state", "done", "failed", "total")} == {
            "state": "succeeded", "done": 3, "failed": 0, "total": 3}
        assert sorted(r.partition for r in await api.world.state.list_runs()) == days
        # Started again: the same backfill, resumed, with nothing left to run.
        status, again = await api.call("POST", "/api/backfills", body)
        assert (status, again["id"], again["done"]) == (202, started["id"], 3)
        await anyio.sleep(0.2)
        assert len(api.world.runner.calls) == 3
        status, listed = await api.call("GET", "/api/backfills")
        assert [b["id"] for b in listed["backfills"]] == [started["id"]]


async def test_a_cancelled_backfill_begins_no_day_and_its_day_going_on_ends() -> None:
    async with serving() as api:
        api.world.runner.gate = anyio.Event()
        days = ["2018-10-01", "2018-10-02", "2018-10-03"]
        for day in days:
            await publish_day(api.world, day)
        body = {"workflow": "top_artists", "interval": "2018-10-01-2018-10-04", "max_parallel": 1}
        started = (await api.call("POST", "/api/backfills", body))[1]
        cancel = f"/api/backfills/{started['id']}/cancel"
        await api.world.wait_for(lambda: api.world.runner.running == 1)
        refused = await api.call("POST", cancel, {}, {"Content-Type": "application/json"})
        assert (refused[0], refused[1]["code"]) == (401, "unauthorized")
        status, cancelled = await api.call("POST", cancel, {})
        assert (status, cancelled["state"], cancelled["done"]) == (200, "cancelled", 0)
        api.world.runner.gate.set()  # the day going on ends, and publishes
        await api.world.wait_for(lambda: api.world.daemon.backfills.running is None)
        await api.world.daemon.backfills.take_over()  # nobody takes a cancelled one over
        await anyio.sleep(0.2)
        assert len(api.world.runner.calls) == 1
        [run] = await api.world.state.list_runs()
        assert (run.partition, run.state) == (days[0], RunState.SUCCEEDED)
        status, answer = await api.call("POST", cancel, {})
        assert (status, answer["code"]) == (409, "conflict")
        assert "is cancelled" in answer["error"]
        progress = (await api.call("GET", f"/api/backfills/{started['id']}"))[1]
        assert (progress["state"], progress["done"]) == ("cancelled", 0)


async def test_of_two_backfills_asked_at_once_one_starts_and_one_is_refused() -> None:
    async with serving() as api:
        api.world.runner.gate = anyio.Event()
        real = api.world.state.open_backfill

        async def slow_open(backfill: Backfill) -> Backfill:
            await anyio.sleep(0.2)  # the second request comes while the first records
            return await real(backfill)

        api.world.state.open_backfill = slow_open  # type: ignore[method-assign]
        answers: list[int] = []

        async def ask(interval: str) -> None:
            body = {"workflow": "top_artists", "interval": interval}
            answers.append((await api.call("POST", "/api/backfills", body))[0])

        async with anyio.create_task_group() as group:
            group.start_soon(ask, "2018-10-01")
            group.start_soon(ask, "2018-10-02")
        assert sorted(answers) == [202, 409]
        assert len(await api.world.state.list_backfills()) == 1
        api.world.runner.gate.set()


ACTIONS = [
    ("/api/partitions/top_artists/2018-10-31/trigger", {}),
    ("/api/runs/{run}/rerun", {}),
    ("/api/runs/{run}/cancel", {}),
    ("/api/backfills", {"workflow": "top_artists", "interval": "2018-10-01"}),
]
REFUSALS = [
    ({"Content-Type": "application/json"}, 401, "unauthorized"),
    ({**AUTH, "Authorization": "Bearer not-the-token"}, 401, "unauthorized"),
    ({**AUTH, "Authorization": TOKEN}, 401, "unauthorized"),
    ({**AUTH, "Origin": "https://elsewhere.example"}, 403, "forbidden"),
    ({**AUTH, "Origin": "http://["}, 403, "forbidden"),
    ({**AUTH, "Origin": "null"}, 403, "forbidden"),
    ({**AUTH, "Content-Type": "text/plain"}, 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("path", "body"), ACTIONS, ids=["trigger", "rerun", "cancel", "backfill"])
async def test_an_action_is_refused_without_its_token_and_changes_nothing(
    path: str, body: object,
) -> None:
    async with serving() as api:
        api.world.runner.gate = anyio.Event()
        await publish_day(api.world)
        run_id = await api.run_of(DAY)
        await api.world.wait_for(lambda: api.world.runner.running == 1)
        before = await api.world.state.list_runs()
        for headers, status, code in REFUSALS:
            answer = await api.call("POST", path.format(run=run_id), body, headers)
            assert (answer[0], answer[1]["code"]) == (status, code), headers
        assert await api.world.state.list_runs() == before
        assert await api.world.state.list_backfills() == []
        assert api.world.runner.cancelled == []
        # The daemon's own origin may act.
        status, _ = await api.call("POST", path.format(run=run_id), body,
                                   {**AUTH, "Origin": api.url})
        assert status in {200, 202, 409}


BAD_INPUT = [
    ("/api/partitions/none/2018-10-31/trigger", {}, 404, "unknown"),
    ("/api/partitions/top_artists/2018-02-30/trigger", {}, 400, "malformed"),
    ("/api/partitions/top_artists/2018-10-31/trigger", {"x": 1}, 400, "malformed"),
    ("/api/partitions/top_artists/2018-10-31/trigger", [1], 400, "malformed"),
    ("/api/runs/none/rerun", {}, 404, "unknown"),
    ("/api/runs/none/cancel", {}, 404, "unknown"),
    ("/api/backfills/none/cancel", {}, 404, "unknown"),
    ("/api/backfills/none/cancel", {"x": 1}, 400, "malformed"),
    ("/api/backfills", {"workflow": "none", "interval": "2018-10"}, 404, "unknown"),
    ("/api/backfills", {"workflow": "top_artists"}, 400, "malformed"),
    ("/api/backfills", {"workflow": "top_artists", "interval": "2018-13"}, 400, "malformed"),
    ("/api/backfills", {"workflow": "top_artists", "interval": "2018", "order": "up"}, 400,
     "malformed"),
    ("/api/backfills", {"workflow": "top_artists", "interval": "2018", "max_parallel": 0}, 400,
     "malformed"),
    ("/api/backfills", {"workflow": "top_artists", "interval": "1900-2100"}, 400, "malformed"),
]


async def test_bad_input_is_refused_and_changes_nothing() -> None:
    async with serving() as api:
        for path, body, status, code in BAD_INPUT:
            answer = await api.call("POST", path, body)
            assert (answer[0], answer[1]["code"]) == (status, code), (path, body)
        assert (await api.call("GET", "/api/backfills/none"))[0] == 404
        await anyio.sleep(0.1)
        assert await api.world.state.list_runs() == []
        assert await api.world.state.list_backfills() == []
        assert Root("top_artists", date(2018, 2, 28)) not in api.world.daemon.roots


async def test_without_a_token_configured_actions_are_off() -> None:
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        async with session.post(f"{url}/api/partitions/top_artists/{DAY}/trigger",
                                json={}, headers={"Authorization": "Bearer "}) as answer:
            assert answer.status == 503
            assert (await answer.json())["code"] == "unavailable"
        async with session.get(f"{url}/api/backfills") as answer:
            assert (await answer.json()) == {"backfills": []}
