"""The in-memory warehouse, storage and PostgreSQL database."""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime

import anyio.lowlevel

from orchestrator.errors import (
    ObjectExists,
    ObjectNotFound,
    StorageError,
    TableNotFound,
    WarehouseError,
)
from orchestrator.model import TableInfo
from orchestrator.stores.database.base import PgColumn, check_load
from orchestrator.stores.storage.base import ObjectInfo
from orchestrator.stores.warehouse.base import (
    Column,
    check_column,
    check_location,
    check_move,
    check_read_limit,
    staging_spec,
)
from orchestrator.tablespec import TableSpec
from orchestrator.testing.clock import Clock, utc_now
from orchestrator.testing.crash import ProcessCrashed


@dataclasses.dataclass(frozen=True)
class _Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]
    modified: datetime


class InMemoryWarehouse:
    def __init__(self, location: str = "EU", now: Clock = utc_now) -> None:
        self._location = check_location(location)
        self._now = now
        self._tables: dict[TableSpec, _Table] = {}
        self._moves: dict[str, tuple[str, str]] = {}

    def _info(self, spec: TableSpec) -> TableInfo | None:
        table = self._tables.get(spec)
        return None if table is None else TableInfo(str(spec), len(table.rows), table.modified)

    def _found(self, spec: TableSpec) -> TableInfo:
        info = self._info(spec)
        if info is None:
            raise TableNotFound(f"no table {spec}")
        return info

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        await anyio.lowlevel.checkpoint()
        return self._info(spec)

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        TableSpec(project, dataset, "_")
        await anyio.lowlevel.checkpoint()
        specs = sorted(s for s in self._tables if (s.project, s.dataset) == (project, dataset))
        return [self._found(spec) for spec in specs]

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        for column in columns:
            check_column(column.name, column.type)
        data = tuple(tuple(row) for row in rows)
        if not columns:
            raise WarehouseError(f"table {spec} needs at least one column")
        if any(len(row) != len(columns) for row in data):
            raise WarehouseError(f"every row of {spec} must have {len(columns)} values")
        await anyio.lowlevel.checkpoint()
        self._tables[spec] = _Table(tuple(c.name for c in columns), data, self._now())
        return self._found(spec)

    async def read_rows(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, object]]:
        check_read_limit(limit)
        await anyio.lowlevel.checkpoint()
        table = self._tables.get(spec)
        if table is None:
            raise TableNotFound(f"no table {spec}")
        rows = table.rows if limit is None else table.rows[:limit]
        return [dict(zip(table.columns, row, strict=True)) for row in rows]

    async def staging_table(self, final: TableSpec) -> TableSpec:
        await anyio.lowlevel.checkpoint()
        return staging_spec(final, self._location)

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        check_move(staging, final, job_key)
        await anyio.lowlevel.checkpoint()
        done = self._moves.get(job_key)
        if done is not None:
            if done != (str(staging), str(final)):
                raise WarehouseError(f"job key {job_key!r} already moved {done[0]} to {done[1]}")
            return self._found(final)
        source = self._tables.get(staging)
        if source is None:
            raise TableNotFound(f"staging table {staging} does not exist")
        self._tables[final] = dataclasses.replace(source, modified=self._now())
        self._moves[job_key] = (str(staging), str(final))
        return self._found(final)

    async def drop_table(self, spec: TableSpec) -> None:
        await anyio.lowlevel.checkpoint()
        self._tables.pop(spec, None)

    def job_options(self) -> list[str]:
        return []

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryStorage:
    """Objects in a dict; ``root`` (a URI prefix) optionally confines them like LocalStorage."""

    def __init__(self, root: str | None = None, now: Clock = utc_now) -> None:
        self._root = root
        self._now = now
        self._objects: dict[str, tuple[bytes, datetime]] = {}

    def _check(self, uri: str) -> str:
        if not uri.startswith(("gs://", "/")) or "\0" in uri:
            raise StorageError(f"invalid storage URI {uri!r}")
        if self._root is not None and not uri.startswith(self._root):
            raise StorageError(f"{uri} lies outside the storage root {self._root}")
        return uri

    async def exists(self, uri: str) -> bool:
        await anyio.lowlevel.checkpoint()
        return self._check(uri) in self._objects

    async def list(self, prefix: str) -> list[ObjectInfo]:
        self._check(prefix)
        await anyio.lowlevel.checkpoint()
        return [
            ObjectInfo(uri, len(data), updated)
            for uri, (data, updated) in sorted(self._objects.items())
            if uri.startswith(prefix)
        ]

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        wanted = {self._check(uri) for uri in uris}
        await anyio.lowlevel.checkpoint()
        return {
            uri: ObjectInfo(uri, len(data), updated)
            for uri, (data, updated) in self._objects.items() if uri in wanted
        }

    async def read(self, uri: str) -> bytes:
        await anyio.lowlevel.checkpoint()
        try:
            return self._objects[self._check(uri)][0]
        except KeyError:
            raise ObjectNotFound(f"no object {uri}") from None

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        try:
            text = (await self.read(uri)).decode()
        except UnicodeDecodeError as exc:
            raise StorageError(f"object is not UTF-8 text: {exc}") from exc
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        for line in lines:
            yield line.removesuffix("\r")

    async def write(self, uri: str, data: bytes) -> None:
        if self._check(uri).endswith("/"):
            raise StorageError(f"invalid object URI {uri!r}: names a folder")
        await anyio.lowlevel.checkpoint()
        if uri in self._objects:
            raise ObjectExists(f"object {uri} already exists")
        self._objects[uri] = (bytes(data), self._now())

    async def delete_prefix(self, prefix: str) -> int:
        doomed = [info.uri for info in await self.list(prefix)]
        for uri in doomed:
            del self._objects[uri]
        return len(doomed)

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        """Object names only, as in GCS: no folder is ever left empty."""
        self._check(prefix)
        await anyio.lowlevel.checkpoint()
        return []

    async def aclose(self) -> None:
        """Nothing to release."""


class InMemoryDatabase:
    """Loads in dicts, with the PostgreSQL adapter's rules (``check_load``).

    ``fail_after_copy`` stands for a crash between COPY and commit: the load raises
    before anything becomes visible, as the transaction's rollback guarantees there.
    """

    def __init__(self, now: Clock = utc_now) -> None:
        self._now = now
        self.tables: dict[str, list[tuple[object, ...]]] = {}
        self.columns: dict[str, list[str]] = {}
        self.markers: dict[tuple[str, str], datetime] = {}
        self.fail_after_copy = False

    async def marker(self, table: str, key: str) -> datetime | None:
        await anyio.lowlevel.checkpoint()
        return self.markers.get((table, key))

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        check_load(table, columns, key)
        await anyio.lowlevel.checkpoint()
        if (table, key) in self.markers:
            return False
        copied = [tuple(row) for row in rows]
        if any(len(row) != len(columns) for row in copied):
            raise WarehouseError(f"every row of {table} must have {len(columns)} values")
        if self.fail_after_copy:
            raise ProcessCrashed(f"crashed after copying into {table}")
        self.columns.setdefault(table, [name for name, _ in columns])
        self.tables.setdefault(table, []).extend(copied)
        self.markers[(table, key)] = self._now()
        return True

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        await anyio.lowlevel.checkpoint()
        names = self.columns.get(table, [])
        return [dict(zip(names, row, strict=True)) for row in self.tables.get(table, [])[:limit]]

    async def aclose(self) -> None:
        """Nothing to release."""
