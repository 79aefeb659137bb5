"""Fixtures of the drill tests (the suite's servers come from tests/conftest.py)."""

from drill_support import private_tmp  # noqa: F401 - a fixture
