"""Text lines from byte chunks, whatever the chunks split: a CRLF, a UTF-8 character, a
line spanning many chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from orchestrator.errors import StorageError
from orchestrator.stores.drivers import textlines


async def lines_of(chunks: Sequence[bytes]) -> list[str]:
    async def given() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return [line async for line in textlines.lines(given())]


async def test_a_crlf_and_a_character_split_between_chunks_are_put_together() -> None:
    assert await lines_of([b"a\r", b"\nb", b"\xc3", b"\xa9\r", b"\n", b"", b"c"]) == [
        "a", "b\u00e9", "c"]


async def test_a_line_of_many_chunks_comes_whole_between_its_neighbours() -> None:
    chunks = [b"first\nsec", *[b"x" * 1000] * 50, b"ond\r\nthird\n\nlast"]
    assert await lines_of(chunks) == ["first", "sec" + "x" * 50_000 + "ond", "third", "", "last"]


async def test_a_character_cut_short_at_the_end_is_an_error() -> None:
    with pytest.raises(StorageError, match="not UTF-8"):
        await lines_of([b"ok\n\xc3"])
