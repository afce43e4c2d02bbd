"""Fixtures every test module may use: the real services (see tests/services.py)."""

pytest_plugins = ["tests.services"]
