"""What every Storage must do; subclass and provide ``storage`` and ``base``.

``base`` is a URI prefix ending in ``/`` below which the test may write freely.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import anyio.lowlevel
import pytest

from orchestrator.errors import ObjectExists, ObjectNotFound
from orchestrator.stores.storage.base import Storage


class StorageContract:
    @pytest.fixture
    def base(self) -> str:
        raise NotImplementedError("subclasses provide a writable URI prefix ending in /")

    @pytest.fixture
    async def storage(self) -> AsyncIterator[Storage]:
        raise NotImplementedError("subclasses provide the storage under test")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    async def test_write_read_exists(self, storage: Storage, base: str) -> None:
        uri = base + "plays/2018-10-31/part-0000.avro"
        assert not await storage.exists(uri)
        await storage.write(uri, b"\x00\x01payload")
        assert await storage.exists(uri)
        assert await storage.read(uri) == b"\x00\x01payload"

    async def test_write_is_create_only(self, storage: Storage, base: str) -> None:
        uri = base + "once.txt"
        await storage.write(uri, b"first")
        with pytest.raises(ObjectExists):
            await storage.write(uri, b"second")
        assert await storage.read(uri) == b"first"
        assert [info.uri for info in await storage.list(base)] == [uri]

    async def test_missing_object(self, storage: Storage, base: str) -> None:
        with pytest.raises(ObjectNotFound):
            await storage.read(base + "missing")
        with pytest.raises(ObjectNotFound):
            async for _line in storage.read_lines(base + "missing"):
                pass
        assert not await storage.exists(base + "missing")

    async def test_list_is_recursive_sorted_and_by_prefix(
        self, storage: Storage, base: str
    ) -> None:
        names = ["b/2.txt", "a/x/1.txt", "a/0.txt", "ab.txt", "c.txt"]
        for name in names:
            await storage.write(base + name, name.encode())
        everything = await storage.list(base)
        assert [info.uri for info in everything] == sorted(base + n for n in names)
        assert [info.size for info in everything] == [
            len(n) for n in sorted(names)
        ]
        assert all(info.updated.tzinfo is not None for info in everything)
        below_a = [info.uri for info in await storage.list(base + "a/")]
        assert below_a == [base + "a/0.txt", base + "a/x/1.txt"]
        # A prefix is a string prefix, as in GCS: "a" matches "ab.txt" as well.
        starting_a = [info.uri for info in await storage.list(base + "a")]
        assert starting_a == [base + "a/0.txt", base + "a/x/1.txt", base + "ab.txt"]
        assert await storage.list(base + "zzz/") == []

    async def test_objects_answers_as_list_one_by_one(self, storage: Storage, base: str) -> None:
        names = [f"data/streams_{n:03d}.tsv" for n in range(0, 40, 2)]
        for name in [*names, "data/sub/deeper.tsv", "other/x.tsv", "data/streams_0000.tsv"]:
            await storage.write(base + name, name.encode())
        asked = [base + f"data/streams_{n:03d}.tsv" for n in range(40)]
        asked += [base + "other/x.tsv", base + "data/sub", base + "data/", base + "none/y",
                  base + "data/streams_000.tsv"]  # a repeat
        one_by_one = {
            uri: found[0] for uri in asked
            if (found := [i for i in await storage.list(uri) if i.uri == uri])
        }
        assert await storage.objects(asked) == one_by_one
        assert sorted(one_by_one) == sorted([base + n for n in names] + [base + "other/x.tsv"])
        assert await storage.objects([]) == {}

    async def test_read_lines(self, storage: Storage, base: str) -> None:
        uri = base + "lines.txt"
        await storage.write(uri, "one\ntwo\r\n\nthree ünïcode 日本\nlast".encode())
        lines = [line async for line in storage.read_lines(uri)]
        assert lines == ["one", "two", "", "three ünïcode 日本", "last"]

    async def test_read_lines_streams_large_objects(self, storage: Storage, base: str) -> None:
        # Multi-byte characters straddle any chunk boundary somewhere in here.
        expected = [f"{n:06d} naïve 日本語 ✓" for n in range(20_000)]
        uri = base + "big.txt"
        await storage.write(uri, ("\n".join(expected) + "\n").encode())
        assert [line async for line in storage.read_lines(uri)] == expected

    async def test_read_lines_keeps_a_line_of_many_chunks_whole(
        self, storage: Storage, base: str,
    ) -> None:
        long = "é" * 1_000_000  # 2 MB of UTF-8, a character split at chunk boundaries
        uri = base + "long.txt"
        await storage.write(uri, f"first\r\n{long}\r\nlast".encode())
        assert [line async for line in storage.read_lines(uri)] == ["first", long, "last"]

    async def test_read_lines_empty_object(self, storage: Storage, base: str) -> None:
        await storage.write(base + "empty", b"")
        assert [line async for line in storage.read_lines(base + "empty")] == []

    async def test_delete_prefix(self, storage: Storage, base: str) -> None:
        for name in ["run/1/a", "run/1/b", "run/2/c", "keep/d"]:
            await storage.write(base + name, b"x")
        assert await storage.delete_prefix(base + "run/1/") == 2
        assert [i.uri for i in await storage.list(base)] == [base + "keep/d", base + "run/2/c"]
        assert await storage.delete_prefix(base + "run/") == 1
        assert await storage.delete_prefix(base + "run/") == 0
        assert [i.uri for i in await storage.list(base)] == [base + "keep/d"]
        # A deleted name can be written again.
        await storage.write(base + "run/1/a", b"again")
        assert await storage.read(base + "run/1/a") == b"again"

    async def test_a_deleted_folder_is_not_left_empty(self, storage: Storage, base: str) -> None:
        await storage.write(base + "staging/x/part", b"x")
        await storage.write(base + "other/y", b"y")
        await storage.delete_prefix(base + "staging/x/")
        # Its parent may be (on a file system): the janitor removes such once they are old.
        empty = [info.uri.rstrip("/") for info in await storage.empty_folders(base)]
        assert base + "staging/x" not in empty
        assert base + "other" not in empty

    async def test_write_is_atomic_for_readers(self, storage: Storage, base: str) -> None:
        uri = base + "large.bin"
        data = bytes(range(256)) * (16 * 1024)  # 4 MiB
        seen: list[int] = []
        done = anyio.Event()

        async def watch() -> None:
            while not done.is_set():
                if await storage.exists(uri):
                    seen.append(len(await storage.read(uri)))
                listed = await storage.list(base)
                assert all(info.size == len(data) for info in listed)
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as group:
            group.start_soon(watch)
            await storage.write(uri, data)
            done.set()
        assert all(size == len(data) for size in seen)
        assert await storage.read(uri) == data
