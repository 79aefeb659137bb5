"""Every connection migrate-tui opens has prepared statements off (``prepare_threshold=None``): through
transaction pooling (PgBouncer < 1.21) a statement psycopg prepares on one server connection is missing
on the next, or collides with another client's of the same name (42P05)."""

from __future__ import annotations

import psycopg
import pytest

from migration.db import connect_url

pytestmark = pytest.mark.timeout(60)
QUERY = "SELECT %s::int + 1"


def _interleave(first, second, times: int = 12) -> None:
    for i in range(times):  # psycopg would prepare from the 5th execution on (its default threshold)
        for conn in (first, second):
            assert conn.execute(QUERY, (i,)).fetchone()[0] == i + 1


def test_two_interleaving_clients_through_transaction_pooling(transaction_pooled):
    url = transaction_pooled.url
    with connect_url(url) as first, connect_url(url) as second:
        assert first.prepare_threshold is None and second.prepare_threshold is None
        _interleave(first, second)


def test_the_same_clients_with_psycopgs_default_threshold_fail(transaction_pooled):
    """The control: this pooler really breaks prepared statements, so the test above can fail."""
    url = transaction_pooled.url
    with psycopg.connect(url, autocommit=True) as first, psycopg.connect(url, autocommit=True) as second:
        assert first.prepare_threshold == 5
        with pytest.raises((psycopg.errors.DuplicatePreparedStatement, psycopg.errors.InvalidSqlStatementName)):
            _interleave(first, second)
