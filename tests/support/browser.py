"""A real headless Chromium (Debian's, installed by ``make test``) driven by Playwright,
and the daemon's UI served over a running in-memory world for it to look at."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import anyio
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright

from orchestrator.daemon.http_api import daemon_app
from orchestrator.testing.world import DaemonWorld
from orchestrator.web.http import serve
from tests.support.worlds import running

CHROMIUM = "/usr/bin/chromium"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    # As root Chromium refuses its sandbox; the pages it opens are our own.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=args)
        try:
            yield browser
        finally:
            await browser.close()


@dataclass
class Watched:
    """A page, and every console error and uncaught exception it has had."""

    page: Page
    errors: list[str] = field(default_factory=list)

    def record(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)


async def watched_page(browser: Browser) -> Watched:
    page = await browser.new_page(viewport={"width": 1000, "height": 640})
    watched = Watched(page)
    page.on("console", watched.record)
    page.on("pageerror", lambda exc: watched.errors.append(str(exc)))
    return watched


@asynccontextmanager
async def served_ui(world: DaemonWorld, token: str = "") -> AsyncIterator[str]:
    """The daemon running over ``world``, its application on loopback, its actions
    behind ``token`` (none: off); yields its URL."""
    app = daemon_app(world.daemon, secret="", api_token=token, max_body_bytes=1024)
    async with running(world), anyio.create_task_group() as group:
        port = await group.start(serve, app, "127.0.0.1", 0)
        yield f"http://127.0.0.1:{port}"
        group.cancel_scope.cancel()


async def server_sent(stream: aiohttp.StreamReader) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Each event's name and data; comments (keep-alives) skipped."""
    fields: dict[str, str] = {}
    async for raw in stream:
        line = raw.decode().rstrip("\n")
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(": ")
                fields[name] = value
        elif fields:
            yield fields["event"], json.loads(fields["data"])
            fields = {}
