"""Checkpoints in the CPU-bound loops of the shipped workflows' sample data, which run
in worker threads: where such a thread can be cancelled (a Ctrl-C waited for the whole
of a big day before), and say how far it got."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import anyio.from_thread

CHECKPOINT_EVERY = 20_000
"""Records made or encoded between two calls of a :data:`Checkpoint` (about a tenth
of a second of work)."""
Checkpoint = Callable[[int], None]
"""Called with the number of records made (or encoded) so far, every CHECKPOINT_EVERY."""
_Record = TypeVar("_Record")


def checked(records: Iterable[_Record], checkpoint: Checkpoint | None) -> Iterator[_Record]:
    """``records``, ``checkpoint`` called every CHECKPOINT_EVERY of them."""
    if checkpoint is None:
        yield from records
        return
    for count, record in enumerate(records):
        if count and count % CHECKPOINT_EVERY == 0:
            checkpoint(count)
        yield record


def cancellable(_: int) -> None:
    """A checkpoint for a worker thread of anyio's: the thread stops, raising, once its
    caller is cancelled."""
    anyio.from_thread.check_cancelled()
