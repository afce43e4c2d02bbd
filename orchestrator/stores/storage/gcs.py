"""The production object store: Google Cloud Storage over its JSON API.

gcloud-aio-storage decides where the API lives (``STORAGE_EMULATOR_HOST`` selects an
emulator and drops authentication); requests go through :mod:`gcp_http` on one
shared aiohttp session, so every call retries 429/5xx/connection errors alike.

Writes are create-only through the ``ifGenerationMatch=0`` precondition, which GCS
checks atomically (412 → ObjectExists); a single-request upload makes the object
appear whole or not at all. Reads of lines fetch the object in byte ranges, never
whole. Listing is by plain prefix, as the Storage contract says.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from gcloud.aio.storage.storage import SCOPES, init_api_root

from orchestrator.errors import ObjectExists, ObjectNotFound, StorageError
from orchestrator.stores.drivers import textlines
from orchestrator.stores.drivers.gcp import GoogleApi, HttpStatusError, HttpUnavailable, Response
from orchestrator.stores.storage.base import ObjectInfo, by_folder, picked

SCHEME = "gs://"
RANGE_BYTES = 1024 * 1024
_LIST_FIELDS = "items(name,size,updated),nextPageToken"


def split_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/name`` → (bucket, name); local paths get a pointer to the setting."""
    if uri.startswith("/"):
        raise StorageError(
            f"{uri} is a local path but storage is GCS; set storage.kind = \"local\" to use it"
        )
    if not uri.startswith(SCHEME) or "\0" in uri:
        raise StorageError(f"invalid storage URI {uri!r}: expected gs://bucket/path")
    bucket, _, name = uri[len(SCHEME):].partition("/")
    if not bucket or "/" in bucket:
        raise StorageError(f"invalid storage URI {uri!r}: no bucket")
    return bucket, name


def _object_name(uri: str) -> tuple[str, str]:
    bucket, name = split_uri(uri)
    if not name or name.endswith("/"):
        raise StorageError(f"invalid object URI {uri!r}: names a folder")
    return bucket, name


def _updated(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


class GcsStorage:
    """Objects in GCS buckets; build it with :meth:`open`."""

    def __init__(self, api: GoogleApi, api_root: str, *, owns_session: bool) -> None:
        self._api = api
        self._read_root = f"{api_root.rstrip('/')}/storage/v1/b"
        self._write_root = f"{api_root.rstrip('/')}/upload/storage/v1/b"
        self._owns_session = owns_session

    @classmethod
    async def open(
        cls, *, session: aiohttp.ClientSession | None = None, api_root: str | None = None
    ) -> GcsStorage:
        emulated, root = init_api_root(api_root)
        api = GoogleApi(session or aiohttp.ClientSession(), emulated=emulated, scopes=SCOPES)
        return cls(api, root, owns_session=session is None)

    async def _call(self, method: str, url: str, uri: str, **kwargs: Any) -> Response:
        try:
            return await self._api.call(method, url, **kwargs)
        except HttpStatusError as exc:
            if exc.status == 404:
                raise ObjectNotFound(f"no object {uri}") from exc
            if exc.status == 412:
                raise ObjectExists(f"object {uri} already exists") from exc
            raise StorageError(f"{uri}: {exc}") from exc
        except HttpUnavailable as exc:
            raise StorageError(f"GCS unreachable: {exc}") from exc

    def _object_url(self, bucket: str, name: str) -> str:
        return f"{self._read_root}/{bucket}/o/{quote(name, safe='')}"

    async def _metadata(self, uri: str) -> dict[str, Any]:
        bucket, name = _object_name(uri)
        answer = await self._call("GET", self._object_url(bucket, name), uri)
        return answer.json(StorageError)

    async def exists(self, uri: str) -> bool:
        try:
            await self._metadata(uri)
        except ObjectNotFound:
            return False
        return True

    async def list(self, prefix: str) -> list[ObjectInfo]:
        bucket, name = split_uri(prefix)
        url = f"{self._read_root}/{bucket}/o"
        params: dict[str, str | int] = {"prefix": name, "fields": _LIST_FIELDS}
        found: list[ObjectInfo] = []
        while True:
            try:
                page = (await self._call("GET", url, prefix, params=params)).json(StorageError)
            except ObjectNotFound:
                return []  # no such bucket: nothing below the prefix
            for item in page.get("items", []):
                # Plain prefix semantics; filtered again in case a server is loose about it.
                if item["name"].startswith(name) and not item["name"].endswith("/"):
                    uri = f"{SCHEME}{bucket}/{item['name']}"
                    found.append(ObjectInfo(uri, int(item["size"]), _updated(item["updated"])))
            if not page.get("nextPageToken"):
                break
            params["pageToken"] = page["nextPageToken"]
        return sorted(found, key=lambda info: info.uri)

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        found: dict[str, ObjectInfo] = {}
        for folder, wanted in by_folder(uris).items():
            # A lone object is listed by its own name: its folder may hold thousands.
            prefix = next(iter(wanted)) if len(wanted) == 1 else folder
            found.update(picked(await self.list(prefix), wanted))
        return found

    async def read(self, uri: str) -> bytes:
        bucket, name = _object_name(uri)
        response = await self._call(
            "GET", self._object_url(bucket, name), uri, params={"alt": "media"}
        )
        return response.body

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        """Lines without their line ending, fetched ``RANGE_BYTES`` at a time."""
        metadata = await self._metadata(uri)
        size = int(metadata.get("size", 0))
        # Pinning the generation keeps every range from the same version of the object.
        generation = metadata.get("generation")

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, size, RANGE_BYTES):
                last = min(start + RANGE_BYTES, size) - 1
                yield await self._range(uri, start, last, generation)

        async for line in textlines.lines(chunks()):
            yield line

    async def _range(self, uri: str, first: int, last: int, generation: object) -> bytes:
        bucket, name = _object_name(uri)
        params: dict[str, str | int] = {"alt": "media"}
        if generation:
            params["generation"] = str(generation)
        response = await self._call(
            "GET", self._object_url(bucket, name), uri, params=params,
            headers={"Range": f"bytes={first}-{last}"},
        )
        return response.body

    async def write(self, uri: str, data: bytes) -> None:
        # One multipart request (metadata + bytes): the object appears whole or not
        # at all. (gcp-storage-emulator also fails uploadType=media for empty bodies.)
        bucket, name = _object_name(uri)
        boundary = secrets.token_hex(16)
        body = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
            f"{json.dumps({'name': name})}\r\n--{boundary}\r\n"
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode() + data + f"\r\n--{boundary}--\r\n".encode()
        await self._call(
            "POST", f"{self._write_root}/{bucket}/o", uri, data=body,
            params={"uploadType": "multipart", "ifGenerationMatch": 0},
            headers={"Content-Type": f"multipart/related; boundary={boundary}"},
        )

    async def delete_prefix(self, prefix: str) -> int:
        objects = await self.list(prefix)
        deleted = 0
        for info in objects:
            bucket, name = _object_name(info.uri)
            try:
                await self._call("DELETE", self._object_url(bucket, name), info.uri)
            except ObjectNotFound:
                continue  # deleted meanwhile by someone else
            deleted += 1
        return deleted

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        """GCS has no folders, only object names: nothing is ever left empty."""
        return []

    async def aclose(self) -> None:
        if self._owns_session:
            await self._api.session.close()


