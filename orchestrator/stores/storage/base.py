"""The storage port: objects addressed by URI."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class ObjectInfo:
    uri: str
    size: int
    updated: datetime


class Storage(Protocol):
    """Objects addressed by URI: ``gs://bucket/path`` or an absolute local path."""

    async def exists(self, uri: str) -> bool: ...

    async def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object below the prefix (recursively), sorted by URI."""

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        """Those of ``uris`` that name an object, by URI: what ``list(uri)`` finds of each
        one by one, in a call per folder (see :func:`by_folder`) rather than per URI."""

    async def read(self, uri: str) -> bytes:
        """Raise ObjectNotFound when the object is absent."""

    def read_lines(self, uri: str) -> AsyncIterator[str]:
        """Stream a text object line by line without loading it whole."""

    async def write(self, uri: str, data: bytes) -> None:
        """Create-only, atomic: raise ObjectExists if the object is already there."""

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object below the prefix; return how many were deleted."""

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Folders below the prefix that hold no object, with when they last changed: a
        writer that died before its first object leaves one on a file system. Object
        stores have no folders, so none there."""

    async def aclose(self) -> None: ...



def folder_of(uri: str) -> str:
    """The folder an object lies in, ending in ``/``: what one listing covers."""
    return uri.rsplit("/", 1)[0] + "/"


def by_folder(uris: Iterable[str]) -> dict[str, set[str]]:
    """URIs grouped by folder: a batched lookup lists each folder once."""
    folders: dict[str, set[str]] = {}
    for uri in uris:
        folders.setdefault(folder_of(uri), set()).add(uri)
    return folders


def picked(listed: Iterable[ObjectInfo], wanted: Collection[str]) -> dict[str, ObjectInfo]:
    """The listed objects that were asked for, by URI; a URI spelled otherwise than the
    listing spells it (``/a/../b``) names none, as ``list(uri)`` finds none equal to it."""
    return {info.uri: info for info in listed if info.uri in wanted}
