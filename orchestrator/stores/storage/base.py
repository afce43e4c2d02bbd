"""The storage port: objects addressed by URI."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
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

