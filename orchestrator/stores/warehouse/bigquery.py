"""The production warehouse: BigQuery over its REST API, on one shared aiohttp session.

gcloud-aio-bigquery decides where the API lives (``BIGQUERY_EMULATOR_HOST`` selects
an emulator and drops authentication); requests go through :mod:`gcp_http` so that
every call retries 429/5xx/connection errors the same way. Validation rules are every
warehouse's (``staging_spec``, ``check_move``, ... in the port's base), so they agree.

Emulator gaps that shaped this module (bqemulator 1.4), each worked around only by a
path the real API equally allows:

* a load or copy with WRITE_TRUNCATE onto an existing table keeps the old schema,
  and leaves ``numRows``/``lastModifiedTime`` stale; so ``create_table`` replaces
  the table with one ``CREATE OR REPLACE TABLE ... AS SELECT`` query, and row counts
  come from ``tabledata.list``'s ``totalRows``;
* ``jobs.insert`` with a job id that exists runs the job again instead of answering
  409; so a move looks its deterministic job id up before inserting it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
from gcloud.aio.bigquery.bigquery import SCOPES, init_api_root

from orchestrator.errors import InvalidIdentifier, TableNotFound, WarehouseError, as_one_error
from orchestrator.model import TableInfo
from orchestrator.stores.drivers.gcp import GoogleApi, HttpStatusError, HttpUnavailable, Response
from orchestrator.stores.warehouse.base import (
    Column,
    check_column,
    check_location,
    check_move,
    check_read_limit,
    found_table,
    staging_spec,
)
from orchestrator.stores.warehouse.bigquery_json import (
    json_value,
    millis,
    move_job_id,
    reference_text,
    standard_sql_name,
    table_reference,
    typed_rows,
)
from orchestrator.tablespec import TableSpec

STAGING_EXPIRATION_MS = 24 * 60 * 60 * 1000
_JOB_WAIT_SECONDS = 600.0
_PAGE_ROWS = 10_000
LIST_CONCURRENCY = 8  # table reads in flight while listing a dataset


class BigQueryWarehouse:
    """Tables in BigQuery; staging in ``_incoming_<location>`` with a 1-day expiration."""

    def __init__(
        self, api: GoogleApi, api_root: str, *, project: str, location: str, owns_session: bool,
        list_concurrency: int = LIST_CONCURRENCY,
    ) -> None:
        self._api = api
        self._list_concurrency = list_concurrency
        self._root = api_root.rstrip("/")
        # Uploads live beside the API: .../bigquery/v2 → .../upload/bigquery/v2.
        self._upload_root = self._root.replace("/bigquery/v2", "/upload/bigquery/v2")
        self._project = project
        self._location = check_location(location)
        self._owns_session = owns_session

    @classmethod
    async def open(
        cls,
        *,
        project: str = "",
        location: str,
        session: aiohttp.ClientSession | None = None,
        api_root: str | None = None,
        list_concurrency: int = LIST_CONCURRENCY,
    ) -> BigQueryWarehouse:
        """``project`` runs (and pays for) the jobs; empty: each table's own project."""
        emulated, root = init_api_root(api_root)
        owns = session is None
        api = GoogleApi(session or aiohttp.ClientSession(), emulated=emulated, scopes=SCOPES)
        return cls(api, root, project=project, location=location, owns_session=owns,
                   list_concurrency=list_concurrency)

    # -- requests ---------------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> Response:
        try:
            return await self._api.call(method, f"{self._root}{path}", **kwargs)
        except HttpStatusError as exc:
            if exc.status == 404:
                raise TableNotFound(str(exc)) from exc
            raise WarehouseError(str(exc)) from exc
        except HttpUnavailable as exc:
            raise WarehouseError(f"BigQuery unreachable: {exc}") from exc

    async def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        return (await self._call(method, path, **kwargs)).json(WarehouseError)

    def _table_path(self, spec: TableSpec) -> str:
        return (
            f"/projects/{quote(spec.project, safe='')}/datasets/{spec.dataset}"
            f"/tables/{spec.table}"
        )

    def _jobs_path(self, project: str) -> str:
        return f"/projects/{quote(self._project or project, safe='')}/jobs"

    async def _get_table(self, spec: TableSpec) -> dict[str, Any] | None:
        try:
            return await self._json("GET", self._table_path(spec))
        except TableNotFound:
            return None

    async def _ensure_dataset(self, project: str, dataset: str, expiration_ms: int = 0) -> None:
        # Not cached: a dataset deleted behind a long-running daemon's back comes back.
        body: dict[str, Any] = {
            "datasetReference": {"projectId": project, "datasetId": dataset},
            "location": self._location,
        }
        if expiration_ms:
            body["defaultTableExpirationMs"] = str(expiration_ms)
        path = f"/projects/{quote(project, safe='')}/datasets"
        await self._call("POST", path, json_body=body, ok=frozenset({409}))

    # -- jobs -------------------------------------------------------------------

    async def _get_job(self, project: str, job_id: str) -> dict[str, Any] | None:
        path = f"{self._jobs_path(project)}/{job_id}"
        try:
            return await self._json("GET", path, params={"location": self._location})
        except TableNotFound:
            return None

    async def _wait(self, project: str, job: dict[str, Any]) -> dict[str, Any]:
        """Poll the job until DONE; raise its errorResult as a charon error."""
        job_id = job["jobReference"]["jobId"]
        delay = 0.05
        with anyio.fail_after(_JOB_WAIT_SECONDS):
            while job.get("status", {}).get("state") != "DONE":
                await anyio.sleep(delay)
                delay = min(delay * 2, 2.0)
                found = await self._get_job(project, job_id)
                if found is None:
                    raise WarehouseError(f"BigQuery job {job_id} vanished while running")
                job = found
        error = job["status"].get("errorResult")
        if error:
            kind = TableNotFound if error.get("reason") == "notFound" else WarehouseError
            raise kind(f"BigQuery job {job_id} failed: {error.get('message', error)}")
        return job

    async def _run_job(self, project: str, configuration: dict[str, Any]) -> dict[str, Any]:
        reference = {"jobId": f"charon_{secrets.token_hex(12)}", "location": self._location}
        body = {"jobReference": reference, "configuration": configuration}
        # A fresh job id makes a retried insert of the same job harmless (409).
        response = await self._call(
            "POST", self._jobs_path(project), json_body=body, ok=frozenset({409})
        )
        job = ({"jobReference": reference} if response.status == 409
               else response.json(WarehouseError))
        return await self._wait(project, job)

    async def _load(self, spec: TableSpec, columns: Sequence[Column], lines: bytes) -> None:
        configuration = {
            "load": {
                "destinationTable": table_reference(spec),
                "schema": {"fields": [{"name": c.name, "type": c.type.upper()} for c in columns]},
                "sourceFormat": "NEWLINE_DELIMITED_JSON",
                "writeDisposition": "WRITE_TRUNCATE",
                "createDisposition": "CREATE_IF_NEEDED",
            }
        }
        reference = {"jobId": f"charon_load_{secrets.token_hex(12)}", "location": self._location}
        metadata = json.dumps({"jobReference": reference, "configuration": configuration})
        boundary = secrets.token_hex(16)
        body = (
            f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}"
            f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode() + lines + f"\r\n--{boundary}--\r\n".encode()
        url = f"{self._upload_root}{self._jobs_path(spec.project)}"
        try:
            response = await self._api.call(
                "POST", url, params={"uploadType": "multipart"}, data=body,
                headers={"Content-Type": f"multipart/related; boundary={boundary}"},
            )
        except (HttpStatusError, HttpUnavailable) as exc:
            raise WarehouseError(f"cannot load rows into {spec}: {exc}") from exc
        await self._wait(spec.project, response.json(WarehouseError))

    # -- the Warehouse protocol -------------------------------------------------

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        table = await self._get_table(spec)
        if table is None:
            return None
        return TableInfo(str(spec), await self._row_count(spec), millis(table["lastModifiedTime"]))

    async def _row_count(self, spec: TableSpec) -> int:
        # tabledata.list's totalRows counts the data itself; the emulator leaves the
        # table resource's numRows stale after a copy onto an existing table.
        data = await self._json("GET", self._table_path(spec) + "/data",
                                params={"maxResults": 0})
        return int(data.get("totalRows", 0))

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        TableSpec(project, dataset, "_")  # validates both identifiers before any request
        specs = [s async for s in self._table_specs(project, dataset)]
        found: dict[TableSpec, TableInfo] = {}
        limiter = anyio.CapacityLimiter(self._list_concurrency)

        async def one(spec: TableSpec) -> None:
            async with limiter:
                try:
                    info = await self.table_info(spec)
                except TableNotFound:
                    info = None  # dropped between listing and reading: not there
            if info is not None:
                found[spec] = info

        with as_one_error():
            async with anyio.create_task_group() as group:
                for spec in specs:
                    group.start_soon(one, spec)
        return [found[spec] for spec in sorted(found)]

    async def _table_specs(self, project: str, dataset: str) -> Any:
        path = f"/projects/{quote(project, safe='')}/datasets/{dataset}/tables"
        params: dict[str, str | int] = {}
        while True:
            try:
                page = await self._json("GET", path, params=params)
            except TableNotFound:
                return  # no such dataset (or project): no tables
            for item in page.get("tables", []):
                try:
                    yield TableSpec(project, dataset, item["tableReference"]["tableId"])
                except InvalidIdentifier:
                    continue  # not a name charon could address; skip, as DuckDB does
            if not page.get("nextPageToken"):
                return
            params["pageToken"] = page["nextPageToken"]

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        if not columns:
            raise WarehouseError(f"table {spec} needs at least one column")
        for column in columns:
            check_column(column.name, column.type)
        names = [column.name for column in columns]
        lines = []
        for row in rows:
            if len(row) != len(names):
                raise WarehouseError(f"every row of {spec} must have {len(names)} values")
            values = {n: json_value(v) for n, v in zip(names, row, strict=True)}
            lines.append(json.dumps(values, default=str))
        data = "".join(line + "\n" for line in lines).encode()
        # Load into a fresh temporary table, then swap it in with one DDL statement:
        # atomic, and it replaces the schema (see the module docstring).
        temp = await self.staging_table(spec)
        try:
            await self._load(temp, columns, data)
            await self._ensure_dataset(spec.project, spec.dataset)
            query = (
                f"CREATE OR REPLACE TABLE {standard_sql_name(spec)}"  # noqa: S608  (validated specs)
                f" AS SELECT * FROM {standard_sql_name(temp)}"
            )
            await self._run_job(spec.project, {"query": {"query": query, "useLegacySql": False}})
        finally:
            with anyio.CancelScope(shield=True):
                await self.drop_table(temp)
        return found_table(await self.table_info(spec), spec)

    async def read_rows(self, spec: TableSpec, limit: int | None = None) -> list[dict[str, object]]:
        check_read_limit(limit)
        table = await self._get_table(spec)
        if table is None:
            raise TableNotFound(f"no table {spec}")
        fields = table.get("schema", {}).get("fields", [])
        rows: list[dict[str, object]] = []
        params: dict[str, str | int] = {}
        while limit is None or len(rows) < limit:
            wanted = _PAGE_ROWS if limit is None else min(_PAGE_ROWS, limit - len(rows))
            params["maxResults"] = wanted
            page = await self._json("GET", self._table_path(spec) + "/data", params=params)
            rows.extend(typed_rows(page.get("rows", []), fields))
            if not page.get("pageToken"):
                break
            params["pageToken"] = page["pageToken"]
        return rows if limit is None else rows[:limit]

    async def staging_table(self, final: TableSpec) -> TableSpec:
        staging = staging_spec(final, self._location)
        await self._ensure_dataset(staging.project, staging.dataset, STAGING_EXPIRATION_MS)
        return staging

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        check_move(staging, final, job_key)
        job_id = move_job_id(job_key)
        job = await self._get_job(final.project, job_id)
        if job is None:
            if await self._get_table(staging) is None:
                raise TableNotFound(f"staging table {staging} does not exist")
            await self._ensure_dataset(final.project, final.dataset)
            job = await self._insert_move(staging, final, job_id)
        _check_same_move(job, staging, final, job_key)
        await self._wait(final.project, job)
        await self._clear_expiration(final)
        return found_table(await self.table_info(final), final)

    async def _insert_move(self, staging: TableSpec, final: TableSpec, job_id: str) -> Any:
        body = {
            "jobReference": {"jobId": job_id, "location": self._location},
            "configuration": {
                "copy": {
                    "sourceTable": table_reference(staging),
                    "destinationTable": table_reference(final),
                    "writeDisposition": "WRITE_TRUNCATE",
                    "createDisposition": "CREATE_IF_NEEDED",
                }
            },
        }
        path = self._jobs_path(final.project)
        response = await self._call("POST", path, json_body=body, ok=frozenset({409}))
        if response.status != 409:
            return response.json(WarehouseError)
        # 409: this move was inserted before (a retry, or our own lost response):
        # wait for that job rather than copying twice.
        found = await self._get_job(final.project, job_id)
        if found is None:
            raise WarehouseError(f"BigQuery says job {job_id} exists but cannot find it")
        return found

    async def _clear_expiration(self, final: TableSpec) -> None:
        """The final table must outlive the staging dataset's default expiration."""
        table = await self._get_table(final)
        if table is not None and table.get("expirationTime"):
            await self._call("PATCH", self._table_path(final), json_body={"expirationTime": None})

    async def drop_table(self, spec: TableSpec) -> None:
        try:
            await self._call("DELETE", self._table_path(spec))
        except TableNotFound:
            return

    def job_options(self) -> list[str]:
        return []  # the job reaches BigQuery itself, with its own credentials

    async def aclose(self) -> None:
        if self._owns_session:
            await self._api.session.close()


def _check_same_move(job: Mapping[str, Any], staging: TableSpec, final: TableSpec,
                     key: str) -> None:
    copy = job.get("configuration", {}).get("copy", {})
    source, destination = copy.get("sourceTable"), copy.get("destinationTable")
    if (source, destination) != (table_reference(staging), table_reference(final)):
        raise WarehouseError(
            f"job key {key!r} already moved {reference_text(source)} to"
            f" {reference_text(destination)},"
            f" not {staging} to {final}"
        )
