"""``lineage.kind = "http"``: each event POSTed to an OpenLineage endpoint (Marquez's
``/api/v1/lineage``, DataHub's ``/openapi/openlineage/api/v1/lineage``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp

from orchestrator.errors import AdapterError
from orchestrator.stores.lineage.base import Event, Send


@asynccontextmanager
async def poster(url: str, *, api_key: str, seconds: float) -> AsyncIterator[Send]:
    """A sender over one session, closed on exit, each POST within ``seconds``;
    ``api_key`` goes as a bearer token."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    async with aiohttp.ClientSession(headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=seconds)) as session:

        async def send(event: Event) -> None:
            try:
                async with session.post(url, json=event) as response:
                    if response.status >= 300:  # any non-2xx is a refusal
                        body = (await response.text())[:200]
                        raise AdapterError(f"{url} answered {response.status}: {body}")
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise AdapterError(f"cannot send lineage to {url}: {exc}") from exc

        yield send
