"""The daemon's janitor: staging no live run owns is removed on a timer, and an ownerless
run of a watched task is taken over by evaluating its roots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from orchestrator.core.janitor import build_janitor
from orchestrator.errors import CharonError
from orchestrator.log import get_logger
from orchestrator.model import Run

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon


async def sweep_staging(daemon: Daemon) -> None:
    """Remove staging no live run owns, every janitor.interval_seconds."""
    janitor = build_janitor(daemon.settings, daemon.adapters)
    health = daemon.metrics.sources["janitor"]
    while True:
        await anyio.sleep(daemon.settings.janitor.interval_seconds)
        try:
            swept = await janitor.sweep(
                {daemon.adapters.output_prefix, *daemon.watch.output_prefixes},
                daemon.watch.output_projects, adopt=lambda run: take_over(daemon, run),
            )
        except CharonError as exc:
            health.failed(str(exc))
            get_logger("charon.daemon").warning(
                "janitor failed; trying again next time", error=str(exc))
        else:
            health.ok()
            daemon.metrics.staging_removed.inc(swept.removed)


def take_over(daemon: Daemon, run: Run) -> bool:
    """An ownerless run of a task this daemon watches: evaluate its roots, which takes it
    over (when no trigger came to do so, e.g. its evaluations were cut short)."""
    roots = daemon.watch.roots_of_task(run.task_id)
    for root in roots:
        daemon.schedule(root, None)
    # While some root's graph is not indexed yet the run may be that root's: its first
    # evaluation, queued already, takes it over, so it is not ended meanwhile.
    return bool(roots) or daemon.watch.indexing
