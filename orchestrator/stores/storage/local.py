"""Object storage in a local folder: URIs are absolute paths below the root.

Writes are create-only and atomic like GCS objects: the bytes go to a hidden temp
file first, and ``os.link`` publishes it under the final name only if that name is
free, so a reader sees either no object or the whole object.
"""

from __future__ import annotations

import builtins
import os
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import ObjectExists, ObjectNotFound, StorageError
from orchestrator.stores.drivers import textlines
from orchestrator.stores.storage.base import ObjectInfo, by_folder, picked

T = TypeVar("T")

TEMP_MARKER = ".charon-tmp-"
CHUNK_BYTES = 64 * 1024


def is_temp(name: str) -> bool:
    return name.startswith(".") and TEMP_MARKER in name


def _write_new(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}{TEMP_MARKER}{secrets.token_hex(8)}")
    try:
        with temp.open("xb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)  # fails if the name is taken: create-only for free
        except FileExistsError:
            raise ObjectExists(f"object {path} already exists") from None
        _fsync_dir(path.parent)
    finally:
        temp.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    """Make the new directory entry durable, not just the bytes."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _walk(folder: Path, prefix: str) -> list[ObjectInfo]:
    found = []
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if is_temp(name) or not path.startswith(prefix):
                continue
            stat = os.stat(path)
            updated = datetime.fromtimestamp(stat.st_mtime, UTC)
            found.append(ObjectInfo(path, stat.st_size, updated))
    return sorted(found, key=lambda info: info.uri)


def _files(folder: Path) -> list[ObjectInfo]:
    """The objects directly in ``folder``: one listing, not a stat per object."""
    found = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    for entry in entries:
        if is_temp(entry.name) or not entry.is_file():
            continue
        stat = entry.stat()
        updated = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(ObjectInfo(os.path.join(folder, entry.name), stat.st_size, updated))
    return found


def _empty_folders(folder: Path, prefix: str) -> list[ObjectInfo]:
    """Folders below ``folder`` (itself excluded) with no file in them or below them."""
    holding: set[str] = set()
    empty: list[ObjectInfo] = []
    for dirpath, dirs, files in os.walk(folder, topdown=False):
        if files or any(os.path.join(dirpath, d) in holding for d in dirs):
            holding.add(dirpath)
        elif dirpath != str(folder) and dirpath.startswith(prefix):
            updated = datetime.fromtimestamp(os.stat(dirpath).st_mtime, UTC)
            empty.append(ObjectInfo(dirpath, 0, updated))
    return sorted(empty, key=lambda info: info.uri)


def _remove_temp_files(folder: Path, prefix: str) -> None:
    """Remove the half-written temp files of writers that died below ``folder``: they
    are never objects, and would keep their folders from being pruned."""
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            if is_temp(name) and path.startswith(prefix):
                Path(path).unlink(missing_ok=True)


def _prune_empty(folder: Path, root: Path) -> None:
    """Remove folders left empty below ``folder``, never the root itself."""
    for dirpath, _dirs, _files in os.walk(folder, topdown=False):
        path = Path(dirpath)
        if path != root and path.is_relative_to(root):
            try:
                path.rmdir()
            except OSError:
                continue  # not empty: something else lives there


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ObjectNotFound(f"no object {path}") from None


def _next_chunk(handle: BinaryIO) -> bytes:
    """The next chunk; a short one is the last (a buffered read stops short only at the
    end of the file), and its trip closes the file: no trip more to find the end."""
    chunk = handle.read(CHUNK_BYTES)
    if len(chunk) < CHUNK_BYTES:
        handle.close()
    return chunk


class LocalStorage:
    """Storage in the folder ``root``; build it with :meth:`open`."""

    def __init__(self, root: Path) -> None:
        # Callers may spell paths through a symlinked root or its real location;
        # objects keep the caller's spelling, the real one guards against escapes.
        self._root = Path(os.path.abspath(root))
        self._real_root = Path(os.path.realpath(root))

    @classmethod
    async def open(cls, root: Path) -> LocalStorage:
        """Create the root folder if needed."""
        await anyio.Path(root).mkdir(parents=True, exist_ok=True)
        return cls(root)

    @property
    def root(self) -> Path:
        return self._root

    def _is_root(self, path: Path) -> bool:
        return path in (self._root, self._real_root)

    def _checked(self, uri: str) -> Path:
        """The local path of ``uri``, refused unless it lies below the root. In a worker
        thread (resolving reads the disk), with the work on the path in the same trip:
        the check in a trip of its own was three of the 17 trips of a leaf of a one-shot run."""
        if uri.startswith("gs://"):
            raise StorageError(
                f"{uri} is a GCS URI but storage is local; set storage.kind = \"gcs\" to use it"
            )
        if not uri.startswith("/") or "\0" in uri:
            raise StorageError(f"invalid storage URI {uri!r}: expected an absolute local path")
        path = _lexical(uri)
        below = path.is_relative_to(self._root) or path.is_relative_to(self._real_root)
        # Resolving catches symlinks inside the root that point out of it.
        if not below or not path.resolve().is_relative_to(self._real_root):
            raise StorageError(f"{uri} lies outside the storage root {self._root}")
        return path

    def _open_for_lines(self, uri: str) -> tuple[BinaryIO, bytes]:
        """The file opened and its first chunk read, in one trip: a file of one chunk
        (a day's input, mostly) costs no trip more."""
        path = self._checked(uri)
        try:
            handle = path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(f"no object {path}") from None
        try:
            return handle, _next_chunk(handle)
        except BaseException:
            handle.close()
            raise

    def _prefix(self, prefix: str) -> tuple[Path, str]:
        """The folder to walk for ``prefix`` and the string every object path starts with.

        Prefixes are plain string prefixes, as in GCS: ``/root/a/part-`` matches
        ``/root/a/part-0001``; a trailing ``/`` limits it to one folder.
        """
        path = self._checked(prefix)
        if prefix.endswith("/") or self._is_root(path):
            return path, str(path) + os.sep
        return path.parent, str(path)

    async def _thread(self, function: Callable[..., T], *args: object) -> T:
        try:
            return await anyio.to_thread.run_sync(function, *args)
        except OSError as exc:
            raise StorageError(f"storage error: {exc}") from exc

    async def exists(self, uri: str) -> bool:
        return await self._thread(lambda: self._checked(uri).is_file())

    async def list(self, prefix: str) -> list[ObjectInfo]:
        return await self._thread(lambda: _walk(*self._prefix(prefix)))

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        found: dict[str, ObjectInfo] = {}
        for folder, wanted in by_folder(uris).items():
            found.update(picked(await self._thread(lambda f=folder: _files(self._checked(f))),
                                wanted))
        return found

    async def read(self, uri: str) -> bytes:
        return await self._thread(lambda: _read(self._checked(uri)))

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        """Lines without their line ending, read chunk by chunk in worker threads."""
        handle, first = await self._thread(self._open_for_lines, uri)

        async def chunks() -> AsyncIterator[bytes]:
            yield first
            while not handle.closed:
                yield await self._thread(_next_chunk, handle)

        try:
            async for batch in textlines.batches(chunks()):
                for line in batch:
                    yield line
        finally:
            if not handle.closed:
                # Shielded: a cancelled reader must still release its file handle.
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(handle.close)

    async def write(self, uri: str, data: bytes) -> None:
        await self._thread(self._write, uri, data)

    def _write(self, uri: str, data: bytes) -> None:
        path = self._checked(uri)
        if uri.endswith("/") or self._is_root(path):
            raise StorageError(f"invalid object URI {uri!r}: names a folder")
        _write_new(path, data)

    async def delete_prefix(self, prefix: str) -> int:
        folder, start = await self._thread(self._prefix, prefix)
        objects = await self._thread(_walk, folder, start)
        for info in objects:
            await self._thread(Path(info.uri).unlink, True)
        await self._thread(_remove_temp_files, folder, start)
        root = self._root if folder.is_relative_to(self._root) else self._real_root
        await self._thread(_prune_empty, folder, root)
        return len(objects)

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        return await self._thread(lambda: _empty_folders(*self._prefix(prefix)))

    async def aclose(self) -> None:
        """Nothing to release: every call opens and closes its own files."""


def _lexical(uri: str) -> Path:
    """Normalised without touching the disk: ``/a/../b`` is ``/b``."""
    return Path(os.path.normpath(uri))


