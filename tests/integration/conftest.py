"""The live services the OpenAPI tests talk to: `charon registry serve` and
`charon daemon` as subprocesses, one of each per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.live_services import LiveService, live_daemon, live_registry


@pytest.fixture(scope="module")
def served_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_registry(tmp_path_factory.mktemp("served") / "registry") as live:
        yield live


@pytest.fixture(scope="module")
def served_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    with live_daemon(tmp_path_factory.mktemp("served") / "daemon") as live:
        yield live
