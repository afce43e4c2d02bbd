"""The live services the OpenAPI tests talk to: `charon registry serve` and
`charon daemon` as subprocesses, one of each per test module."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.support.browser import Watched, chromium, watched_page
from tests.support.live_services import LiveService, live_daemon, live_registry


@pytest.fixture(scope="module")
def served_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_registry(tmp_path_factory.mktemp("served") / "registry") as live:
        yield live


@pytest.fixture(scope="module")
def served_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_daemon(tmp_path_factory.mktemp("served") / "daemon") as live:
        yield live


@pytest.fixture
async def tab() -> AsyncIterator[Watched]:
    """A page of headless Chromium whose console must stay free of errors."""
    async with chromium() as browser:
        watched = await watched_page(browser)
        yield watched
        assert watched.errors == []
