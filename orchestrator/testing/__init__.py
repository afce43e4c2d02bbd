"""In-memory implementations of every port, for unit tests.

They follow the same rules and raise the same errors as the embedded adapters (the
contract tests in ``tests/contracts`` run against both), and share their pure rule
functions (validation, claim planning, fencing) so the two cannot drift apart.
"""

from orchestrator.testing.clock import Clock, ManualClock, utc_now
from orchestrator.testing.crash import ProcessCrashed
from orchestrator.testing.data import InMemoryDatabase, InMemoryStorage, InMemoryWarehouse
from orchestrator.testing.jobs import FakeJobRunner, job_options
from orchestrator.testing.stores import InMemoryRegistry, InMemoryStateStore

__all__ = [
    "Clock",
    "FakeJobRunner",
    "InMemoryDatabase",
    "InMemoryRegistry",
    "InMemoryStateStore",
    "InMemoryStorage",
    "InMemoryWarehouse",
    "ManualClock",
    "ProcessCrashed",
    "job_options",
    "utc_now",
]
