"""Fixtures every test module may use: the real services (see tests/support/services.py)."""

import pytest

# The contract suites live outside test modules; rewrite their asserts so a failure
# shows the values, as in any test.
pytest.register_assert_rewrite("tests.contracts")

pytest_plugins = ["tests.support.services"]
