"""The OpenAPI documents of charon's HTTP services, and the route that serves them.

The documents are hand-written JSON shipped inside the package
(``openapi_documents/<service>.json``); tests hold them to the routes the services
register and to the answers they give, so they cannot drift apart silently.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

from aiohttp import web

Service = Literal["registry", "daemon"]
PATH = "/openapi.json"


@cache
def _text(service: Service) -> str:
    path = resources.files("orchestrator.web").joinpath("openapi_documents", f"{service}.json")
    return path.read_text(encoding="utf-8")


def document(service: Service) -> dict[str, Any]:
    """The service's OpenAPI document, parsed afresh: tools that load it may change it."""
    loaded: dict[str, Any] = json.loads(_text(service))
    return loaded


def route(service: Service) -> web.RouteDef:
    """``GET /openapi.json``, answering the service's document."""
    body = _text(service).encode()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    return web.get(PATH, serve)
