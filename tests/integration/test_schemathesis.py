"""schemathesis fuzzes both services, live on loopback, from their OpenAPI documents.

Each operation gets generated requests, valid and not (bounded, and the same every
run: a fixed seed, derandomized): every answer must be no 5xx, a documented status,
content type, body and headers; the services run as `charon` subprocesses. The registry
is also driven statefully through the document's links (publish, then latest, the
revision by id, the change feed), each scenario on a fresh service in this process.

The fuzzer's publishes carry the service's bearer token. Its webhooks are signed by
the session when their signature headers are well formed, so those reach the body's
validation; the ones with malformed or missing headers go unsigned and must be refused.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from anyio.from_thread import start_blocking_portal
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import Case
from schemathesis.generation.stateful.state_machine import DEFAULT_STATE_MACHINE_SETTINGS

from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.web import openapi
from orchestrator.web.openapi import Service
from tests.support.live_services import (
    TOKEN,
    LiveService,
    SigningSession,
)
from tests.support.services import registry_service

pytestmark = pytest.mark.slow

# Bounded and reproducible: seconds for both services together.
CONFIG = """
seed = 20181031

[generation]
max-examples = 50
deterministic = true
database = "none"

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
response_headers_conformance.enabled = true
"""
# Over schemathesis's settings for state machines: generation only, no deadline and no
# health checks, for the server's state changes under the scenarios, so replaying one
# (to shrink it, or to check a health rule) would not meet the same answers.
STATEFUL = hypothesis.settings(DEFAULT_STATE_MACHINE_SETTINGS, max_examples=30,
                               stateful_step_count=8, derandomize=True, database=None)
STATEFUL_OPTIONS = ServiceOptions(token=TOKEN, long_poll_max_seconds=0)


def _load(service: Service, extra: str = "") -> schemathesis.BaseSchema:
    # From the packaged document (test_openapi.py checks the services serve it): the
    # items are made at collection, before any service runs.
    config = schemathesis.Config.from_str(CONFIG + extra)
    return schemathesis.openapi.from_dict(openapi.document(service), config=config)


registry_api = _load("registry", f'[auth.openapi.bearer]\nbearer = "{TOKEN}"\n')
# /events streams without end: its answer is tested in test_ui_browser.py.
daemon_api = _load("daemon").exclude(path="/events")


@registry_api.parametrize()
def test_fuzzed_registry_requests_get_documented_answers(case: Case[Any],
                                                         served_registry: LiveService) -> None:
    case.call_and_validate(base_url=served_registry.url)


@pytest.fixture(scope="module")
def signing() -> Iterator[requests.Session]:
    with SigningSession() as session:
        yield session


@daemon_api.parametrize()
def test_fuzzed_daemon_requests_get_documented_answers(case: Case[Any], served_daemon: LiveService,
                                                       signing: requests.Session) -> None:
    case.call_and_validate(base_url=served_daemon.url, session=signing)


@asynccontextmanager
async def _fresh_registry(path: Path) -> AsyncIterator[str]:
    backend = await SqliteRegistry.open(path)
    try:
        async with registry_service(backend, STATEFUL_OPTIONS) as url:
            yield url
    finally:
        await backend.aclose()


def test_the_registry_holds_up_through_linked_calls(tmp_path: Path) -> None:
    published: list[int] = []
    scenarios = itertools.count()
    with start_blocking_portal() as portal:

        # The base class is made from the document at run time: mypy cannot see it.
        class Machine(registry_api.as_state_machine()):  # type: ignore[misc]
            """Each scenario on an empty registry of its own (the real service, in a
            thread of this process): what a request answers depends only on the
            scenario's earlier steps, as hypothesis requires."""

            def setup(self) -> None:
                self.service = ExitStack()
                path = tmp_path / f"registry-{next(scenarios)}.sqlite"
                self.url = self.service.enter_context(
                    portal.wrap_async_context_manager(_fresh_registry(path)))

            def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
                return {"base_url": self.url}

            def teardown(self) -> None:
                changes = requests.get(f"{self.url}/v1/changes", timeout=10).json()
                published.append(len(changes["revisions"]))
                self.service.close()
                super().teardown()

        run_state_machine_as_test(Machine, settings=STATEFUL)
    assert sum(published) > 0  # the scenarios' publishes got past the token
