"""Fixtures: a real PgBouncer (pooler_support.PgBouncer) in front of the suite's servers, in transaction and
session mode, started once per server and mode, and a fresh database reached through it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from harness import Database
from pooler_support import PgBouncer

MODES = ["transaction", "session"]
# Transaction mode: 2 server connections, so that clients really share them. Session mode keeps one per
# client: a rollback with its safety copy uses up to 4 at once (its connection, the snapshot, pg_dump, the
# lock monitor), plus the pooler probe's second connection.
POOL_SIZES = {"transaction": 2, "session": 5}


@dataclass
class Pooled:
    db: Database
    bouncer: PgBouncer

    @property
    def mode(self) -> str:
        return self.bouncer.mode

    @property
    def url(self) -> str:
        """The application role's URL through the pooler."""
        return self.bouncer.url(self.db.name)


@pytest.fixture(scope="session")
def bouncers():
    """(server label, mode, pool size, stats users) -> a running PgBouncer; all stopped at the end."""
    running: dict[tuple, PgBouncer] = {}

    def get(server, mode: str, pool_size: int | None = None, stats_users: str = "") -> PgBouncer:
        key = (server.label, mode, pool_size or POOL_SIZES[mode], stats_users)
        if key not in running:
            try:
                running[key] = PgBouncer(server, mode, key[2], stats_users).start()
            except LookupError as exc:
                # With CI set this skip is a failure (skip_rule): tests/run.sh installs pgbouncer as root.
                pytest.skip(f"{exc}; tests/run.sh installs it when run as root")
        return running[key]

    yield get
    for bouncer in running.values():
        bouncer.stop()


@pytest.fixture(params=MODES)
def mode(request) -> str:
    return request.param


@pytest.fixture
def pooled(db, mode, bouncers) -> Pooled:
    """A fresh database (PostgreSQL 18 and 15) through PgBouncer in each mode."""
    return Pooled(db, bouncers(db.server, mode))


@pytest.fixture
def pooled18(db18, mode, bouncers) -> Pooled:
    """A fresh PostgreSQL 18 database through PgBouncer in each mode."""
    return Pooled(db18, bouncers(db18.server, mode))


@pytest.fixture
def transaction_pooled(db, bouncers) -> Pooled:
    """A fresh database (PostgreSQL 18 and 15) through PgBouncer in transaction mode."""
    return Pooled(db, bouncers(db.server, "transaction"))
