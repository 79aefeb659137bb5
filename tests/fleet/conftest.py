"""Fixtures of the fleet tests (the suite's servers come from tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture
def make_db():
    """Fresh databases on any of the suite's servers, dropped at the end of the test."""
    made = []

    def make(server):
        database = server.create_database()
        made.append(database)
        return database

    yield make
    for database in made:
        database.server.drop_database(database.name)
