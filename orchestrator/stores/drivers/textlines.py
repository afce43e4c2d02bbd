"""Text lines from byte chunks, however the chunks split lines and UTF-8 characters."""

from __future__ import annotations

import codecs
from collections.abc import AsyncIterator

from orchestrator.errors import StorageError


async def lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[str]:
    """Each line without its ``\\n`` or ``\\r\\n``; a last line without one is kept."""
    async for batch in batches(chunks):
        for line in batch:
            yield line


async def batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[str]]:
    """The lines of :func:`lines`, a chunk's worth at a time: a reader that re-yields
    them pays one generator step per chunk here rather than one per line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    # The pieces of the line not ended yet, joined once it ends: a line of many chunks
    # (a file of one long line) was joined, and searched again, at each chunk, in time
    # growing with the square of its length.
    pending: list[str] = []
    async for chunk in chunks:
        text = _decode(decoder, chunk)
        if "\n" not in text:
            pending.append(text)
            continue
        *complete, rest = text.split("\n")
        complete[0] = "".join([*pending, complete[0]])
        pending = [rest]
        yield [line.removesuffix("\r") for line in complete]
    if last := "".join([*pending, _decode(decoder, b"", final=True)]):
        yield [last.removesuffix("\r")]


def _decode(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool = False) -> str:
    try:
        return decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise StorageError(f"object is not UTF-8 text: {exc}") from exc
