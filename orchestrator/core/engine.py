"""The engine: evaluates a task graph and runs what is missing, in dependency order.

Each node waits for its dependencies, looks its inputs up through the sensors,
fingerprints them and, unless its outputs already exist for that fingerprint, takes a
place within the concurrency limits, looks its inputs up again, claims the run in the
state store and executes it. A run is claimed only with a place free: a worker never
holds a lease on work it cannot start, so other replicas take that work instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta

import anyio

from jobs.runners.base import JobRunner
from orchestrator.config import BeamSettings
from orchestrator.core.execution import Attempt, Evaluation, Executor, Inputs
from orchestrator.core.graph import Graph, resolve
from orchestrator.core.kept_gone import Rebuild, gone_since_success, kept_gone, rebuild_below
from orchestrator.core.leases import LeaseKeeper
from orchestrator.core.limits import Place, PlaceLine
from orchestrator.core.lookups import Externals, Lookups
from orchestrator.core.nodes import Nodes, blocked_by
from orchestrator.core.policy import USER_RUN, Hooks, Policy
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Outcome, Report, Status, complete, not_claiming
from orchestrator.core.task_loop import TaskLoop
from orchestrator.errors import (
    CharonError,
    RetriesExhausted,
    RunConflict,
    StaleInputs,
)
from orchestrator.log import get_logger, log_context
from orchestrator.model import (
    Run,
    RunState,
    fingerprint,
)
from orchestrator.owners import lease_owner
from orchestrator.tasks.task import (
    ExternalTask,
    Task,
    WrapperTask,
)
from sensors.guard import SourceGuards, is_outage, level_for

EVALUATORS = 256
"""Nodes of one evaluation evaluated at once: enough that claims and successes
queued together fill a state-store batch (orchestrator.stores.drivers.sqlite.MAX_BATCH)."""
Lookup = Callable[[], Awaitable[Inputs | Outcome]]
"""Looks a task's inputs up: their revisions, or the outcome that one is missing."""
AT_ITS_LIMIT = "ready: its workflow runs as many at once as it may; it runs when one ends"
AT_THE_ENGINE_LIMIT = ("ready: charon runs as many at once as it may (engine.max_concurrent_runs);"
                       " it runs when one ends")
MAX_ROUNDS = 3
"""Runs of one node in one evaluation when its inputs keep changing under it; the next
evaluation (a new input's trigger) takes it from there."""


class Engine:
    def __init__(
        self,
        adapters: Adapters,
        *,
        runner: JobRunner,
        beam: BeamSettings,
        max_concurrent_runs: int,
        lease: timedelta,
        owner: str | None = None,
        local_runner: JobRunner | None = None,
        guards: SourceGuards | None = None,
    ) -> None:
        """``guards``: the sources' guards, which bound its lookups (sensors/guard.py),
        shared with whatever else in the process asks the sources (the daemon's polls)."""
        self._adapters = adapters
        self.guards = guards or SourceGuards()
        self._lookups = Lookups(adapters, self.guards)
        self._executor = Executor(adapters, runner=runner, beam=beam, local_runner=local_runner)
        self._limiter = anyio.CapacityLimiter(max_concurrent_runs)
        # Never fewer evaluators than runs allowed at once, or the limit could not be met.
        self._evaluators = max(EVALUATORS, max_concurrent_runs)
        self._lease = lease
        self._owner = owner or lease_owner()
        self._claiming = True
        self._line: PlaceLine | None = None
        self._log = get_logger("charon.engine")

    @property
    def owner(self) -> str:
        return self._owner

    @property
    def max_concurrent_runs(self) -> int:
        return int(self._limiter.total_tokens)

    @property
    def places_free(self) -> int:
        """Runs that could start now under the engine's limit."""
        return int(self._limiter.available_tokens)

    def share_places(self, line: PlaceLine) -> None:
        """Wait for places in ``line`` (the daemon's): a run that finds none free and
        whose evaluation has no :class:`Hooks` (a backfill's) waits there for its turn,
        and ``line`` is told each time a run gives its place back, whoever's it was."""
        self._line = line

    async def cancel(self, task: Task, run: Run) -> None:
        """Cancel ``task``'s running ``run``, under its attempt, then its job. Failing the
        run fences its owner out: the owner's next write is refused, and were the job's
        own cancellation lost, the owner stops the job at its next lease renewal."""
        await self._executor.cancel(task, run)

    def stop_claiming(self) -> None:
        """Claim nothing more (a shutdown began); runs already claimed go on."""
        self._claiming = False

    async def lookup_externals(self, graphs: Iterable[Graph]) -> Externals:
        """The outputs of the external tasks of several graphs, in one batched lookup, for
        their evaluations to begin with (``run``'s ``externals``); empty if it fails."""
        return await self._lookups.externals_of(graphs)

    async def run(self, root: Task, policy: Policy = USER_RUN, *, graph: Graph | None = None,
                  externals: Externals | None = None, hooks: Hooks | None = None) -> Report:
        """Bring ``root`` and everything it requires up to date.

        A node becomes ready when its last dependency finishes. Up to ``evaluators``
        tasks take ready nodes one after another, rather than one task per node:
        a thousand ready partitions then cost a few hundred task spawns, and no more
        sensor lookups or claims are in flight than that. A node whose sources fail
        ends as an ERROR outcome; it never takes the others down with it. ``graph``:
        ``root``'s, if the caller resolved it already; ``externals``: what a lookup made
        for several evaluations found (``lookup_externals``), looked up here otherwise;
        ``hooks``: what to tell the caller as it goes (see :class:`Hooks`).
        """
        graph = graph or resolve(root)
        nodes = Nodes(graph)
        known = await self._lookups.externals(graph, externals)
        # External tasks the batched lookup answered are settled here, one after
        # another, without an evaluator each: a year of daily inputs is 366 checks
        # of what is already known, not 366 tasks.
        answered = [task_id for task_id in nodes.ready
                    if self._lookups.answered(graph.tasks[task_id], known)]
        skipped = set(answered)
        unanswered = [task_id for task_id in nodes.ready if task_id not in skipped]
        nodes.ready.clear()
        nodes.ready.extend(unanswered)
        for task_id in answered:
            task = graph.tasks[task_id]
            assert isinstance(task, ExternalTask)  # answered() says so
            nodes.settle(task_id, await self._lookups.check_external(task, known))
        if (first := nodes.next_ready()) is not None:
            await self._evaluate_ready(graph, nodes, first, policy, known, hooks=hooks)
        return Report(root.task_id, nodes.outcomes, graph.tasks)

    async def _evaluate_ready(self, graph: Graph, nodes: Nodes, first: str, policy: Policy,
                              known: Externals, *, hooks: Hooks | None) -> None:
        """Evaluate ``first``, then the nodes as they become ready, until all are
        settled. The lease keeper stops with the last node."""
        evaluators = 0
        async with TaskLoop() as task_loop, anyio.create_task_group() as group:
            keeper = LeaseKeeper(self._adapters.state, self._lease, group)
            evaluation = Evaluation(keeper, task_loop, known, hooks=hooks)

            def add_evaluators() -> None:
                """One more evaluator per ready node, up to the cap; each is handed its
                node, so no ready node waits while another evaluator could start."""
                nonlocal evaluators
                while evaluators < self._evaluators and (
                        task_id := nodes.next_ready()) is not None:
                    evaluators += 1
                    group.start_soon(evaluate_from, task_id)  # noqa: F821  # see del below

            async def evaluate_from(task_id: str | None) -> None:
                nonlocal evaluators
                while task_id is not None:
                    nodes.settle(task_id, await self._evaluate_safely(
                        graph, task_id, nodes.outcomes, policy, evaluation))
                    task_id = nodes.next_ready()
                    add_evaluators()  # noqa: F821  # see del below
                evaluators -= 1
                if nodes.settled:
                    keeper.stop()

            evaluators += 1
            group.start_soon(evaluate_from, first)
            add_evaluators()
        # The two closures refer to each other through their cells, a cycle holding the
        # graph, the outcomes and the task group: emptied, all of it is freed now rather
        # than by a full pass of the cyclic collector (a daemon sweeping 100,000 days
        # left 40,000 such objects a pass, and each pass blocked its loop 0.1-0.25 s).
        del add_evaluators, evaluate_from

    async def _evaluate_safely(
        self, graph: Graph, task_id: str, outcomes: dict[str, Outcome], policy: Policy,
        evaluation: Evaluation, *, asked: bool = False,
    ) -> Outcome:
        try:
            return await self._evaluate(graph, task_id, outcomes, policy, evaluation,
                                        asked=asked or task_id == graph.root.task_id)
        except CharonError as exc:
            # A store or source failed (or a task is misdeclared): this node cannot be
            # evaluated now. Its dependents are blocked; the rest of the graph goes on.
            level_for(self._log, exc)("cannot evaluate", task=task_id, error=str(exc))
            return Outcome(task_id, Status.ERROR, f"{type(exc).__name__}: {exc}",
                           outage=is_outage(exc))

    async def _evaluate(
        self, graph: Graph, task_id: str, outcomes: dict[str, Outcome], policy: Policy,
        evaluation: Evaluation, *, asked: bool,
    ) -> Outcome:
        task = graph.tasks[task_id]
        if (blocked := blocked_by(graph, task_id, outcomes)) is not None:
            return blocked  # rebuilt when kept gone: a dependency's rebuild may have failed
        if isinstance(task, ExternalTask):
            return await self._lookups.check_external(task, evaluation.externals)
        if isinstance(task, WrapperTask):
            return Outcome(task_id, Status.COMPLETE)

        async def lookup() -> Inputs | Outcome:
            return await self._lookups.inputs(task, graph.requires[task_id])

        below = [dep.task_id for dep in graph.requires[task_id].values()]
        known = self._lookups.known_inputs(graph.requires[task_id], evaluation)
        inputs = known if known is not None else await lookup()
        if isinstance(inputs, Outcome):
            # A kept-gone table or object cannot even be looked up: it is built again
            # first, since whether this task is complete depends on it.
            moved = await self._rebuilt_below(task, below, lookup, policy, evaluation)
            inputs = inputs if moved is None else moved
            if isinstance(inputs, Outcome):
                return inputs

        def defer() -> None:
            async def rebuild() -> Outcome:
                outcomes[task_id] = await self._evaluate_safely(
                    graph, task_id, outcomes, policy, evaluation, asked=True)
                return outcomes[task_id]

            evaluation.rebuilds[task_id] = Rebuild(rebuild)

        with log_context(task=task_id, partition=task.partition_label):
            return await self._bring_up_to_date(task, inputs, lookup, policy, evaluation,
                                                below=below, defer=None if asked else defer)

    async def _bring_up_to_date(
        self, task: Task, inputs: Inputs, lookup: Lookup, policy: Policy, evaluation: Evaluation,
        *, below: list[str], defer: Callable[[], None] | None,
    ) -> Outcome:
        """Run ``task`` unless it is complete; ``defer`` (None for the task asked for)
        leaves it as it is if only its outputs are gone, for its readers to rebuild."""
        current = fingerprint(inputs.values())
        earlier = await self._adapters.state.get(task.task_id, current)
        if earlier is None and not policy.rerun_late_inputs:
            succeeded = await self._adapters.state.list_runs(
                task_id=task.task_id, state=RunState.SUCCEEDED, limit=1
            )
            earlier = succeeded[0] if succeeded else None
        forced = policy.forces(task.task_id, earlier)
        if not forced and await self._lookups.complete(task, earlier):
            return complete(task.task_id, earlier)
        if defer is not None and not forced and gone_since_success(earlier):
            defer()
            return kept_gone(task, earlier)
        moved = await self._rebuilt_below(task, below, lookup, policy, evaluation)
        if moved is not None:
            return moved if isinstance(moved, Outcome) else await self._bring_up_to_date(
                task, moved, lookup, policy, evaluation, below=below, defer=None)
        return await self._launch(task, inputs, lookup, policy, evaluation, earlier=earlier)

    async def _rebuilt_below(
        self, task: Task, below: list[str], lookup: Lookup, policy: Policy,
        evaluation: Evaluation,
    ) -> Inputs | Outcome | None:
        """Its inputs looked up again once the kept-gone tasks it reads are rebuilt (they
        are new revisions then); None if it reads none; an outcome if one could not be
        rebuilt or looked up."""
        rebuilt = await rebuild_below(task, below, evaluation.rebuilds, dry_run=policy.dry_run)
        if isinstance(rebuilt, Outcome):
            return rebuilt
        return await lookup() if rebuilt else None

    async def _launch(
        self, task: Task, inputs: Inputs, lookup: Lookup, policy: Policy, evaluation: Evaluation,
        *, earlier: Run | None,
    ) -> Outcome:
        current = fingerprint(inputs.values())
        if policy.dry_run:
            consumed = ", ".join(f"{k}={i.revision_id}" for k, i in inputs.items())
            return Outcome(task.task_id, Status.WOULD_RUN,
                           f"fingerprint {current} consuming {consumed}", run=earlier)
        if not self._claiming:
            return not_claiming(task.task_id)
        waited = not self._place_free(policy)
        if waited and (hooks := evaluation.hooks) is not None:
            hooks.ready(task)
            hooks.no_place(task)
            full = policy.limiter is not None and not policy.limiter.available_tokens
            return Outcome(task.task_id, Status.WAITING,
                           AT_ITS_LIMIT if full else AT_THE_ENGINE_LIMIT, run=earlier)
        if waited and self._line is not None:
            await self._line.park(policy.limiter)
        async with self._place(policy) as place:
            for _ in range(MAX_ROUNDS):
                if waited:  # the inputs may have moved on while it waited for a place
                    found = await lookup()
                    if isinstance(found, Outcome):
                        return found
                    inputs = found
                waited = True
                outcome = await self._claim_and_execute(task, inputs, lookup, policy,
                                                        place=place, evaluation=evaluation)
                if outcome.status is not Status.SUPERSEDED:
                    return outcome
            return outcome

    async def _claim_and_execute(
        self, task: Task, inputs: Inputs, lookup: Lookup, policy: Policy, *, place: Place,
        evaluation: Evaluation,
    ) -> Outcome:
        """Claim the run of ``inputs`` and execute it; first finish the publication of a
        run of older inputs whose owner lost it, if the claim hands one over."""
        current = fingerprint(inputs.values())
        try:
            claimed_at, run = await self._claim(task, current, inputs, policy)
            if run.fingerprint != current:
                older = {i.key: i for i in run.inputs}
                outcome = await self._execute(task, run, older, claimed_at=claimed_at,
                                              lookup=None, policy=policy, evaluation=evaluation,
                                              work_done=_keep_the_place)
                if not outcome.status.ok:
                    return outcome
                claimed_at, run = await self._claim(task, current, inputs, policy)
            if run.state is RunState.SUCCEEDED:
                again = await self._run_again(task, current, inputs, policy, run)
                if isinstance(again, Outcome):
                    return again
                claimed_at, run = again
        except StaleInputs as exc:
            # Its lookup was overtaken (it waited, or was paused): the next round looks
            # the inputs up again.
            return Outcome(task.task_id, Status.SUPERSEDED, str(exc))
        except RunConflict as exc:
            return Outcome(task.task_id, Status.WAITING, str(exc), held_until=exc.held_until)
        except RetriesExhausted as exc:
            return Outcome(task.task_id, Status.FAILED, str(exc))
        return await self._execute(task, run, inputs, claimed_at=claimed_at, lookup=lookup,
                                   policy=policy, evaluation=evaluation,
                                   work_done=place.release)

    async def _run_again(
        self, task: Task, current: str, inputs: Inputs, policy: Policy, run: Run,
    ) -> tuple[float, Run] | Outcome:
        """Claim the next generation of a succeeded run whose outputs are gone, or that a
        user re-runs; its outcome instead if it is complete, or if another claimer ran
        it again meanwhile (the claim restarts only the generation seen here)."""
        if not policy.forces(task.task_id, run) and await self._lookups.complete(task, run):
            return complete(task.task_id, run)
        claimed_at, again = await self._claim(task, current, inputs, policy,
                                              rerun_generation=run.generation)
        return complete(task.task_id, again) if again.state is RunState.SUCCEEDED else (
            claimed_at, again)

    async def _execute(
        self, task: Task, run: Run, inputs: Inputs, *, claimed_at: float,
        lookup: Lookup | None, policy: Policy, evaluation: Evaluation,
        work_done: Callable[[], None],
    ) -> Outcome:
        async def current_inputs() -> Inputs | None:
            assert lookup is not None
            found = await lookup()
            return None if isinstance(found, Outcome) else found

        with log_context(run_id=run.id, attempt=run.attempt):
            if not self._claiming:
                # A shutdown began while it claimed: hand the run straight back.
                await self._adapters.state.release(run.id, run.attempt, "shutting down")
                return not_claiming(task.task_id)
            hooks = evaluation.hooks
            attempt = Attempt(task, run, inputs, claimed_at,
                              None if lookup is None else current_inputs, policy.retry,
                              work_done, None if hooks is None else hooks.launched)
            return await self._executor.execute(attempt, evaluation)

    def _place_free(self, policy: Policy) -> bool:
        return bool(self._limiter.available_tokens) and (
            policy.limiter is None or bool(policy.limiter.available_tokens)
        )

    def _place(self, policy: Policy) -> Place:
        """A place within the evaluation's own limit, if it has one, then the engine's:
        waiting for its workflow's limit holds no place another workflow could use."""
        limits = [self._limiter] if policy.limiter is None else [policy.limiter, self._limiter]
        return Place(limits, None if self._line is None else self._line.offer)

    async def _claim(
        self, task: Task, current: str, inputs: Inputs, policy: Policy, *,
        rerun_generation: int | None = None,
    ) -> tuple[float, Run]:
        claimed_at = time.monotonic()
        run = await self._adapters.state.claim(
            task_id=task.task_id, family=task.task_family, partition=task.partition_label,
            fingerprint=current, inputs=list(inputs.values()), owner=self._owner,
            lease=self._lease, rerun_generation=rerun_generation, retry=policy.retry,
        )
        return claimed_at, run


def _keep_the_place() -> None:
    """The place stays held: the run that claimed it still has its own work to do."""
